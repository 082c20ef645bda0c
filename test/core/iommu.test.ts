import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import type { Inventory, PciDevice } from '../../src/core/device.js';
import { assignmentVerdict, groupMembers, listGroups, type OwnerLookup } from '../../src/core/iommu.js';
import { pciDevice } from '../support/pci-device-fixture.js';

const a = (text: string): PciAddress => text as PciAddress;

/** Unbound and without a group unless told otherwise. */
function device(address: string, fields: Partial<PciDevice> = {}): PciDevice {
  return pciDevice(address, { driver: null, iommuGroup: null, ...fields });
}

/** A GPU + its audio function in group 1, a switch port with two endpoints in group 2, an NVMe alone. */
const inventory: Inventory = {
  iommuEnabled: true,
  warnings: [],
  devices: [
    device('0000:00:01.0', { headerType: 'bridge', class: '0604', driver: 'pcieport', iommuGroup: 2 }),
    device('0000:01:00.0', { driver: 'nouveau', iommuGroup: 1 }),
    device('0000:01:00.1', { class: '0403', driver: 'snd_hda_intel', iommuGroup: 1 }),
    device('0000:02:00.0', { driver: 'vfio-pci', iommuGroup: 2 }),
    device('0000:02:01.0', { iommuGroup: 2 }),
    device('0000:03:00.0', { class: '0108', driver: 'nvme', iommuGroup: 3 }),
    device('0000:04:00.0', { class: '0108', driver: 'nvme' }),
  ],
};

describe('IOMMU groups', () => {
  it('lists groups with their members in address order', () => {
    expect(listGroups(inventory).map((g) => [g.id, g.members.map((m) => m.address)])).toEqual([
      [1, ['0000:01:00.0', '0000:01:00.1']],
      [2, ['0000:00:01.0', '0000:02:00.0', '0000:02:01.0']],
      [3, ['0000:03:00.0']],
    ]);
  });

  it('gives the members of a device group, and none without a group', () => {
    expect(groupMembers(inventory, a('0000:01:00.1')).map((m) => m.address)).toEqual(['0000:01:00.0', '0000:01:00.1']);
    expect(groupMembers(inventory, a('0000:04:00.0'))).toEqual([]);
    expect(groupMembers(inventory, a('0000:09:00.0'))).toEqual([]);
  });
});

describe('assignmentVerdict', () => {
  it('says a device alone in its group can go alone, even while a host driver holds it', () => {
    expect(assignmentVerdict(inventory, a('0000:03:00.0'))).toEqual({
      address: '0000:03:00.0',
      group: 3,
      assignable: true,
      alone: true,
      companions: [],
      bridges: [],
      problems: [],
    });
  });

  it('refuses a GPU whose audio function is on a host driver, naming it', () => {
    const verdict = assignmentVerdict(inventory, a('0000:01:00.0'));
    expect(verdict).toMatchObject({ assignable: false, alone: false, companions: ['0000:01:00.1'] });
    expect(verdict.problems).toEqual([
      expect.objectContaining({ code: 'HOSTDEV_GROUP_CONFLICT', member: '0000:01:00.1', message: expect.stringContaining('snd_hda_intel') }),
    ]);
  });

  it('excludes bridges and accepts companions that are unbound or on a stub', () => {
    expect(assignmentVerdict(inventory, a('0000:02:01.0'))).toMatchObject({
      assignable: true,
      alone: false,
      companions: ['0000:02:00.0'],
      bridges: ['0000:00:01.0'],
      problems: [],
    });
  });

  it('refuses a companion owned by another domain, but not by the requester', () => {
    const owners: OwnerLookup = (address) => (address === '0000:02:00.0' ? { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } : null);
    const other = assignmentVerdict(inventory, a('0000:02:01.0'), { owners, requester: { driver: 'qemu', domain: 'vm2', hypervisor: 'qemu', vm: 'vm2' } });
    expect(other.problems.map((p) => p.code)).toEqual(['HOSTDEV_GROUP_CONFLICT']);
    expect(other.problems[0]!.message).toContain('vm1');
    const same = assignmentVerdict(inventory, a('0000:02:01.0'), { owners, requester: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } });
    expect(same.assignable).toBe(true);
    const owned = assignmentVerdict(inventory, a('0000:02:00.0'), { owners });
    expect(owned.problems.map((p) => p.code)).toEqual(['HOSTDEV_IN_USE']);
  });

  it('refuses bridges, unknown devices, devices without a group and hosts without IOMMU', () => {
    const codes = (address: string, inv: Inventory = inventory): string[] =>
      assignmentVerdict(inv, a(address)).problems.map((p) => p.code);
    expect(codes('0000:00:01.0')).toEqual(['HOSTDEV_NOT_ENDPOINT']);
    expect(codes('0000:09:00.0')).toEqual(['HOSTDEV_DEVICE_NOT_FOUND']);
    expect(codes('0000:04:00.0')).toEqual(['HOSTDEV_NO_IOMMU_GROUP']);
    expect(codes('0000:03:00.0', { ...inventory, iommuEnabled: false })).toEqual(['HOSTDEV_NO_IOMMU']);
  });
});
