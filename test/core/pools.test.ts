import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import type { PciDevice } from '../../src/core/device.js';
import { parseIndexRanges, poolMembers, preferredAllocation, type AllocationCandidate, type Pool, type PoolCandidate } from '../../src/core/pools.js';
import { parsePoolConfig } from '../../src/k8s/pool-config.js';
import { isHostdevError } from '../../src/core/errors.js';

function fn(address: string, extra: Partial<PciDevice> = {}): PciDevice {
  return {
    address: address as PciAddress, vendor: '8086', device: '10ca', subsystemVendor: null, subsystemDevice: null, class: '0200', progIf: '00',
    revision: null, vendorName: null, deviceName: null, driver: 'igbvf', driverOverride: null, iommuGroup: null, numaNode: 0,
    headerType: 'endpoint', parent: null, physfn: null, virtfns: [], sriov: null, netdevs: [], resetMethods: [], flr: null, ...extra,
  };
}

describe('pool membership', () => {
  const pf0 = fn('0000:01:00.0', { driver: 'igb', device: '10c9', netdevs: ['enp1s0f0'], virtfns: ['0000:01:10.0', '0000:01:10.2', '0000:01:10.4'] as PciAddress[] });
  const vfs = ['0000:01:10.0', '0000:01:10.2', '0000:01:10.4'].map((a, i) => fn(a, { physfn: pf0.address, iommuGroup: 10 + i }));
  const nvme = fn('0000:02:00.0', { vendor: '144d', device: 'a808', class: '0108', driver: 'nvme', iommuGroup: 20 });
  const candidates: PoolCandidate[] = [
    { device: pf0, pfNetdevs: [], vfIndex: null },
    ...vfs.map((device, vfIndex) => ({ device, pfNetdevs: ['enp1s0f0'], vfIndex })),
    { device: nvme, pfNetdevs: [], vfIndex: null },
  ];
  const pool = (name: string, selectors: Pool['selectors'], wholeGroups = false): Pool => ({ name, resourceName: `hostdev.io/${name}`, selectors, wholeGroups });
  const names = (members: Map<string, PciDevice[]>, name: string): string[] => members.get(name)!.map((d) => d.address);

  it('takes VFs by PF netdev and index ranges, by IDs, by class; a PF with VFs never', () => {
    const members = poolMembers([pool('low', [{ pf: 'enp1s0f0#0,2' }]), pool('rest', [{ vendor: '8086' }]), pool('disks', [{ class: '01' }])], candidates);
    expect(names(members, 'low')).toEqual(['0000:01:10.0', '0000:01:10.4']);
    expect(names(members, 'rest')).toEqual(['0000:01:10.2']);
    expect(names(members, 'disks')).toEqual(['0000:02:00.0']);
  });

  it('first pool wins, and wholeGroups leaves out a device whose group has an endpoint outside the pool', () => {
    const shared = [...candidates, { device: fn('0000:02:00.1', { vendor: '1b4b', class: '0106', driver: 'ahci', iommuGroup: 20 }), pfNetdevs: [], vfIndex: null }];
    const members = poolMembers([pool('disks', [{ driver: 'nvme' }], true), pool('again', [{ driver: 'nvme' }])], shared);
    expect(names(members, 'disks')).toEqual([]);
    expect(names(members, 'again')).toEqual([]);
    expect(names(poolMembers([pool('disks', [{ driver: 'nvme' }, { driver: 'ahci' }], true)], shared), 'disks')).toEqual(['0000:02:00.0', '0000:02:00.1']);
  });

  it('reads index ranges', () => {
    expect([...parseIndexRanges('0-3,6')!]).toEqual([0, 1, 2, 3, 6]);
    expect(parseIndexRanges('3-1')).toBeNull();
    expect(parseIndexRanges('a')).toBeNull();
  });
});

