import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import type { Plan, Step, StepGroup, WriteAction } from '../../src/core/plan-types.js';
import { executePlan, type StepReader } from '../../src/manager/executor.js';
import type { VfNetConfigurator } from '../../src/manager/vf-net.js';
import { StateStore } from '../../src/state/store.js';
import { tempDir } from '../state/helpers.js';

// The executor journals the intents of a step group's writes in one durable commit before the
// first of them (one fsync per group, not one per write): when the kernel sees a group's first
// write, another connection already reads every intent of that group, and none of a later group.
const A = '0000:01:00.0' as PciAddress;
const B = '0000:02:00.0' as PciAddress;
const restore = { driver: 'igb', driverOverride: null };

function write(address: PciAddress, action: WriteAction, file: string, value: string): Step {
  return { kind: 'write', address, action, hostPath: `/sys/bus/pci/devices/${address}/${file}`, value };
}

function group(address: PciAddress, steps: Step[]): StepGroup {
  return { address, phase: 'detach', restore, steps };
}

const text = (steps: readonly Step[]): string[] =>
  steps.flatMap((step) => (step.kind === 'write' ? [`${step.hostPath}=${step.value}`] : []));

/** A kernel port that notes, at every write, what another connection reads of the journal then. */
function watchingKernel(other: StateStore) {
  const seen: Array<{ write: string; journal: string[]; done: boolean[] }> = [];
  const kernel = {
    write: async (hostPath: string, value: string) => {
      const journal = other.readJournal();
      seen.push({ write: `${hostPath}=${value}`, journal: journal.map((row) => `${row.hostPath}=${row.value}`), done: journal.map((row) => row.done) });
    },
    loadModule: async () => {},
  };
  return { seen, kernel };
}

const reader = {} as StepReader;

describe("a step group's intents", () => {
  it('are all journaled before its first write, the next group after; done marks go with the next group', async () => {
    const dir = tempDir();
    const store = StateStore.open(dir);
    const other = StateStore.open(dir);
    const { seen, kernel } = watchingKernel(other);
    const groups = [
      group(A, [write(A, 'set-override', 'driver_override', 'vfio-pci'), write(A, 'unbind', 'driver/unbind', A), write(A, 'probe', 'drivers_probe', A)]),
      group(B, [write(B, 'set-override', 'driver_override', 'vfio-pci'), write(B, 'unbind', 'driver/unbind', B)]),
    ];
    const plan: Plan = { operation: 'detach', onFailure: 'rollback', fallbacks: [], groups, changes: [], pruned: [], resets: [], notes: [] };
    await store.exclusive('detach', (op) => executePlan(plan, op, { kernel, reader }));
    const first = text(groups[0]!.steps);
    const second = text(groups[1]!.steps);
    expect(seen.map((s) => s.write)).toEqual([...first, ...second]);
    for (const s of seen.slice(0, 3)) expect(s.journal).toEqual(first);
    for (const s of seen.slice(3)) {
      expect(s.journal).toEqual([...first, ...second]);
      // The first group's done marks went with the second group's intents.
      expect(s.done).toEqual([true, true, true, false, false]);
    }
    expect(other.readJournal()).toEqual([]);
    store.close();
    other.close();
  });

  it("journals the writes after a net-save after it (its commit clears the operation's rows)", async () => {
    const dir = tempDir();
    const store = StateStore.open(dir);
    const other = StateStore.open(dir);
    const { seen, kernel } = watchingKernel(other);
    const net = { current: async () => ({ mac: '52:54:00:00:00:01', vlan: 0, spoofchk: true, trust: false }) } as unknown as VfNetConfigurator;
    const target = { address: A, pf: B, pfNetdev: 'eth0', vfIndex: 0 };
    const before = write(A, 'set-override', 'driver_override', 'vfio-pci');
    const after = write(A, 'unbind', 'driver/unbind', A);
    const steps: Step[] = [before, { kind: 'net-save', address: A, target, request: { vlan: 7 } }, after];
    const plan: Plan = { operation: 'assign', onFailure: 'rollback', fallbacks: [], groups: [group(A, steps)], changes: [], pruned: [], resets: [], notes: [] };
    await store.exclusive('assign', (op) => executePlan(plan, op, { kernel, reader, net }));
    expect(seen).toEqual([
      { write: text([before])[0], journal: text([before]), done: [false] },
      { write: text([after])[0], journal: text([after]), done: [false] },
    ]);
    store.close();
    other.close();
  });
});
