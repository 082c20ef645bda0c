import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SimKernel } from '../../src/sim/kernel.js';
import { ModuleLoadError } from '../../src/sysfs/kernel-port.js';
import { addresses, cleanupRoots, dev, driverOf, groupOf, lspci, presetRoot, readAttr, virtfns, errnoOf } from './helpers.js';

afterAll(cleanupRoots);

const kernels: SimKernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) k.close();
});

function host(preset: string): { root: string; k: SimKernel } {
  const root = presetRoot(preset);
  const k = new SimKernel(root);
  kernels.push(k);
  return { root, k };
}

/** A preset host with vfio-pci loaded (some presets start without it). */
async function vfioHost(preset: string): Promise<{ root: string; k: SimKernel }> {
  const h = host(preset);
  await h.k.loadModule('vfio-pci');
  return h;
}

const D = (address: string, file: string) => `/sys/bus/pci/devices/${address}/${file}`;
const DRV = (driver: string, file: string) => `/sys/bus/pci/drivers/${driver}/${file}`;
const PROBE = '/sys/bus/pci/drivers_probe';
const vfioNode = (root: string, group: number | null) => path.join(root, 'dev/vfio', String(group));

/** One assignable endpoint per preset, with the driver it starts on. */
const ENDPOINTS: Array<[preset: string, address: string, driver: string]> = [
  ['sriov-nic', '0000:01:10.0', 'igbvf'],
  ['gpu', '0000:01:00.0', 'nouveau'],
  ['nvme', '0000:01:00.0', 'nvme'],
  ['non-acs-switch', '0000:03:00.0', 'igb'],
  ['libvirt-test', '0000:00:02.0', 'i915'],
  ['workstation', '0000:03:00.0', 'nvme'],
];

describe('driver_override (pci-sysfs.c driver_override_store)', () => {
  it.each(ENDPOINTS)('%s %s: stores the name; "\\n" or "" clears it and it reads back "(null)"', async (preset, address) => {
    const { root, k } = host(preset);
    await k.write(D(address, 'driver_override'), 'vfio-pci\n');
    expect(readAttr(root, address, 'driver_override')).toBe('vfio-pci');
    await k.write(D(address, 'driver_override'), '\n');
    expect(readAttr(root, address, 'driver_override')).toBe('(null)');
    await k.write(D(address, 'driver_override'), 'vfio-pci');
    await k.write(D(address, 'driver_override'), '');
    expect(readAttr(root, address, 'driver_override')).toBe('(null)');
  });
});

describe('unbind (bus.c unbind_store)', () => {
  it.each(ENDPOINTS)('%s %s: devices/X/driver/unbind removes the driver link and the driver\'s device link', async (preset, address, driver) => {
    const { root, k } = host(preset);
    expect(driverOf(root, address)).toBe(driver);
    await k.write(D(address, 'driver/unbind'), address);
    expect(driverOf(root, address)).toBeNull();
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers', driver, address))).toBe(false);
    // The device's driver/ link is gone, so the path itself no longer exists.
    expect(await errnoOf(k.write(D(address, 'driver/unbind'), address))).toBe('ENOENT');
  });

  it.each(ENDPOINTS)('%s %s: drivers/D/unbind is ENODEV when the device is not bound to D', async (preset, address, driver) => {
    const { k } = await vfioHost(preset);
    expect(await errnoOf(k.write(DRV('vfio-pci', 'unbind'), address))).toBe('ENODEV');
    await k.write(DRV(driver, 'unbind'), `${address}\n`);
    expect(await errnoOf(k.write(DRV(driver, 'unbind'), address))).toBe('ENODEV');
    expect(await errnoOf(k.write(DRV(driver, 'unbind'), '0000:7f:00.0'))).toBe('ENODEV');
  });
});