describe('preferredAllocation', () => {
  const candidate = fc.record({
    n: fc.integer({ min: 0, max: 63 }),
    numaNode: fc.constantFrom(0, 1, null),
    pf: fc.constantFrom('0000:01:00.0', '0000:01:00.1', '0000:81:00.0', null),
    iommuGroup: fc.option(fc.integer({ min: 0, max: 40 }), { nil: null }),
  });
  const devicesArb = fc.uniqueArray(candidate, { selector: (c) => c.n, maxLength: 24 }).map((list) =>
    list.map((c): AllocationCandidate => ({ id: `0000:05:${c.n.toString(16).padStart(2, '0')}.0` as PciAddress, numaNode: c.numaNode, pf: c.pf as PciAddress | null, iommuGroup: c.iommuGroup })),
  );

  it('gives min(size, available) distinct available devices, must-includes first', () => {
    fc.assert(
      fc.property(devicesArb, fc.integer({ min: 0, max: 30 }), fc.nat(), (available, size, seed) => {
        const must = available.filter((_, i) => (seed >> i) % 3 === 0).slice(0, size).map((c) => c.id);
        const chosen = preferredAllocation(available, must, size);
        expect(chosen.length).toBe(Math.min(size, available.length));
        expect(new Set(chosen).size).toBe(chosen.length);
        expect(chosen.every((id) => available.some((c) => c.id === id))).toBe(true);
        expect(chosen.slice(0, must.length)).toEqual(must);
        for (const id of must) expect(chosen).toContain(id);
      }),
    );
  });

  it('keeps to one NUMA node when that node alone has enough, and takes group mates along when there is room', () => {
    fc.assert(
      fc.property(devicesArb, fc.integer({ min: 1, max: 6 }), (available, size) => {
        const chosen = preferredAllocation(available, [], size).map((id) => available.find((c) => c.id === id)!);
        const perNode = new Map<number | null, number>();
        for (const c of available) perNode.set(c.numaNode, (perNode.get(c.numaNode) ?? 0) + 1);
        const groupsWhole = available.every((c) => c.iommuGroup === null || available.filter((x) => x.iommuGroup === c.iommuGroup).length === 1);
        if (groupsWhole && [...perNode.values()].some((count) => count >= size)) {
          expect(new Set(chosen.map((c) => c.numaNode)).size).toBeLessThanOrEqual(1);
        }
        // A chosen device's IOMMU group mates are all chosen too, unless the allocation is full.
        for (const c of chosen) {
          if (c.iommuGroup === null || chosen.length === size) continue;
          for (const mate of available.filter((x) => x.iommuGroup === c.iommuGroup)) expect(chosen).toContain(mate);
        }
      }),
    );
  });

  it('spreads over PFs of the chosen node', () => {
    const on = (n: number, pf: string): AllocationCandidate => ({ id: `0000:01:10.${n}` as PciAddress, numaNode: 0, pf: pf as PciAddress, iommuGroup: null });
    const chosen = preferredAllocation([on(0, 'A'), on(1, 'A'), on(2, 'A'), on(3, 'B'), on(4, 'B')], [], 2);
    expect(chosen).toEqual(['0000:01:10.0', '0000:01:10.3']);
  });
});

describe('the pool file', () => {
  it('names the line and the field of a mistake', () => {
    const text = 'pools:\n  - name: igb-vf\n    resourceName: hostdev.io/igb-vf\n    selectors:\n      - { vendor: "80861" }\n';
    let error: unknown;
    try {
      parsePoolConfig(text, 'pools.yaml');
    } catch (caught) {
      error = caught;
    }
    expect(isHostdevError(error) && error.message).toBe('pools.yaml: line 5: pools.0.selectors.0.vendor: four hex digits, e.g. "8086"');
    expect(() => parsePoolConfig('pools: [', 'p.yaml')).toThrow(/p\.yaml: line 1/);
    expect(parsePoolConfig('{"pools":[{"name":"a","resourceName":"x.io/a","selectors":[{"driver":"igbvf"}]}]}', 'p.json')).toEqual([
      { name: 'a', resourceName: 'x.io/a', wholeGroups: false, selectors: [{ driver: 'igbvf' }] },
    ]);
  });
});
