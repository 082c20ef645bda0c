import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { applyChanges, EMPTY_TABLES, makeOwner, removeChange, type TableChange, type Tables } from '../../src/core/tables.js';
import { StateStore } from '../../src/state/store.js';
import { addr, tempDir } from './helpers.js';
import { pciKey } from '../../src/core/device-key.js';

const address = fc.integer({ min: 1, max: 6 }).map(addr);
const withKey = <T extends { address: ReturnType<typeof addr> }>(entry: T) => ({ key: pciKey(entry.address), ...entry });
const driver = fc.constantFrom('e1000e', 'igb', null);
const change: fc.Arbitrary<TableChange> = fc.oneof(
  fc.record({
    kind: fc.constant('set-active' as const),
    entry: fc.record({
      address,
      usedBy: fc.tuple(fc.constantFrom('qemu', 'xen'), fc.constantFrom('vm1', 'vm2', 'vm3')).map(([hypervisor, vm]) => makeOwner(hypervisor, vm)),
      managed: fc.boolean(),
      stubDriver: fc.constantFrom('vfio-pci', 'mlx5_vfio_pci'),
      originalDriver: driver,
    }).map(withKey),
  }),
  fc.record({
    kind: fc.constant('set-inactive' as const),
    entry: fc.record({ address, managed: fc.boolean(), stubDriver: fc.constant('vfio-pci'), originalDriver: driver }).map(withKey),
  }),
  address.map(removeChange),
);

const store = StateStore.open(tempDir());
afterAll(() => store.close());

async function reset(): Promise<void> {
  await store.exclusive('reset', async (op) => {
    const { active, inactive } = op.tables();
    op.commit([...active, ...inactive].map((entry) => removeChange(entry.address)));
  });
}

describe('store commit against the pure model (core applyChanges)', () => {
  it('any sequence of commits leaves the tables the model predicts; no address is ever in both', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(change, { maxLength: 6 }), { maxLength: 8 }), async (commits) => {
        await reset();
        let model: Tables = EMPTY_TABLES;
        for (const changes of commits) {
          await store.exclusive('assign', async (op) => op.commit(changes));
          model = applyChanges(model, changes);
          const actual = store.readTables();
          expect(actual).toEqual(model);
          const inActive = new Set(actual.active.map((e) => e.address));
          expect(actual.inactive.filter((e) => inActive.has(e.address))).toEqual([]);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a commit that throws half-way changes nothing (one transaction)', async () => {
    await reset();
    const good: TableChange = { kind: 'set-inactive', entry: { key: pciKey(addr(1)), address: addr(1), managed: false, stubDriver: 'vfio-pci', originalDriver: null } };
    // A NOT NULL violation on the second change aborts the whole commit.
    const bad = { kind: 'set-inactive', entry: { key: pciKey(addr(2)), address: addr(2), managed: false, stubDriver: null, originalDriver: null } } as unknown as TableChange;
    await expect(store.exclusive('assign', async (op) => op.commit([good, bad]))).rejects.toThrow();
    expect(store.readTables()).toEqual(EMPTY_TABLES);
  });
});