describe('uevent (core.c dev_uevent, pci-driver.c pci_uevent)', () => {
  it.each(ENDPOINTS)('%s %s: names the ids the attribute files hold, and DRIVER= only while bound', async (preset, address, driver) => {
    const { root, k } = await vfioHost(preset);
    const lines = (): string[] => readAttr(root, address, 'uevent').split('\n');
    const hex = (file: string): string => readAttr(root, address, file).slice(2).toUpperCase();
    expect(lines()).toEqual([
      `DRIVER=${driver}`,
      `PCI_CLASS=${hex('class').replace(/^0+(?=[0-9A-F]{4})/, '')}`,
      `PCI_ID=${hex('vendor')}:${hex('device')}`,
      `PCI_SUBSYS_ID=${hex('subsystem_vendor')}:${hex('subsystem_device')}`,
      `PCI_SLOT_NAME=${address}`,
      expect.stringMatching(/^MODALIAS=pci:v0000[0-9A-F]{4}d0000[0-9A-F]{4}sv0000[0-9A-F]{4}sd0000[0-9A-F]{4}bc[0-9A-F]{2}sc[0-9A-F]{2}i[0-9A-F]{2}$/),
    ]);
    await k.write(D(address, 'driver/unbind'), address);
    expect(lines()[0]).toMatch(/^PCI_CLASS=/);
    await k.write(D(address, 'driver_override'), 'vfio-pci');
    await k.write(DRV('vfio-pci', 'bind'), address);
    expect(lines()[0]).toBe('DRIVER=vfio-pci');
  });
});

describe('bind (bus.c bind_store, dd.c __driver_probe_device)', () => {
  it.each(ENDPOINTS)('%s %s: EBUSY when the device already has a driver that matches', async (preset, address, driver) => {
    const { k } = host(preset);
    expect(await errnoOf(k.write(DRV(driver, 'bind'), address))).toBe('EBUSY');
  });

  it.each(ENDPOINTS)('%s %s: ENODEV when the ID table does not match or an override names another driver', async (preset, address, driver) => {
    const { root, k } = await vfioHost(preset);
    await k.write(D(address, 'driver/unbind'), address);
    expect(await errnoOf(k.write(DRV('vfio-pci', 'bind'), address))).toBe('ENODEV');
    await k.write(D(address, 'driver_override'), 'vfio-pci\n');
    expect(await errnoOf(k.write(DRV(driver, 'bind'), address))).toBe('ENODEV');
    await k.write(DRV('vfio-pci', 'bind'), address);
    expect(driverOf(root, address)).toBe('vfio-pci');
  });

  it('an unknown address is ENODEV; a short address is not a device name', async () => {
    const { k } = host('nvme');
    expect(await errnoOf(k.write(DRV('nvme', 'bind'), '0000:09:00.0'))).toBe('ENODEV');
    await k.write(D('0000:01:00.0', 'driver/unbind'), '0000:01:00.0');
    expect(await errnoOf(k.write(DRV('nvme', 'bind'), '01:00.0'))).toBe('ENODEV');
    await k.write(DRV('nvme', 'bind'), '0000:01:00.0\n');
  });
});

describe('drivers_probe (bus.c drivers_probe_store)', () => {
  it.each(ENDPOINTS)('%s %s: binds an unbound device to its override, else to the first matching driver', async (preset, address, driver) => {
    const { root, k } = await vfioHost(preset);
    await k.write(D(address, 'driver/unbind'), address);
    await k.write(PROBE, `${address}\n`);
    expect(driverOf(root, address)).toBe(driver);
    await k.write(D(address, 'driver_override'), 'vfio-pci\n');
    await k.write(D(address, 'driver/unbind'), address);
    await k.write(PROBE, address);
    expect(driverOf(root, address)).toBe('vfio-pci');
  });

  it('an override naming a driver that is not loaded leaves the device unbound and the write succeeds', async () => {
    const { root, k } = host('workstation');
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers/vfio-pci'))).toBe(false);
    await k.write(D('0000:03:00.0', 'driver_override'), 'vfio-pci\n');
    await k.write(D('0000:03:00.0', 'driver/unbind'), '0000:03:00.0');
    await k.write(PROBE, '0000:03:00.0');
    expect(driverOf(root, '0000:03:00.0')).toBeNull();
  });

  it('ENODEV for an unknown address; a bound device is left as it is', async () => {
    const { root, k } = host('gpu');
    expect(await errnoOf(k.write(PROBE, '0000:42:00.0'))).toBe('ENODEV');
    await k.write(D('0000:01:00.0', 'driver_override'), 'vfio-pci');
    await k.write(PROBE, '0000:01:00.0');
    expect(driverOf(root, '0000:01:00.0')).toBe('nouveau');
  });
});

