import { describe, expect, it } from 'vitest';
import { planAssign, type AssignRequest } from '../../src/core/plan-assign.js';
import { restoreSteps } from '../../src/core/plan-device.js';
import { planDetach, planReattach, planReset } from '../../src/core/plan-node.js';
import { planRelease } from '../../src/core/plan-release.js';
import { formatStep, planSteps, planWrites, type Plan } from '../../src/core/plan-types.js';
import { pciKey } from '../../src/core/device-key.js';
import { removeChange, toActive, type InactiveEntry, type Tables } from '../../src/core/tables.js';
import { hostFiles } from '../../src/sysfs/paths.js';
import { addr, hostView, pciDevice } from '../support/pci-device-fixture.js';
import { hostdevErrorOf } from '../support/errors.js';

const vm1 = { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' };
const vm2 = { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' };
const nic = pciDevice('0000:01:00.0', { driver: 'e1000e', iommuGroup: 1, netdevs: ['eth0'] });
const vf = pciDevice('0000:02:10.0', { driver: 'igbvf', iommuGroup: 20 });
const gpu = pciDevice('0000:03:00.0', { driver: 'nvidia', class: '0300', iommuGroup: 30 });
const audio = pciDevice('0000:03:00.1', { driver: 'snd_hda_intel', class: '0403', iommuGroup: 30 });

function lines(plan: Plan): string[] {
  return planSteps(plan).map(formatStep);
}

function assignRequest(fields: Partial<AssignRequest>): AssignRequest {
  return { owner: vm1, addresses: [], managed: true, stubDriver: 'vfio-pci', withGroup: false, force: false, ...fields };
}

const taken = (address: string, original: string | null, managed = false): InactiveEntry => ({
  key: pciKey(addr(address)),
  address: addr(address),
  managed,
  stubDriver: 'vfio-pci',
  originalDriver: original,
});

describe('detach plan', () => {
  it('writes driver_override, unbinds from the current driver, probes, then reads the driver link back', () => {
    const plan = planDetach(hostView({ devices: [vf] }), { address: vf.address, stubDriver: 'vfio-pci', force: false });
    expect(lines(plan)).toEqual([
      'write /sys/bus/pci/devices/0000:02:10.0/driver_override "vfio-pci"',
      'write /sys/bus/pci/drivers/igbvf/unbind "0000:02:10.0"',
      'write /sys/bus/pci/drivers_probe "0000:02:10.0"',
      'check 0000:02:10.0 driver is vfio-pci',
    ]);
    expect(plan.changes).toEqual([{ kind: 'set-inactive', entry: taken('0000:02:10.0', 'igbvf') }]);
  });

  it('never writes new_id', () => {
    const plan = planDetach(hostView({ devices: [vf] }), { address: vf.address, stubDriver: 'vfio-pci', force: false });
    expect(planWrites(plan).some((step) => step.hostPath.endsWith('new_id'))).toBe(false);
  });

  it('loads the stub module first when its driver directory is missing', () => {
    const plan = planDetach(hostView({ devices: [vf], loadedDrivers: ['igbvf'] }), {
      address: vf.address,
      stubDriver: 'vfio-pci',
      force: false,
    });
    expect(lines(plan)[0]).toBe('load-module vfio-pci');
  });

  it('an unbound device is not unbound', () => {
    const plan = planDetach(hostView({ devices: [{ ...vf, driver: null }] }), {
      address: vf.address,
      stubDriver: 'vfio-pci',
      force: false,
    });
    expect(lines(plan).some((line) => line.includes('unbind'))).toBe(false);
    expect(plan.changes[0]).toMatchObject({ entry: { originalDriver: null } });
  });

  it('a device already on the stub needs no write and remembers the stub as its original driver', () => {
    const plan = planDetach(hostView({ devices: [{ ...vf, driver: 'vfio-pci' }] }), {
      address: vf.address,
      stubDriver: 'vfio-pci',
      force: false,
    });
    expect(planSteps(plan)).toEqual([]);
    expect(plan.changes).toEqual([{ kind: 'set-inactive', entry: taken('0000:02:10.0', 'vfio-pci') }]);
  });

  it('refuses an active device with libvirt\'s wording', () => {
    const tables: Tables = { active: [toActive(taken('0000:02:10.0', 'igbvf'), vm1)], inactive: [] };
    const error = hostdevErrorOf(() =>
      planDetach(hostView({ devices: [vf], tables }), { address: vf.address, stubDriver: 'vfio-pci', force: false }),
    );
    expect(error.code).toBe('HOSTDEV_IN_USE');
    expect(error.message).toBe('PCI device 0000:02:10.0 is in use by driver qemu, domain vm1');
  });

  it('refuses a device the host uses unless forced', () => {
    const hostUse = { '0000:01:00.0': [{ kind: 'address' as const, detail: 'eth0 has 192.0.2.10/24' }] };
    const view = hostView({ devices: [nic], hostUse });
    const error = hostdevErrorOf(() => planDetach(view, { address: nic.address, stubDriver: 'vfio-pci', force: false }));
    expect(error.code).toBe('HOSTDEV_HOST_IN_USE');
    expect(error.message).toContain('eth0 has 192.0.2.10/24');
    expect(planDetach(view, { address: nic.address, stubDriver: 'vfio-pci', force: true }).changes).toHaveLength(1);
  });

  it('refuses a missing device and a device without IOMMU group for vfio-pci', () => {
    expect(hostdevErrorOf(() => planDetach(hostView({ devices: [], missing: ['0000:09:00.0'] }), {
      address: addr('0000:09:00.0'),
      stubDriver: 'vfio-pci',
      force: false,
    })).message).toBe('PCI device 0000:09:00.0 not found on this host');
    expect(hostdevErrorOf(() => planDetach(hostView({ devices: [{ ...vf, iommuGroup: null }] }), {
      address: vf.address,
      stubDriver: 'vfio-pci',
      force: false,
    })).code).toBe('HOSTDEV_NO_IOMMU_GROUP');
  });
});

describe('reattach plan', () => {
  it('clears driver_override, unbinds from the stub, probes and checks the original driver', () => {
    const onStub = { ...vf, driver: 'vfio-pci', driverOverride: 'vfio-pci' };
    const plan = planReattach(hostView({ devices: [onStub], tables: { active: [], inactive: [taken('0000:02:10.0', 'igbvf')] } }), vf.address);
    expect(lines(plan)).toEqual([
      'write /sys/bus/pci/devices/0000:02:10.0/driver_override "\\n"',
      'write /sys/bus/pci/drivers/vfio-pci/unbind "0000:02:10.0"',
      'write /sys/bus/pci/drivers_probe "0000:02:10.0"',
      'check 0000:02:10.0 driver is igbvf',
    ]);
    expect(plan.changes).toEqual([removeChange(vf.address)]);
  });

  it('a device that was on the stub before hostdev took it stays there', () => {
    const onStub = { ...vf, driver: 'vfio-pci' };
    const plan = planReattach(hostView({ devices: [onStub], tables: { active: [], inactive: [taken('0000:02:10.0', 'vfio-pci')] } }), vf.address);
    expect(planSteps(plan)).toEqual([]);
    expect(plan.changes).toEqual([removeChange(vf.address)]);
  });

  it('a device that had no driver is unbound and probed, so a driver loaded since binds; none is accepted', () => {
    const onStub = { ...vf, driver: 'vfio-pci', driverOverride: 'vfio-pci' };
    const plan = planReattach(hostView({ devices: [onStub], tables: { active: [], inactive: [taken('0000:02:10.0', null)] } }), vf.address);
    expect(lines(plan)).toEqual([
      'write /sys/bus/pci/devices/0000:02:10.0/driver_override "\\n"',
      'write /sys/bus/pci/drivers/vfio-pci/unbind "0000:02:10.0"',
      'write /sys/bus/pci/drivers_probe "0000:02:10.0"',
      'check 0000:02:10.0 driver is a host driver or none',
    ]);
  });

  it('a device on no driver and in no table is probed for its host driver, and must get one', () => {
    const unbound = { ...vf, driver: null };
    const plan = planReattach(hostView({ devices: [unbound] }), vf.address);
    expect(lines(plan)).toEqual(['write /sys/bus/pci/drivers_probe "0000:02:10.0"', 'check 0000:02:10.0 driver is a host driver']);
    expect(plan.changes).toEqual([]);
    expect(planSteps(planReattach(hostView({ devices: [vf] }), vf.address))).toEqual([]);
  });

  it('prunes every vanished inactive entry, and a vanished target is pruned, not an error', () => {
    const tables: Tables = { active: [], inactive: [taken('0000:02:10.0', 'igbvf'), taken('0000:02:10.2', 'igbvf')] };
    const plan = planReattach(hostView({ devices: [], missing: ['0000:02:10.0', '0000:02:10.2'], tables }), vf.address);
    expect(plan.pruned).toEqual(['0000:02:10.0', '0000:02:10.2']);
    expect(plan.changes).toEqual([
      removeChange(addr('0000:02:10.0')),
      removeChange(addr('0000:02:10.2')),
    ]);
  });

  it('refuses an active device', () => {
    const tables: Tables = { active: [toActive(taken('0000:02:10.0', 'igbvf'), vm1)], inactive: [] };
    expect(hostdevErrorOf(() => planReattach(hostView({ devices: [vf], tables }), vf.address)).code).toBe('HOSTDEV_IN_USE');
  });
});

describe('reset plan', () => {
  it('writes the reset file and reports the kernel\'s first reset method', () => {
    const plan = planReset(hostView({ devices: [{ ...vf, resetMethods: ['flr', 'bus'] }] }), vf.address);
    expect(lines(plan)).toEqual(['write /sys/bus/pci/devices/0000:02:10.0/reset "1"']);
    expect(plan.resets).toEqual([{ address: vf.address, method: 'flr' }]);
  });

  it('refuses a device without reset method', () => {
    expect(hostdevErrorOf(() => planReset(hostView({ devices: [{ ...vf, resetMethods: [] }] }), vf.address)).code).toBe(
      'HOSTDEV_RESET_UNSUPPORTED',
    );
  });

  it('refuses a bus reset that would hit a device the host uses, naming it', () => {
    const a = pciDevice('0000:05:00.0', { resetMethods: ['bus'], driver: 'vfio-pci' });
    const b = pciDevice('0000:05:00.1', { driver: 'e1000e' });
    const error = hostdevErrorOf(() =>
      planReset(hostView({ devices: [a, b], busSiblings: { '0000:05:00.0': ['0000:05:00.0', '0000:05:00.1'] } }), a.address),
    );
    expect(error.code).toBe('HOSTDEV_RESET_UNSAFE');
    expect(error.message).toContain('0000:05:00.1');
  });
});

describe('assign plan', () => {
  it('detaches managed devices, resets them, then makes them active', () => {
    const plan = planAssign(hostView({ devices: [vf] }), assignRequest({ addresses: [vf.address] }));
    expect(lines(plan)).toEqual([
      'write /sys/bus/pci/devices/0000:02:10.0/driver_override "vfio-pci"',
      'write /sys/bus/pci/drivers/igbvf/unbind "0000:02:10.0"',
      'write /sys/bus/pci/drivers_probe "0000:02:10.0"',
      'check 0000:02:10.0 driver is vfio-pci',
      'write /sys/bus/pci/devices/0000:02:10.0/reset "1"',
    ]);
    expect(plan.changes).toEqual([
      { kind: 'set-active', entry: { ...taken('0000:02:10.0', 'igbvf', true), usedBy: vm1 } },
    ]);
  });

  it('says "not found" for a missing device instead of skipping it', () => {
    const error = hostdevErrorOf(() =>
      planAssign(hostView({ devices: [vf], missing: ['0000:02:10.2'] }), assignRequest({ addresses: [vf.address, addr('0000:02:10.2')] })),
    );
    expect(error.message).toBe('PCI device 0000:02:10.2 not found on this host');
  });

  it('refuses an active device even for the same domain', () => {
    const tables: Tables = { active: [toActive(taken('0000:02:10.0', 'igbvf'), vm1)], inactive: [] };
    expect(hostdevErrorOf(() => planAssign(hostView({ devices: [vf], tables }), assignRequest({ addresses: [vf.address] }))).message).toBe(
      'PCI device 0000:02:10.0 is in use by driver qemu, domain vm1',
    );
  });

  it('refuses a bridge', () => {
    const bridge = pciDevice('0000:00:1c.0', { headerType: 'bridge', driver: 'pcieport' });
    expect(hostdevErrorOf(() => planAssign(hostView({ devices: [bridge] }), assignRequest({ addresses: [bridge.address] }))).code).toBe(
      'HOSTDEV_NOT_ENDPOINT',
    );
  });

  it('a GPU whose audio function is on its host driver is refused, naming the audio function and its driver', () => {
    const error = hostdevErrorOf(() => planAssign(hostView({ devices: [gpu, audio] }), assignRequest({ addresses: [gpu.address] })));
    expect(error.code).toBe('HOSTDEV_GROUP_CONFLICT');
    expect(error.message).toBe(
      'PCI device 0000:03:00.0 cannot be assigned: member 0000:03:00.1 of its IOMMU group 30 is in use by the host (driver snd_hda_intel)',
    );
  });

  it('--with-group takes the audio function along', () => {
    const plan = planAssign(hostView({ devices: [gpu, audio] }), assignRequest({ addresses: [gpu.address], withGroup: true }));
    expect(plan.changes.map((change) => change.kind === 'set-active' && change.entry.address)).toEqual([gpu.address, audio.address]);
  });

  it('a group member owned by another domain blocks, naming that domain', () => {
    const tables: Tables = { active: [toActive(taken('0000:03:00.1', 'snd_hda_intel', true), vm2)], inactive: [] };
    const error = hostdevErrorOf(() =>
      planAssign(hostView({ devices: [gpu, { ...audio, driver: 'vfio-pci' }], tables }), assignRequest({ addresses: [gpu.address], withGroup: true })),
    );
    expect(error.message).toContain('member 0000:03:00.1 of its IOMMU group 30 is in use by driver qemu, domain vm2');
  });

  it('group members that are unbound, on a stub or this domain\'s own do not block', () => {
    const tables: Tables = { active: [toActive(taken('0000:03:00.1', 'snd_hda_intel', true), vm1)], inactive: [] };
    const plan = planAssign(hostView({ devices: [gpu, { ...audio, driver: 'vfio-pci' }], tables }), assignRequest({ addresses: [gpu.address] }));
    expect(plan.changes).toHaveLength(1);
    const unbound = planAssign(hostView({ devices: [gpu, { ...audio, driver: null }] }), assignRequest({ addresses: [gpu.address] }));
    expect(unbound.changes).toHaveLength(1);
  });

  it('an unmanaged device not on a stub must be detached by hand first', () => {
    const error = hostdevErrorOf(() => planAssign(hostView({ devices: [vf] }), assignRequest({ addresses: [vf.address], managed: false })));
    expect(error.message).toBe('Unmanaged PCI device 0000:02:10.0 must be manually detached from the host (it is on driver igbvf)');
  });

  it('mixed: a device detached by hand stays unmanaged when a domain says managed', () => {
    const tables: Tables = { active: [], inactive: [taken('0000:02:10.0', 'igbvf')] };
    const plan = planAssign(hostView({ devices: [{ ...vf, driver: 'vfio-pci' }], tables }), assignRequest({ addresses: [vf.address] }));
    expect(plan.changes).toEqual([{ kind: 'set-active', entry: { ...taken('0000:02:10.0', 'igbvf', false), usedBy: vm1 } }]);
    expect(planWrites(plan).map((step) => step.action)).toEqual(['reset']);
  });

  it('loads the stub module once for several devices', () => {
    const vf2 = pciDevice('0000:02:10.2', { iommuGroup: 21 });
    const plan = planAssign(hostView({ devices: [vf, vf2], loadedDrivers: ['igbvf'] }), assignRequest({ addresses: [vf.address, vf2.address] }));
    expect(lines(plan).filter((line) => line.startsWith('load-module'))).toEqual(['load-module vfio-pci']);
  });
});

describe('release plan', () => {
  const activeVf = toActive(taken('0000:02:10.0', 'igbvf', true), vm1);
  const onStub = { ...vf, driver: 'vfio-pci', driverOverride: 'vfio-pci' };

  it('resets, then reattaches managed devices to their original driver and removes them', () => {
    const plan = planRelease(hostView({ devices: [onStub], tables: { active: [activeVf], inactive: [] } }), { owner: vm1 });
    expect(lines(plan)).toEqual([
      'write /sys/bus/pci/devices/0000:02:10.0/reset "1"',
      'write /sys/bus/pci/devices/0000:02:10.0/driver_override "\\n"',
      'write /sys/bus/pci/drivers/vfio-pci/unbind "0000:02:10.0"',
      'write /sys/bus/pci/drivers_probe "0000:02:10.0"',
      'check 0000:02:10.0 driver is igbvf',
    ]);
    expect(plan.changes).toEqual([removeChange(vf.address)]);
    expect(plan.fallbacks).toEqual([{ address: vf.address, phase: 'reattach', change: { kind: 'set-inactive', entry: taken('0000:02:10.0', 'igbvf', true) } }]);
    expect(plan.onFailure).toBe('continue');
  });

  it('unmanaged devices stay inactive on the stub', () => {
    const unmanaged = toActive(taken('0000:02:10.0', 'igbvf', false), vm1);
    const plan = planRelease(hostView({ devices: [onStub], tables: { active: [unmanaged], inactive: [] } }), { owner: vm1 });
    expect(planWrites(plan).map((step) => step.action)).toEqual(['reset']);
    expect(plan.changes).toEqual([{ kind: 'set-inactive', entry: taken('0000:02:10.0', 'igbvf', false) }]);
  });

  it('only touches devices of that (driver, domain)', () => {
    const other = toActive(taken('0000:02:10.2', 'igbvf', true), { driver: 'xen', domain: 'vm1', hypervisor: 'xen', vm: 'vm1' });
    const vf2 = pciDevice('0000:02:10.2', { driver: 'vfio-pci', iommuGroup: 21 });
    const plan = planRelease(hostView({ devices: [onStub, vf2], tables: { active: [activeVf, other], inactive: [] } }), {
      owner: vm1,
      addresses: [vf.address, vf2.address],
    });
    expect(planWrites(plan).every((step) => step.address === vf.address)).toBe(true);
    expect(plan.notes.join('\n')).toContain('0000:02:10.2 is used by driver xen, domain vm1');
  });

  it('the seed: a vanished device is removed from both tables and reported as pruned', () => {
    const tables: Tables = { active: [activeVf, toActive(taken('0000:03:00.0', 'nvidia', true), vm1)], inactive: [] };
    const gpuOnStub = { ...gpu, driver: 'vfio-pci', driverOverride: 'vfio-pci' };
    const plan = planRelease(hostView({ devices: [gpuOnStub], missing: [vf.address], tables }), { owner: vm1 });
    expect(plan.pruned).toEqual([vf.address]);
    expect(plan.changes).toContainEqual(removeChange(vf.address));
    expect(plan.changes).toContainEqual(removeChange(gpu.address));
    expect(planWrites(plan).every((step) => step.address === gpu.address)).toBe(true);
  });
});

describe('rollback steps', () => {
  it('take a half-detached device back to its driver and override with an explicit bind', () => {
    const halfway = { ...vf, driver: null, driverOverride: 'vfio-pci' };
    expect(restoreSteps(hostFiles, halfway, { driver: 'igbvf', driverOverride: null }).map(formatStep)).toEqual([
      'write /sys/bus/pci/devices/0000:02:10.0/driver_override "\\n"',
      'write /sys/bus/pci/drivers/igbvf/bind "0000:02:10.0"',
      'check 0000:02:10.0 driver is igbvf',
    ]);
  });

  it('nothing to do for a device that is as it was', () => {
    expect(restoreSteps(hostFiles, vf, { driver: 'igbvf', driverOverride: null })).toEqual([]);
  });
});
