import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { findExtCap, PCI_EXP_DEVCAP_FLR, PCI_EXT_CAP_ID_SRIOV } from '../../src/sim/config-space.js';
import { readHostModel } from '../../src/sim/host-model.js';
import { generateSpec, presets } from '../../src/sim/presets.js';
import { parseHostSpec } from '../../src/sim/spec.js';
import { addresses, cleanupRoots, dev, driverOf, groupOf, lspci, presetRoot, readAttr, tempRoot, virtfns } from './helpers.js';

afterAll(cleanupRoots);

describe('buildHost writes a tree shaped like Linux sysfs', () => {
  it.each(Object.keys(presets))('preset %s: every bus/pci/devices link is relative and resolves to a device dir under sys/devices', (name) => {
    const root = presetRoot(name);
    for (const address of addresses(root)) {
      const link = fs.readlinkSync(dev(root, address));
      expect(link.startsWith('../../../devices/pci')).toBe(true);
      expect(fs.realpathSync(dev(root, address)).startsWith(fs.realpathSync(path.join(root, 'sys/devices')))).toBe(true);
      expect(readAttr(root, address, 'driver_override')).toBe('(null)');
    }
  });

  it.each(Object.keys(presets))('preset %s: config space agrees with vendor, device, class, revision files', (name) => {
    const root = presetRoot(name);
    for (const address of addresses(root)) {
      const config = fs.readFileSync(dev(root, address, 'config'));
      expect(`0x${config.readUInt16LE(0).toString(16).padStart(4, '0')}`).toBe(readAttr(root, address, 'vendor'));
      expect(`0x${config.readUInt16LE(2).toString(16).padStart(4, '0')}`).toBe(readAttr(root, address, 'device'));
      const cls = (config.readUInt8(0x0b) << 16) | (config.readUInt8(0x0a) << 8) | config.readUInt8(0x09);
      expect(`0x${cls.toString(16).padStart(6, '0')}`).toBe(readAttr(root, address, 'class'));
      expect(`0x${config.readUInt8(8).toString(16).padStart(2, '0')}`).toBe(readAttr(root, address, 'revision'));
    }
  });

  it.each(['workstation', 'sriov-nic', 'libvirt-test', 'no-iommu'])(
    'preset %s: lspci -A linux-sysfs reads the same vendor, device, class and driver as the files',
    (name) => {
      const root = presetRoot(name);
      const rows = lspci(root);
      expect([...rows.keys()].sort()).toEqual(addresses(root));
      for (const address of addresses(root)) {
        const row = rows.get(address)!;
        expect(row.vendor).toBe(readAttr(root, address, 'vendor').slice(2));
        expect(row.device).toBe(readAttr(root, address, 'device').slice(2));
        expect(row.cls).toBe(readAttr(root, address, 'class').slice(2, 6));
        expect(row.driver).toBe(driverOf(root, address));
      }
    },
  );

  it('the PCI Express capability has the FLR bit in DevCap exactly when reset_method lists flr', () => {
    const root = presetRoot('workstation');
    for (const address of addresses(root)) {
      const config = fs.readFileSync(dev(root, address, 'config'));
      let at = config.readUInt8(0x34);
      let devCap: number | null = null;
      while (at !== 0) {
        if (config.readUInt8(at) === 0x10) devCap = config.readUInt32LE(at + 4);
        at = config.readUInt8(at + 1);
      }
      expect(devCap).not.toBeNull();
      const methods = fs.existsSync(dev(root, address, 'reset_method')) ? readAttr(root, address, 'reset_method').split(' ') : [];
      expect(((devCap ?? 0) & PCI_EXP_DEVCAP_FLR) !== 0).toBe(methods.includes('flr'));
      expect(fs.existsSync(dev(root, address, 'reset'))).toBe(methods.length > 0);
    }
  });

  it('sriov-nic: igb VFs sit at offset 128 stride 2 (not contiguous), each in its own new IOMMU group, on igbvf', () => {
    const root = presetRoot('sriov-nic');
    expect(virtfns(root, '0000:01:00.0')).toEqual(['0000:01:10.0', '0000:01:10.2']);
    expect(virtfns(root, '0000:01:00.1')).toEqual(['0000:01:10.1', '0000:01:10.3']);
    expect(readAttr(root, '0000:01:00.0', 'sriov_offset')).toBe('128');
    expect(readAttr(root, '0000:01:00.0', 'sriov_stride')).toBe('2');
    expect(readAttr(root, '0000:01:00.0', 'sriov_vf_device')).toBe('10ca');
    expect(readAttr(root, '0000:01:00.0', 'sriov_totalvfs')).toBe('7');
    expect(readAttr(root, '0000:01:00.0', 'sriov_numvfs')).toBe('2');
    expect(fs.readlinkSync(dev(root, '0000:01:10.2', 'physfn'))).toBe('../0000:01:00.0');
    const vfs = ['0000:01:10.0', '0000:01:10.1', '0000:01:10.2', '0000:01:10.3'];
    const groups = vfs.map((a) => groupOf(root, a));
    expect(new Set(groups).size).toBe(4);
    for (const vf of vfs) {
      expect(driverOf(root, vf)).toBe('igbvf');
      expect(readAttr(root, vf, 'device')).toBe('0x10ca');
      expect(fs.readdirSync(path.join(root, 'sys/kernel/iommu_groups', String(groupOf(root, vf)), 'devices'))).toEqual([vf]);
    }
    const config = fs.readFileSync(dev(root, '0000:01:00.0', 'config'));
    const sriov = findExtCap(config, PCI_EXT_CAP_ID_SRIOV)!;
    expect(config.readUInt16LE(sriov + 0x10)).toBe(2);
    expect(config.readUInt16LE(sriov + 0x1a)).toBe(0x10ca);
  });

  it('gpu: the GPU and its HDA function share one IOMMU group, on nouveau and snd_hda_intel', () => {
    const root = presetRoot('gpu');
    expect(groupOf(root, '0000:01:00.0')).toBe(groupOf(root, '0000:01:00.1'));
    expect(driverOf(root, '0000:01:00.0')).toBe('nouveau');
    expect(driverOf(root, '0000:01:00.1')).toBe('snd_hda_intel');
  });

  it('non-acs-switch: endpoints behind a switch without ACS share one group; the root port has its own', () => {
    const root = presetRoot('non-acs-switch');
    expect(groupOf(root, '0000:03:00.0')).toBe(groupOf(root, '0000:04:00.0'));
    expect(groupOf(root, '0000:00:01.0')).not.toBe(groupOf(root, '0000:03:00.0'));
  });

  it('libvirt-test: explicit groups as in virpcimock, several PCI domains', () => {
    const root = presetRoot('libvirt-test');
    expect(groupOf(root, '0001:01:00.0')).toBe(5);
    expect(groupOf(root, '0001:01:00.1')).toBe(5);
    expect(groupOf(root, '0005:90:01.3')).toBe(7);
    expect(groupOf(root, '0000:0a:03.0')).toBe(8);
    expect(driverOf(root, '0000:00:02.0')).toBe('i915');
    expect(driverOf(root, '0001:01:00.0')).toBeNull();
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers/vfio-pci/bind'))).toBe(true);
  });

  it('no-iommu: no groups at all, vfio-pci known but not loaded', () => {
    const root = presetRoot('no-iommu');
    expect(fs.readdirSync(path.join(root, 'sys/kernel/iommu_groups'))).toEqual([]);
    for (const address of addresses(root)) expect(groupOf(root, address)).toBeNull();
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers/vfio-pci'))).toBe(false);
    expect(readHostModel(root)?.drivers['vfio-pci']?.loaded).toBe(false);
  });

  it('driver directories have bind, unbind, new_id, remove_id and a relative link per bound device', () => {
    const root = presetRoot('workstation');
    const igb = path.join(root, 'sys/bus/pci/drivers/igb');
    for (const f of ['bind', 'unbind', 'new_id', 'remove_id']) expect(fs.existsSync(path.join(igb, f))).toBe(true);
    expect(fs.readlinkSync(path.join(igb, '0000:02:00.0'))).toBe('../../../../devices/pci0000:00/0000:00:1c.0/0000:02:00.0');
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers_probe'))).toBe(true);
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/rescan'))).toBe(true);
  });

  it('generateSpec(4096) builds exactly 4,096 functions', () => {
    const root = path.join(tempRoot(), 'big');
    buildHost(root, generateSpec(4096));
    expect(addresses(root)).toHaveLength(4096);
  }, 120_000);

  it('omitFiles leaves attribute files out, as some kernels and devices do', () => {
    const root = path.join(tempRoot(), 'omit');
    buildHost(root, { roots: [{ devices: [{ at: '02.0', vendor: '8086', device: '10d3', class: '020000', omitFiles: ['numa_node', 'driver_override'] }] }] });
    expect(fs.existsSync(dev(root, '0000:00:02.0', 'numa_node'))).toBe(false);
    expect(fs.existsSync(dev(root, '0000:00:02.0', 'driver_override'))).toBe(false);
    expect(fs.existsSync(dev(root, '0000:00:02.0', 'vendor'))).toBe(true);
  });

  it('a spec file is validated: unknown fields and bad hex are refused with the field named', () => {
    expect(() => parseHostSpec({ roots: [{ devices: [{ at: '00.0', vendor: 'zz', device: '1', class: '020000' }] }] })).toThrow(/vendor/);
    expect(() => parseHostSpec({ roots: [], color: 'red' })).toThrow();
    const ok = parseHostSpec(JSON.parse(JSON.stringify(presets['workstation'])));
    expect(ok.roots).toHaveLength(1);
  });
});