describe('vfio-pci', () => {
  it('gpu: binding the first device of a group creates /dev/vfio/<group>; unbinding the last removes it', async () => {
    const { root, k } = host('gpu');
    const group = groupOf(root, '0000:01:00.0');
    expect(group).toBe(groupOf(root, '0000:01:00.1'));
    for (const a of ['0000:01:00.0', '0000:01:00.1']) {
      await k.write(D(a, 'driver_override'), 'vfio-pci');
      await k.write(D(a, 'driver/unbind'), a);
      await k.write(PROBE, a);
      expect(fs.existsSync(vfioNode(root, group))).toBe(true);
    }
    await k.write(DRV('vfio-pci', 'unbind'), '0000:01:00.0');
    expect(fs.existsSync(vfioNode(root, group))).toBe(true);
    await k.write(DRV('vfio-pci', 'unbind'), '0000:01:00.1');
    expect(fs.existsSync(vfioNode(root, group))).toBe(false);
  });

  it('no-iommu: a device without an IOMMU group fails to bind (EINVAL through bind, silently through drivers_probe)', async () => {
    const { root, k } = host('no-iommu');
    await k.loadModule('vfio-pci');
    const a = '0000:01:00.0';
    await k.write(D(a, 'driver_override'), 'vfio-pci');
    await k.write(D(a, 'driver/unbind'), a);
    await k.write(PROBE, a);
    expect(driverOf(root, a)).toBeNull();
    expect(await errnoOf(k.write(DRV('vfio-pci', 'bind'), a))).toBe('EINVAL');
    expect(fs.readdirSync(path.join(root, 'dev/vfio'))).toEqual(['vfio']);
  });

  it('vfio-pci refuses a bridge (not a normal header) with EINVAL', async () => {
    const { root, k } = host('sriov-nic');
    await k.write(D('0000:00:01.0', 'driver_override'), 'vfio-pci');
    await k.write(D('0000:00:01.0', 'driver/unbind'), '0000:00:01.0');
    expect(await errnoOf(k.write(DRV('vfio-pci', 'bind'), '0000:00:01.0'))).toBe('EINVAL');
    expect(driverOf(root, '0000:00:01.0')).toBeNull();
  });
});

