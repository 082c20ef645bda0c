import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import {
  describeEvent,
  diffSnapshots,
  matchReturned,
  snapshotOf,
  type SnapshotInput,
} from '../../src/core/events.js';

const a = (s: string): PciAddress => s as PciAddress;
const PF = a('0000:03:00.0');
const VF0 = a('0000:03:10.0');
const VF1 = a('0000:03:10.2');
const GPU = a('0000:01:00.0');

function host(numVfs: number, drivers: Record<string, string | null> = {}): SnapshotInput[] {
  const vfs = [VF0, VF1].slice(0, numVfs);
  const driverOf = (address: string, fallback: string): string | null => (address in drivers ? (drivers[address] ?? null) : fallback);
  return [
    { address: GPU, driver: driverOf(GPU, 'nouveau'), physfn: null, virtfns: [], sriov: null },
    { address: PF, driver: 'igb', physfn: null, virtfns: vfs, sriov: { totalVfs: 7, numVfs } },
    ...vfs.map((vf) => ({ address: vf, driver: driverOf(vf, 'igbvf'), physfn: PF, virtfns: [], sriov: null })),
  ];
}

describe('diffing two snapshots of the host', () => {
  it('gives no event when nothing changed', () => {
    expect(diffSnapshots(snapshotOf(host(2)), snapshotOf(host(2)))).toEqual([]);
  });

  it('reports sriov_numvfs 2 -> 0 as a VF count change, then one removal per VF with its PF and index', () => {
    const events = diffSnapshots(snapshotOf(host(2)), snapshotOf(host(0)));
    expect(events).toEqual([
      { kind: 'vf-count-change', address: PF, from: 2, to: 0 },
      { kind: 'remove', address: VF0, pf: PF, vfIndex: 0, driver: 'igbvf' },
      { kind: 'remove', address: VF1, pf: PF, vfIndex: 1, driver: 'igbvf' },
    ]);
  });

  it('reports VFs coming back as additions carrying their PF and index', () => {
    const events = diffSnapshots(snapshotOf(host(0)), snapshotOf(host(1)));
    expect(events).toEqual([
      { kind: 'vf-count-change', address: PF, from: 0, to: 1 },
      { kind: 'add', address: VF0, pf: PF, vfIndex: 0, driver: 'igbvf' },
    ]);
  });

  it('tells bind, unbind and a driver change between two polls apart', () => {
    const before = snapshotOf(host(2, { [VF1]: null, [GPU]: 'nouveau' }));
    const after = snapshotOf(host(2, { [VF0]: null, [VF1]: 'vfio-pci', [GPU]: 'vfio-pci' }));
    expect(diffSnapshots(before, after).map(describeEvent)).toEqual([
      'driver-change 0000:01:00.0 nouveau -> vfio-pci',
      'unbind 0000:03:10.0 (VF 0 of 0000:03:00.0) from igbvf',
      'bind 0000:03:10.2 (VF 1 of 0000:03:00.0) to vfio-pci',
    ]);
  });
});

describe('recognising a VF that returns', () => {
  const departed = [
    { address: VF0, pf: PF, vfIndex: 0, owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } },
    { address: VF1, pf: PF, vfIndex: 1, owner: null },
  ];

  it('matches an added VF with the same PF and VF index', () => {
    const events = diffSnapshots(snapshotOf(host(0)), snapshotOf(host(1)));
    const { returned, stillAway } = matchReturned(departed, events);
    expect(returned).toEqual([{ departed: departed[0], address: VF0 }]);
    expect(stillAway).toEqual([departed[1]]);
  });

  it('does not match a device at the same address that is not that VF of that PF', () => {
    const events = [{ kind: 'add' as const, address: VF0, pf: a('0000:04:00.0'), vfIndex: 0, driver: null }];
    expect(matchReturned(departed, events).returned).toEqual([]);
  });
});

describe('a device that left and came back between two snapshots', () => {
  it('is reported as removed and added when an event source saw it leave', () => {
    const events = diffSnapshots(snapshotOf(host(2)), snapshotOf(host(2)), new Set([VF0]));
    expect(events.map((e) => `${e.kind} ${e.address}`)).toEqual([`remove ${VF0}`, `add ${VF0}`]);
  });
});

describe('VF indexes in a snapshot', () => {
  it('are N of the virtfnN links, not positions: VF 1 stays VF 1 while virtfn0 is already gone', () => {
    // Linux's SR-IOV disable removes virtfn0 first; a snapshot taken then has only virtfn1.
    const midDisable: SnapshotInput[] = [
      { address: PF, driver: 'igb', physfn: null, virtfns: [VF1], sriov: { totalVfs: 7, numVfs: 2 }, virtfnLinks: [{ index: 1, address: VF1 }] },
      { address: VF1, driver: null, physfn: PF, virtfns: [], sriov: null },
    ];
    expect(snapshotOf(midDisable).get(VF1)?.vfIndex).toBe(1);
    const removed = diffSnapshots(snapshotOf(midDisable), snapshotOf(host(0))).find((e) => e.kind === 'remove');
    expect(removed).toMatchObject({ address: VF1, pf: PF, vfIndex: 1 });
  });
});
