import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SimKernel } from '../../src/sim/kernel.js';
import { KernelWriteError } from '../../src/sysfs/kernel-port.js';
import { addresses, cleanupRoots, driverOf, groupOf, readAttr, tempRoot, virtfns } from './helpers.js';

afterAll(cleanupRoots);

/**
 * A tree written by hand, the way the kernel lays sysfs out (relative links, a root port with an
 * e1000e NIC and an igb PF behind it), with no builder and no .hostdev-sim state at all.
 */
function handWrittenTree(): string {
  const root = tempRoot('hostdev-hand-');
  const mk = (rel: string) => fs.mkdirSync(path.join(root, rel), { recursive: true });
  const file = (rel: string, content = '') => fs.writeFileSync(path.join(root, rel), content);
  const link = (rel: string, target: string) => fs.symlinkSync(target, path.join(root, rel));
  mk('sys/bus/pci/devices');
  file('sys/bus/pci/drivers_probe');
  file('sys/bus/pci/rescan');
  const rp = 'sys/devices/pci0000:00/0000:00:1c.0';
  const nic = `${rp}/0000:01:00.0`;
  const pf = `${rp}/0000:01:00.1`;
  const devices: Array<[string, string, Record<string, string>]> = [
    [rp, '0000:00:1c.0', { vendor: '0x8086', device: '0xa110', class: '0x060400' }],
    [nic, '0000:01:00.0', { vendor: '0x8086', device: '0x10d3', class: '0x020000', reset_method: 'flr bus' }],
    [
      pf,
      '0000:01:00.1',
      {
        vendor: '0x8086',
        device: '0x10c9',
        class: '0x020000',
        sriov_totalvfs: '2',
        sriov_numvfs: '0',
        sriov_offset: '128',
        sriov_stride: '2',
        sriov_vf_device: '10ca',
        sriov_drivers_autoprobe: '1',
      },
    ],
  ];
  for (const [dir, address, attrs] of devices) {
    mk(dir);
    for (const [name, value] of Object.entries({ subsystem_vendor: '0x8086', subsystem_device: '0x0000', driver_override: '(null)', ...attrs })) {
      file(`${dir}/${name}`, `${value}\n`);
    }
    file(`${dir}/remove`);
    if (attrs['reset_method']) file(`${dir}/reset`);
    link(`sys/bus/pci/devices/${address}`, `../../../${dir.slice(4)}`);
  }
  for (const [driver, dir, address] of [
    ['pcieport', rp, '0000:00:1c.0'],
    ['e1000e', nic, '0000:01:00.0'],
    ['igb', pf, '0000:01:00.1'],
  ] as const) {
    mk(`sys/bus/pci/drivers/${driver}`);
    for (const f of ['bind', 'unbind', 'new_id', 'remove_id']) file(`sys/bus/pci/drivers/${driver}/${f}`);
    link(`${dir}/driver`, `${'../'.repeat(dir.split('/').length - 1)}bus/pci/drivers/${driver}`);
    link(`sys/bus/pci/drivers/${driver}/${address}`, `../../../../${dir.slice(4)}`);
  }
  mk('sys/bus/pci/drivers/vfio-pci');
  for (const f of ['bind', 'unbind', 'new_id', 'remove_id']) file(`sys/bus/pci/drivers/vfio-pci/${f}`);
  for (const [group, dir, address] of [
    [7, rp, '0000:00:1c.0'],
    [8, nic, '0000:01:00.0'],
    [9, pf, '0000:01:00.1'],
  ] as const) {
    mk(`sys/kernel/iommu_groups/${group}/devices`);
    link(`sys/kernel/iommu_groups/${group}/devices/${address}`, `../../../../${dir.slice(4)}`);
    link(`${dir}/iommu_group`, `${'../'.repeat(dir.split('/').length - 1)}kernel/iommu_groups/${group}`);
  }
  return root;
}

describe('the simulated kernel on a sysfs-shaped tree written by hand (no builder, no state)', () => {
  it('moves a NIC to vfio-pci and back: override, unbind, drivers_probe; /dev/vfio/<group> follows', async () => {
    const root = handWrittenTree();
    const k = new SimKernel(root);
    const a = '0000:01:00.0';
    await k.write(`/sys/bus/pci/devices/${a}/driver_override`, 'vfio-pci\n');
    await k.write(`/sys/bus/pci/devices/${a}/driver/unbind`, a);
    expect(fs.existsSync(path.join(root, 'sys/bus/pci/drivers/e1000e', a))).toBe(false);
    await k.write('/sys/bus/pci/drivers_probe', a);
    expect(driverOf(root, a)).toBe('vfio-pci');
    expect(fs.existsSync(path.join(root, 'dev/vfio/8'))).toBe(true);
    await k.write(`/sys/bus/pci/devices/${a}/driver_override`, '\n');
    await k.write('/sys/bus/pci/drivers/vfio-pci/unbind', a);
    expect(fs.existsSync(path.join(root, 'dev/vfio/8'))).toBe(false);
    // e1000e's ID table is inferred from what it had bound: it claims the NIC back.
    await k.write('/sys/bus/pci/drivers_probe', a);
    expect(driverOf(root, a)).toBe('e1000e');
    expect(fs.readlinkSync(path.join(root, 'sys/bus/pci/drivers/e1000e', a))).toBe('../../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0');
    await k.write(`/sys/bus/pci/devices/${a}/reset`, '1');
    expect(k.resetCount(a)).toBe(1);
    k.close();
  });

  it('creates VFs from the sriov_* files at offset/stride with new groups; remove + rescan restore a device', async () => {
    const root = handWrittenTree();
    const k = new SimKernel(root);
    await k.write('/sys/bus/pci/devices/0000:01:00.1/sriov_numvfs', '2');
    expect(virtfns(root, '0000:01:00.1')).toEqual(['0000:01:10.1', '0000:01:10.3']);
    expect(groupOf(root, '0000:01:10.1')).toBe(0);
    expect(groupOf(root, '0000:01:10.3')).toBe(1);
    expect(readAttr(root, '0000:01:10.3', 'device')).toBe('0x10ca');
    // Nothing in this tree claims 8086:10ca: the VFs stay unbound.
    expect(driverOf(root, '0000:01:10.1')).toBeNull();
    const error = await k.write('/sys/bus/pci/devices/0000:01:00.1/sriov_numvfs', '3').catch((e: unknown) => e);
    expect((error as KernelWriteError).errno).toBe('ERANGE');

    await k.write('/sys/bus/pci/devices/0000:01:00.0/remove', '1');
    expect(addresses(root)).not.toContain('0000:01:00.0');
    expect(fs.existsSync(path.join(root, 'sys/kernel/iommu_groups/8'))).toBe(false);
    await k.write('/sys/bus/pci/rescan', '1');
    expect(driverOf(root, '0000:01:00.0')).toBe('e1000e');
    expect(groupOf(root, '0000:01:00.0')).not.toBeNull();
    expect(fs.readlinkSync(path.join(root, 'sys/bus/pci/devices/0000:01:00.0'))).toBe('../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0');
    k.close();
  });
});