describe('new_id / remove_id (pci-driver.c)', () => {
  it('new_id adds a dynamic ID and binds the matching unbound devices; a repeated one is EEXIST', async () => {
    const { root, k } = host('sriov-nic');
    for (const vf of ['0000:01:10.0', '0000:01:10.2']) await k.write(D(vf, 'driver/unbind'), vf);
    await k.write(DRV('vfio-pci', 'new_id'), '8086 10ca\n');
    expect(driverOf(root, '0000:01:10.0')).toBe('vfio-pci');
    expect(driverOf(root, '0000:01:10.2')).toBe('vfio-pci');
    expect(driverOf(root, '0000:01:10.1')).toBe('igbvf');
    expect(await errnoOf(k.write(DRV('vfio-pci', 'new_id'), '8086 10ca'))).toBe('EEXIST');
    expect(await errnoOf(k.write(DRV('igbvf', 'new_id'), '8086 10ca'))).toBe('EEXIST');
    expect(await errnoOf(k.write(DRV('vfio-pci', 'new_id'), '8086'))).toBe('EINVAL');
  });

  it('remove_id drops the dynamic ID without unbinding; an absent ID is ENODEV', async () => {
    const { root, k } = host('nvme');
    await k.write(D('0000:01:00.0', 'driver/unbind'), '0000:01:00.0');
    await k.write(DRV('vfio-pci', 'new_id'), '144d a808');
    expect(driverOf(root, '0000:01:00.0')).toBe('vfio-pci');
    await k.write(DRV('vfio-pci', 'remove_id'), '144d a808');
    expect(driverOf(root, '0000:01:00.0')).toBe('vfio-pci');
    expect(await errnoOf(k.write(DRV('vfio-pci', 'remove_id'), '144d a808'))).toBe('ENODEV');
  });
});

