import type { PciAddress } from '../core/address.js';
import type { DeviceEntry } from '../core/device-entry.js';
import type { DeviceKey } from '../core/device-key.js';
import { nvmeController, planNvmeAssign, planNvmeRelease } from '../core/nvme.js';
import type { Owner, Tables } from '../core/tables.js';
import { readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { readNonPciInventory } from '../sysfs/nonpci-inventory.js';
import type { Operation, StateChange } from '../state/store.js';
import { holderChange, type DeviceAssignReport, type DevicePorts, type DeviceReleaseReport } from './device-ops.js';
import type { Holder } from '../core/holders.js';
import type { OperationReport, ReleaseReport } from './reports.js';

/*
 * Assign and release of NVMe namespaces (core/nvme.ts has the rules): the namespaces' entries go
 * into the commit of the PCI assign or release of their controller (the one PCI plan, journaled),
 * so a namespace is never recorded without its controller detached, nor a controller given back
 * while the domain holds one of its namespaces. Without a controller to change, the entries are a
 * commit of their own.
 */

/** State changes an operation adds to its own commit, worked out under its lock. */
export type Bookkeeping = (op: Operation) => Promise<StateChange[]>;

export interface NvmePorts extends DevicePorts {
  /** The PCI assign of the controllers (managed: back to nvme on release), `also` in its commit. */
  readonly assignControllers: (owner: Owner, controllers: readonly PciAddress[], dryRun: boolean, also: Bookkeeping) => Promise<OperationReport>;
  readonly releaseControllers: (owner: Owner, controllers: readonly PciAddress[], dryRun: boolean, also: Bookkeeping) => Promise<ReleaseReport>;
}

/** What an NVMe assign or release did to the controllers besides the namespaces' entries. */
export interface NvmeControllers {
  /** Controllers taken from nvme (assign) or given back to it (release). */
  readonly controllers: readonly PciAddress[];
  /** The PCI plan's steps, one line each (as `--dry-run` prints them). */
  readonly steps: readonly string[];
}

const heldBy = (entries: readonly DeviceEntry[]): Map<DeviceKey, DeviceEntry> => new Map(entries.map((entry) => [entry.key, entry]));

async function assignFacts(ports: NvmePorts, keys: readonly DeviceKey[], held: readonly DeviceEntry[], tables: Tables) {
  const inventory = await readNonPciInventory(ports.layout, ['nvme'], readTimeoutFromEnv());
  const controllers = [...new Set(keys.map(nvmeController))];
  const controllerOwners = new Map<PciAddress, Owner>();
  for (const entry of tables.active) if (controllers.includes(entry.address)) controllerOwners.set(entry.address, entry.usedBy);
  const controllerDrivers = new Map<PciAddress, string | null>();
  for (const controller of controllers) {
    if (await ports.reader.exists(controller)) controllerDrivers.set(controller, await ports.reader.driverOf(controller));
  }
  return { present: new Set(inventory.nvme.map((namespace) => namespace.key)), held: heldBy(held), controllerOwners, controllerDrivers };
}

export async function assignNvme(
  ports: NvmePorts,
  owner: Owner,
  keys: readonly DeviceKey[],
  dryRun: boolean,
  /** The domain's holder, registered in the commit of the namespaces' entries. */
  holder?: Holder,
): Promise<DeviceAssignReport & NvmeControllers> {
  const first = planNvmeAssign(owner, keys, await assignFacts(ports, keys, ports.store.readDevices(), ports.store.readTables()));
  const assigned = first.entries.map((entry) => entry.key);
  const base = { operation: 'assign' as const, dryRun, owner, assigned, notes: first.notes };
  // Planned again under the lock, from what the tables say then.
  const entries = async (op: Operation): Promise<StateChange[]> => [
    ...planNvmeAssign(owner, keys, await assignFacts(ports, keys, op.devices(), op.tables())).entries.map((entry): StateChange => ({ kind: 'set-device', entry })),
    ...holderChange(owner, holder),
  ];
  if (first.detach.length === 0) {
    if (!dryRun) await ports.store.exclusive('assign', async (op) => op.commit(await entries(op)));
    return { ...base, controllers: [], steps: [] };
  }
  const pci = await ports.assignControllers(owner, first.detach, dryRun, entries);
  return { ...base, notes: [...first.notes, ...pci.notes], controllers: first.detach, steps: pci.steps };
}

export async function releaseNvme(
  ports: NvmePorts,
  owner: Owner,
  keys: readonly DeviceKey[] | undefined,
  dryRun: boolean,
): Promise<DeviceReleaseReport & NvmeControllers> {
  const plan = planNvmeRelease(owner, keys, heldBy(ports.store.readDevices()));
  const base = { operation: 'release' as const, dryRun, owner, released: plan.remove, pruned: [], notes: plan.notes };
  const removals = async (op: Operation): Promise<StateChange[]> =>
    planNvmeRelease(owner, keys, heldBy(op.devices())).remove.map((key): StateChange => ({ kind: 'remove-device', key }));
  if (plan.reattach.length === 0) {
    if (!dryRun) await ports.store.exclusive('release', async (op) => op.commit(await removals(op)));
    return { ...base, controllers: [], steps: [] };
  }
  const pci = await ports.releaseControllers(owner, plan.reattach, dryRun, removals);
  return { ...base, notes: [...plan.notes, ...pci.notes], controllers: plan.reattach, steps: pci.steps };
}
