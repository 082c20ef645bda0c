import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { planVfCount, type VfCountRequest, type VfHolding } from '../../src/core/vf-count.js';
import { numVfsWriteError } from '../../src/manager/kernel-errors.js';
import { hostFiles } from '../../src/sysfs/paths.js';
import { hostdevErrorOf } from '../support/errors.js';

const PF = '0000:03:00.0' as PciAddress;
const vf = (index: number, extra: Partial<VfHolding> = {}): VfHolding => ({
  address: `0000:03:10.${index}` as PciAddress,
  vfIndex: index,
  driver: 'igbvf',
  table: null,
  owner: null,
  ...extra,
});
const isStubDriver = (driver: string): boolean => driver === 'vfio-pci' || driver === 'pci-stub';

function request(extra: Partial<VfCountRequest>): VfCountRequest {
  return { pf: PF, numVfs: 4, totalVfs: 7, requested: 2, vfs: [0, 1, 2, 3].map((i) => vf(i)), force: false, autoprobe: null, isStubDriver, files: hostFiles, restore: { driver: 'igb', driverOverride: null }, ...extra };
}

describe('planning a VF count change', () => {
  it('goes 4 -> 0 -> 2, as the kernel requires', () => {
    const plan = planVfCount(request({}));
    expect(plan.writes).toEqual([
      { kind: 'write', address: PF, action: 'sriov-numvfs', hostPath: `/sys/bus/pci/devices/${PF}/sriov_numvfs`, value: '0' },
      { kind: 'write', address: PF, action: 'sriov-numvfs', hostPath: `/sys/bus/pci/devices/${PF}/sriov_numvfs`, value: '2' },
    ]);
  });

  it('is a plan the executor applies: one group per write, the first that fails ends it', () => {
    const plan = planVfCount(request({ autoprobe: true }));
    expect(plan.plan).toMatchObject({ operation: 'vf-set-count', onFailure: 'stop', changes: [] });
    expect(plan.plan.groups.map((group) => group.steps)).toEqual(plan.writes.map((write) => [write]));
    expect(plan.plan.groups.every((group) => group.phase === 'vf-count' && group.restore.driver === 'igb')).toBe(true);
  });

  it('writes the count once from 0, and nothing when the count is already right', () => {
    expect(planVfCount(request({ numVfs: 0, vfs: [] })).writes.map((w) => w.value)).toEqual(['2']);
    expect(planVfCount(request({ requested: 4 })).writes).toEqual([]);
  });

  it('turns autoprobe off before creating VFs that should go straight to vfio-pci', () => {
    const plan = planVfCount(request({ numVfs: 0, vfs: [], autoprobe: false }));
    expect(plan.writes.map((w) => `${w.hostPath.split('/').pop()}=${w.value}`)).toEqual([
      'sriov_drivers_autoprobe=0',
      'sriov_numvfs=2',
    ]);
    expect(plan.expectDriver).toBe(false);
  });

  it('refuses while a VF is assigned or on a stub, naming each of them', () => {
    const error = hostdevErrorOf(() =>
      planVfCount(
        request({
          vfs: [
            vf(0, { driver: 'vfio-pci', table: 'active', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } }),
            vf(1),
            vf(2, { driver: 'vfio-pci' }),
            vf(3),
          ],
        }),
      ),
    );
    expect(error.code).toBe('HOSTDEV_VF_BUSY');
    expect(error.message).toContain('VF 0 0000:03:10.0 is in use by driver qemu, domain vm1');
    expect(error.message).toContain('VF 2 0000:03:10.2 is on stub driver vfio-pci');
    expect(error.message).not.toContain('10.1');
  });

  it('with --force plans the prune of table entries and reports stubbed VFs', () => {
    const plan = planVfCount(
      request({
        force: true,
        vfs: [vf(0, { driver: 'vfio-pci', table: 'active', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } }), vf(1, { driver: 'vfio-pci' })],
      }),
    );
    expect(plan.prune.map((v) => v.address)).toEqual(['0000:03:10.0']);
    expect(plan.stubbed.map((v) => v.address)).toEqual(['0000:03:10.1']);
    expect(plan.writes.map((w) => w.value)).toEqual(['0', '2']);
  });

  it('refuses more VFs than sriov_totalvfs with HOSTDEV_VF_RANGE (the kernel would say ERANGE)', () => {
    const error = hostdevErrorOf(() => planVfCount(request({ requested: 8 })));
    expect(error.code).toBe('HOSTDEV_VF_RANGE');
    expect(error.message).toBe('PF 0000:03:00.0 supports at most 7 VFs (sriov_totalvfs); 8 were requested');
    expect(hostdevErrorOf(() => planVfCount(request({ requested: -1 }))).code).toBe('HOSTDEV_USAGE');
  });

  it('maps ERANGE, EINVAL and EBUSY from the kernel to clear errors', () => {
    expect(numVfsWriteError(PF, '9', 'ERANGE', 7).code).toBe('HOSTDEV_VF_RANGE');
    expect(numVfsWriteError(PF, '2', 'EINVAL', 7).message).toContain('(EINVAL)');
    expect(numVfsWriteError(PF, '0', 'EBUSY', 7).hint).toContain('VM');
  });
});