describe('sriov_numvfs (iov.c sriov_numvfs_store)', () => {
  const PFS: Array<[preset: string, pf: string, existing: number]> = [
    ['sriov-nic', '0000:01:00.1', 2],
    ['workstation', '0000:02:00.1', 0],
  ];

  it.each(PFS)('%s %s: 0 -> N creates VFs at offset 128 stride 2 with physfn/virtfnN links, new groups, on igbvf', async (preset, pf, existing) => {
    const { root, k } = host(preset);
    if (existing > 0) await k.write(D(pf, 'sriov_numvfs'), '0');
    const groupsBefore = new Set(fs.readdirSync(path.join(root, 'sys/kernel/iommu_groups')).map(Number));
    await k.write(D(pf, 'sriov_numvfs'), '3\n');
    const bus = pf.slice(5, 7);
    const vfs = [`0000:${bus}:10.1`, `0000:${bus}:10.3`, `0000:${bus}:10.5`];
    expect(virtfns(root, pf)).toEqual(vfs);
    expect(readAttr(root, pf, 'sriov_numvfs')).toBe('3');
    const groups = vfs.map((vf) => groupOf(root, vf));
    expect(new Set(groups).size).toBe(3);
    for (const [i, vf] of vfs.entries()) {
      expect(groupsBefore.has(groups[i]!)).toBe(false);
      expect(fs.readlinkSync(dev(root, vf, 'physfn'))).toBe(`../${pf}`);
      expect(driverOf(root, vf)).toBe('igbvf');
      expect(readAttr(root, vf, 'device')).toBe('0x10ca');
      expect(readAttr(root, vf, 'driver_override')).toBe('(null)');
    }
  });

  it('workstation: after VFs are created and moved, lspci -A linux-sysfs still reads what the files say', async () => {
    const { root, k } = await vfioHost('workstation');
    await k.write(D('0000:02:00.1', 'sriov_numvfs'), '3');
    const [vf] = virtfns(root, '0000:02:00.1') as [string];
    await k.write(D(vf, 'driver_override'), 'vfio-pci');
    await k.write(D(vf, 'driver/unbind'), vf);
    await k.write(PROBE, vf);
    const rows = lspci(root);
    expect([...rows.keys()].sort()).toEqual(addresses(root));
    for (const address of addresses(root)) {
      const row = rows.get(address)!;
      expect(`${row.vendor}:${row.device} ${row.cls}`).toBe(
        `${readAttr(root, address, 'vendor').slice(2)}:${readAttr(root, address, 'device').slice(2)} ${readAttr(root, address, 'class').slice(2, 6)}`,
      );
      expect(row.driver).toBe(driverOf(root, address));
    }
    expect(rows.get(vf)?.driver).toBe('vfio-pci');
  });

  it('sriov_drivers_autoprobe=0: the new VFs stay unbound', async () => {
    const { root, k } = host('workstation');
    await k.write(D('0000:02:00.1', 'sriov_drivers_autoprobe'), '0');
    await k.write(D('0000:02:00.1', 'sriov_numvfs'), '2');
    const vfs = virtfns(root, '0000:02:00.1');
    for (const vf of vfs) expect(driverOf(root, vf)).toBeNull();
    // Bound later to the VF driver, a VF shows its interface (on vfio-pci it would not).
    await k.write(PROBE, vfs[1]!);
    expect(driverOf(root, vfs[1]!)).toBe('igbvf');
    expect(fs.readdirSync(dev(root, vfs[1]!, 'net'))).toEqual(['enp2s0f1v1']);
    expect(fs.existsSync(dev(root, vfs[0]!, 'net'))).toBe(false);
  });

  it.each(PFS)('%s %s: N -> 0 removes every VF whatever its driver (and /dev/vfio of a VF on vfio-pci)', async (preset, pf, existing) => {
    const { root, k } = host(preset);
    if (existing === 0) await k.write(D(pf, 'sriov_numvfs'), '2');
    const [vf0, vf1] = virtfns(root, pf) as [string, string];
    await k.write(D(vf0, 'driver_override'), 'vfio-pci');
    await k.write(D(vf0, 'driver/unbind'), vf0);
    if (preset === 'workstation') await k.loadModule('vfio-pci');
    else await k.write(PROBE, vf0);
    expect(driverOf(root, vf0)).toBe('vfio-pci');
    const group = groupOf(root, vf0);
    expect(fs.existsSync(vfioNode(root, group))).toBe(true);
    await k.write(D(vf1, 'driver/unbind'), vf1);
    await k.write(D(pf, 'sriov_numvfs'), '0');
    expect(virtfns(root, pf)).toEqual([]);
    expect(addresses(root)).not.toContain(vf0);
    expect(addresses(root)).not.toContain(vf1);
    expect(fs.existsSync(vfioNode(root, group))).toBe(false);
    expect(fs.existsSync(path.join(root, 'sys/kernel/iommu_groups', String(group)))).toBe(false);
    expect(readAttr(root, pf, 'sriov_numvfs')).toBe('0');
  });

  it.each(PFS)('%s %s: N -> M is EBUSY, above sriov_totalvfs ERANGE, not a number EINVAL', async (preset, pf, existing) => {
    const { root, k } = host(preset);
    if (existing === 0) await k.write(D(pf, 'sriov_numvfs'), '2');
    expect(await errnoOf(k.write(D(pf, 'sriov_numvfs'), '1'))).toBe('EBUSY');
    expect(await errnoOf(k.write(D(pf, 'sriov_numvfs'), '8'))).toBe('ERANGE');
    expect(await errnoOf(k.write(D(pf, 'sriov_numvfs'), 'abc'))).toBe('EINVAL');
    expect(await errnoOf(k.write(D(pf, 'sriov_numvfs'), '-1'))).toBe('EINVAL');
    expect(virtfns(root, pf)).toHaveLength(2);
    await k.write(D(pf, 'sriov_numvfs'), '2'); // same count: nothing to do, success
  });

  it('a PF without a driver cannot configure SR-IOV: ENOENT', async () => {
    const { k } = host('workstation');
    await k.write(D('0000:02:00.1', 'driver/unbind'), '0000:02:00.1');
    expect(await errnoOf(k.write(D('0000:02:00.1', 'sriov_numvfs'), '2'))).toBe('ENOENT');
  });
});

describe('remove and rescan (pci-sysfs.c remove_store, bus rescan)', () => {
  it('sriov-nic: removing a PF removes it and its VFs; rescan brings the PF back at its address on igb, without VFs', async () => {
    const { root, k } = host('sriov-nic');
    const pf = '0000:01:00.0';
    const vfs = virtfns(root, pf);
    await k.write(D(pf, 'driver_override'), 'vfio-pci');
    await k.write(D(pf, 'remove'), '1');
    for (const a of [pf, ...vfs]) {
      expect(addresses(root)).not.toContain(a);
      expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers/igb', a))).toBe(false);
    }
    await k.write('/sys/bus/pci/rescan', '1');
    expect(addresses(root)).toContain(pf);
    expect(driverOf(root, pf)).toBe('igb');
    expect(readAttr(root, pf, 'driver_override')).toBe('(null)');
    expect(readAttr(root, pf, 'sriov_numvfs')).toBe('0');
    expect(groupOf(root, pf)).not.toBeNull();
    expect(fs.existsSync(path.join(dev(root, pf), 'net/enp1s0f0'))).toBe(true);
  });

  it('non-acs-switch: removing the switch removes its subtree; rescan restores it with one shared group', async () => {
    const { root, k } = host('non-acs-switch');
    const below = ['0000:01:00.0', '0000:02:08.0', '0000:02:10.0', '0000:03:00.0', '0000:04:00.0'];
    await k.write(D('0000:01:00.0', 'remove'), '1\n');
    for (const a of below) expect(addresses(root)).not.toContain(a);
    await k.write('/sys/bus/pci/rescan', '1');
    for (const a of below) expect(addresses(root)).toContain(a);
    expect(new Set(below.map((a) => groupOf(root, a))).size).toBe(1);
  });

  it('non-acs-switch: a device removed before its parent bridge comes back with it in one rescan', async () => {
    const { root, k } = host('non-acs-switch');
    await k.write(D('0000:03:00.0', 'remove'), '1');
    await k.write(D('0000:01:00.0', 'remove'), '1');
    expect(addresses(root)).toEqual(['0000:00:00.0', '0000:00:01.0']);
    await k.write('/sys/bus/pci/rescan', '1');
    expect(addresses(root)).toEqual(['0000:00:00.0', '0000:00:01.0', '0000:01:00.0', '0000:02:08.0', '0000:02:10.0', '0000:03:00.0', '0000:04:00.0']);
    expect(driverOf(root, '0000:03:00.0')).toBe('igb');
    expect(groupOf(root, '0000:03:00.0')).toBe(groupOf(root, '0000:01:00.0'));
  });

  it('gpu: a removed function rejoins its shared group on rescan', async () => {
    const { root, k } = host('gpu');
    const group = groupOf(root, '0000:01:00.1');
    await k.write(D('0000:01:00.1', 'remove'), '1');
    expect(fs.readdirSync(path.join(root, 'sys/kernel/iommu_groups', String(group), 'devices'))).toEqual(['0000:01:00.0']);
    await k.write('/sys/bus/pci/rescan', '1');
    expect(groupOf(root, '0000:01:00.1')).toBe(group);
    expect(driverOf(root, '0000:01:00.1')).toBe('snd_hda_intel');
  });
});

describe('reset (pci-sysfs.c reset_store, reset_method_store)', () => {
  it.each([
    ['nvme', '0000:01:00.0'],
    ['sriov-nic', '0000:01:10.2'],
    ['libvirt-test', '0001:01:00.1'],
  ])('%s %s: each reset is counted', async (preset, address) => {
    const { k } = host(preset);
    await k.write(D(address, 'reset'), '1');
    await k.write(D(address, 'reset'), '1\n');
    expect(k.resetCount(address)).toBe(2);
    expect(await errnoOf(k.write(D(address, 'reset'), '2'))).toBe('EINVAL');
  });

  it('no reset method: the reset file is missing (ENOENT); methods disabled by reset_method: ENOTTY', async () => {
    const { root, k } = host('workstation');
    expect(fs.existsSync(dev(root, '0000:00:00.0', 'reset'))).toBe(false);
    expect(await errnoOf(k.write(D('0000:00:00.0', 'reset'), '1'))).toBe('ENOENT');
    await k.write(D('0000:03:00.0', 'reset_method'), '\n');
    expect(await errnoOf(k.write(D('0000:03:00.0', 'reset'), '1'))).toBe('ENOTTY');
    expect(await errnoOf(k.write(D('0000:03:00.0', 'reset_method'), 'acpi'))).toBe('EINVAL');
    await k.write(D('0000:03:00.0', 'reset_method'), 'default');
    expect(readAttr(root, '0000:03:00.0', 'reset_method')).toBe('flr bus');
    await k.write(D('0000:03:00.0', 'reset'), '1');
    expect(k.resetCount('0000:03:00.0')).toBe(1);
  });
});

describe('modules, plain attributes, events', () => {
  it('loadModule creates the driver of a known module and binds devices whose override names it; unknown: modprobe\'s not found', async () => {
    const { root, k } = host('workstation');
    await k.write(D('0000:03:00.0', 'driver_override'), 'vfio-pci');
    await k.write(D('0000:03:00.0', 'driver/unbind'), '0000:03:00.0');
    await k.loadModule('vfio-pci');
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers/vfio-pci/bind'))).toBe(true);
    expect(driverOf(root, '0000:03:00.0')).toBe('vfio-pci');
    await k.loadModule('vfio-pci');
    const error = await k.loadModule('no_such_module').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModuleLoadError);
    expect((error as ModuleLoadError).reason).toContain('Module no_such_module not found');
  });

  it('read-only attributes are EACCES, missing ones ENOENT, paths out of the root refused', async () => {
    const { k } = host('nvme');
    expect(await errnoOf(k.write(D('0000:01:00.0', 'vendor'), '0x1234'))).toBe('EACCES');
    expect(await errnoOf(k.write(D('0000:01:00.0', 'sriov_numvfs'), '1'))).toBe('ENOENT');
    expect(await errnoOf(k.write('/sys/bus/pci/devices/0000:01:00.0/../../../../../etc/passwd', 'x'))).toBe('ENOENT');
  });

  it('removing the root port above a PF with VFs takes the VFs away for good; rescan brings the PFs back with SR-IOV off', async () => {
    const { root, k } = host('sriov-nic');
    await k.write(D('0000:00:01.0', 'remove'), '1');
    expect(fs.readdirSync(path.join(root, 'sys/bus/pci/devices')).sort()).toEqual(['0000:00:00.0']);
    await k.write('/sys/bus/pci/rescan', '1');
    expect(fs.readdirSync(path.join(root, 'sys/bus/pci/devices')).sort()).toEqual(['0000:00:00.0', '0000:00:01.0', '0000:01:00.0', '0000:01:00.1']);
    expect(fs.readFileSync(path.join(root, 'sys/bus/pci/devices/0000:01:00.0/sriov_numvfs'), 'utf8')).toBe('0\n');
  });

  it('every change appends a uevent-like record to .hostdev-sim/events.jsonl with a gap-free seq', async () => {
    const { root, k } = host('sriov-nic');
    await k.write(D('0000:01:00.0', 'sriov_numvfs'), '0');
    await k.write(D('0000:01:00.0', 'sriov_numvfs'), '1');
    const events = fs
      .readFileSync(path.join(root, '.hostdev-sim/events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; action: string; address: string; driver?: string; time: string });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    // iov.c sriov_del_vfs removes the VFs in order, VF0 first
    expect(events.slice(0, 4).map((e) => `${e.action} ${e.address}`)).toEqual([
      'unbind 0000:01:10.0',
      'remove 0000:01:10.0',
      'unbind 0000:01:10.2',
      'remove 0000:01:10.2',
    ]);
    expect(events.slice(-3).map((e) => `${e.action} ${e.address} ${e.driver ?? ''}`)).toEqual([
      'add 0000:01:10.0 ',
      'bind 0000:01:10.0 igbvf',
      'change 0000:01:00.0 ',
    ]);
    expect(Number.isNaN(Date.parse(events[0]!.time))).toBe(false);
  });
});
