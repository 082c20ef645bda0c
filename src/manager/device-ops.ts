import { randomUUID } from 'node:crypto';
import type { PciAddress } from '../core/address.js';
import {
  deviceInUse,
  deviceNotFound,
  isHeldBy,
  isReturn,
  mdevKey,
  withoutHolder,
  planDeviceAssign,
  planDeviceRelease,
  type DepartedDevice,
  type DeviceEntry,
} from '../core/device-entry.js';
import { isUuid, keyKind, type DeviceKey } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';
import type { Holder } from '../core/holders.js';
import type { MdevDevice, MdevParent, NonPciDevice, NonPciInventory, NonPciKind } from '../core/nonpci-device.js';
import { sameOwner, type Owner } from '../core/tables.js';
import type { KernelPort } from '../sysfs/kernel-port.js';
import { readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { readNonPciInventory } from '../sysfs/nonpci-inventory.js';
import type { HostReader } from './host-reader.js';
import { nvmeController } from '../core/nvme.js';
import { isStubDriver } from '../core/stub-driver.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import type { Operation, StateChange, StateStore } from '../state/store.js';
import { mdevWriteFailed } from './kernel-errors.js';
import path from 'node:path';
import { definitionsDir, dropDefinition, readDefinitions, saveDefinition } from '../state/mdev-definitions.js';

/*
 * Assign, release, prune and mdev create/remove for the kinds other than PCI. Taking such a device
 * changes no driver (see core/device-entry.ts), so assign and release are table changes in one
 * commit under the state lock; the only sysfs writes are an mdev's `create` and `remove`, each
 * journaled before it is made (intendDevice) and cleared by the commit that follows it.
 */

export interface DevicePorts {
  readonly store: StateStore;
  readonly kernel: KernelPort;
  readonly layout: SysfsLayout;
  readonly reader: HostReader;
}

/** A device of another kind that left the host while a domain held it. */
export interface PrunedDevice {
  readonly key: DeviceKey;
  readonly usedBy: Owner;
  /** Recorded as departed (its return is watched for); false for the releasing domain's own. */
  readonly awaited: boolean;
}

export interface DeviceAssignReport {
  readonly operation: 'assign';
  readonly dryRun: boolean;
  readonly owner: Owner;
  readonly assigned: readonly DeviceKey[];
  readonly notes: readonly string[];
  /** NVMe namespaces: the controllers taken from nvme for them (the PCI plan), and its steps. */
  readonly controllers?: readonly PciAddress[];
  readonly steps?: readonly string[];
}

export interface DeviceReleaseReport {
  readonly operation: 'release';
  readonly dryRun: boolean;
  readonly owner: Owner;
  readonly released: readonly DeviceKey[];
  /** Entries removed because their device is gone (now, or earlier while the domain held them). */
  readonly pruned: readonly DeviceKey[];
  readonly notes: readonly string[];
  /** NVMe namespaces: the controllers given back to nvme with their last namespace, and the PCI plan's steps. */
  readonly controllers?: readonly PciAddress[];
  readonly steps?: readonly string[];
}

/** What the host shows now of the kinds of `keys` (bounded read, HOSTDEV_TIMEOUT past the bound). */
async function presentOf(layout: SysfsLayout, kinds: Iterable<NonPciKind>): Promise<{ inventory: NonPciInventory; present: Map<DeviceKey, NonPciDevice> }> {
  const inventory = await readNonPciInventory(layout, [...new Set(kinds)], readTimeoutFromEnv());
  const present = new Map<DeviceKey, NonPciDevice>();
  for (const device of [...inventory.usb, ...inventory.mdev, ...inventory.nvme, ...inventory.scsi]) present.set(device.key, device);
  return { inventory, present };
}

/**
 * What is there of the entries' devices: the inventory's, and the NVMe namespaces the inventory
 * cannot show because their controller is on its stub for their domain.
 */
async function presentFor(ports: DevicePorts, entries: readonly DeviceEntry[]): Promise<Map<DeviceKey, NonPciDevice | null>> {
  const { present } = await presentOf(ports.layout, kindsOf(entries.map((entry) => entry.key)));
  const here = new Map<DeviceKey, NonPciDevice | null>(present);
  for (const key of await heldNamespaces(ports, entries, new Set(present.keys()))) here.set(key, null);
  return here;
}

/**
 * Namespaces that are not in the nvme inventory because their controller is on a stub for the
 * domain that holds them (the kernel shows namespaces only while the controller is on nvme): they
 * are there. One whose controller left the host, or is back on nvme without it, is gone.
 */
async function heldNamespaces(ports: DevicePorts, entries: readonly DeviceEntry[], present: ReadonlySet<DeviceKey>): Promise<DeviceKey[]> {
  const tables = ports.store.readTables();
  const here: DeviceKey[] = [];
  for (const entry of entries) {
    if (entry.kind !== 'nvme' || present.has(entry.key)) continue;
    const controller = nvmeController(entry.key);
    const held = tables.active.some((active) => active.address === controller && sameOwner(active.usedBy, entry.usedBy));
    if (held && isStubDriver(await ports.reader.driverOf(controller))) here.push(entry.key);
  }
  return here;
}

const kindsOf = (keys: Iterable<DeviceKey>): NonPciKind[] => [...new Set([...keys].map((key) => keyKind(key) as NonPciKind))];

function heldBy(entries: readonly DeviceEntry[]): Map<DeviceKey, DeviceEntry> {
  return new Map(entries.map((entry) => [entry.key, entry]));
}

/**
 * The one prune rule for these kinds (as core/reconcile.ts's for PCI): every entry whose device is
 * gone is removed; one held by a domain other than the releasing one is recorded as departed, so
 * its return (same key, same identity) can be reported.
 */
export function pruneDevices(
  entries: readonly DeviceEntry[],
  present: ReadonlyMap<DeviceKey, NonPciDevice | null>,
  prunedBy: string,
  releasing?: Owner,
): { readonly pruned: readonly PrunedDevice[]; readonly changes: readonly StateChange[] } {
  const pruned: PrunedDevice[] = [];
  const changes: StateChange[] = [];
  for (const entry of entries) {
    if (present.has(entry.key)) continue;
    // A shared SCSI device is awaited by the holders other than the releasing domain.
    const awaitedBy = releasing === undefined ? entry : withoutHolder(entry, releasing);
    const awaited = awaitedBy !== null;
    pruned.push({ key: entry.key, usedBy: entry.usedBy, awaited });
    if (awaitedBy !== null) changes.push({ kind: 'record-departed-device', entry: awaitedBy, prunedBy });
    changes.push({ kind: 'remove-device', key: entry.key });
  }
  return { pruned, changes };
}

export async function assignDevices(
  ports: DevicePorts,
  owner: Owner,
  keys: readonly DeviceKey[],
  dryRun: boolean,
  /** SCSI devices the domain takes shareable (libvirt's <shareable/>). */
  shareable: ReadonlySet<DeviceKey> = new Set(),
  /** The domain's holder, registered in the same commit. */
  holder?: Holder,
): Promise<DeviceAssignReport> {
  const { present } = await presentOf(ports.layout, kindsOf(keys));
  const decide = (entries: readonly DeviceEntry[]): DeviceAssignReport => {
    const plan = planDeviceAssign(owner, keys, present, heldBy(entries), shareable);
    return { operation: 'assign', dryRun, owner, assigned: plan.assign.map((entry) => entry.key), notes: plan.notes };
  };
  if (dryRun) return decide(ports.store.readDevices());
  return ports.store.exclusive('assign', async (op) => {
    const plan = planDeviceAssign(owner, keys, present, heldBy(op.devices()), shareable);
    op.commit([...plan.assign.map((entry): StateChange => ({ kind: 'set-device', entry })), ...holderChange(owner, holder)]);
    return { operation: 'assign', dryRun, owner, assigned: plan.assign.map((entry) => entry.key), notes: plan.notes };
  });
}

/** The change that registers a domain's holder with an assign (none without one). */
export function holderChange(owner: Owner, holder: Holder | undefined): StateChange[] {
  return holder === undefined ? [] : [{ kind: 'set-holder', holder: { owner, holder } }];
}

/** A release hears of the domain's devices pruned earlier (by a status or an open) and lets go of them. */
function letGoOfDeparted(departed: readonly DepartedDevice[], owner: Owner, keys: readonly DeviceKey[] | undefined): DepartedDevice[] {
  const named = keys === undefined ? null : new Set(keys);
  return departed.filter((d) => isHeldBy(d.entry, owner) && (named === null || named.has(d.entry.key)));
}

/** A departed device the domain let go of: forgotten, or still awaited by the other domains that shared it. */
function departedChange(departed: DepartedDevice, owner: Owner): StateChange {
  const rest = withoutHolder(departed.entry, owner);
  return rest === null
    ? { kind: 'drop-departed-device', key: departed.entry.key }
    : { kind: 'record-departed-device', entry: rest, prunedBy: departed.prunedBy, departedAt: departed.departedAt };
}

export async function releaseDevices(
  ports: DevicePorts,
  owner: Owner,
  keys: readonly DeviceKey[] | undefined,
  dryRun: boolean,
  /** Checked first under the state lock (throws to release nothing): see HostdevManager.releaseEndedHolders. */
  guard?: () => void,
): Promise<DeviceReleaseReport> {
  const run = async (entries: readonly DeviceEntry[], departed: readonly DepartedDevice[], commit: (changes: StateChange[]) => void): Promise<DeviceReleaseReport> => {
    guard?.();
    const held = heldBy(entries);
    const wanted = new Set(keys ?? entries.filter((entry) => isHeldBy(entry, owner)).map((entry) => entry.key));
    const present = await presentFor(ports, entries.filter((entry) => wanted.has(entry.key)));
    const plan = planDeviceRelease(owner, keys, present, held);
    const earlier = letGoOfDeparted(departed, owner, keys);
    const gone = pruneDevices(plan.pruned, present, 'release', owner);
    commit([
      ...plan.keep.map((entry): StateChange => ({ kind: 'set-device', entry })),
      ...gone.changes,
      ...plan.remove.map((key): StateChange => ({ kind: 'remove-device', key })),
      ...earlier.map((d) => departedChange(d, owner)),
    ]);
    const pruned = new Set(plan.pruned.map((entry) => entry.key));
    const earlierKeys = earlier.map((d) => d.entry.key);
    return {
      operation: 'release',
      dryRun,
      owner,
      released: [...plan.remove.filter((key) => !pruned.has(key)), ...plan.keep.map((entry) => entry.key)],
      pruned: [...pruned, ...earlierKeys],
      // An earlier-pruned device the release named is no longer "not assigned": it is reported as pruned.
      notes: plan.notes.filter((note) => !earlierKeys.some((key) => note.startsWith(`${key} `))),
    };
  };
  if (dryRun) return run(ports.store.readDevices(), ports.store.readDepartedDevices(), () => undefined);
  return ports.store.exclusive('release', (op) => run(op.devices(), op.departedDevices(), (changes) => op.commit(changes)));
}

/** Whether the domain holds (or held, until its release hears of it) a device of these kinds. */
export function holdsDevices(store: StateStore, owner: Owner, entries: readonly DeviceEntry[] = store.readDevices()): boolean {
  return (
    entries.some((entry) => isHeldBy(entry, owner)) ||
    store.readDepartedDevices().some((departed) => isHeldBy(departed.entry, owner))
  );
}

export interface DeviceStatus {
  /** Entries of other kinds than PCI, after the prune. */
  readonly devices: readonly DeviceEntry[];
  readonly prunedDevices: readonly PrunedDevice[];
  /** Departed devices, each with whether it is back (same key, same identity). */
  readonly departedDevices: readonly (DepartedDevice & { readonly back: boolean })[];
}

/**
 * For `status`: the entries of other kinds, those whose device vanished pruned (only when the lock
 * is free at once, as for PCI entries), and whether the departed ones are back.
 */
export async function deviceStatus(ports: DevicePorts): Promise<DeviceStatus> {
  let devices = ports.store.readDevices();
  const departedNow = ports.store.readDepartedDevices();
  if (devices.length === 0 && departedNow.length === 0) return { devices, prunedDevices: [], departedDevices: [] };
  const present = await presentFor(ports, [...devices, ...departedNow.map((d) => d.entry)]);
  let prunedDevices: readonly PrunedDevice[] = [];
  if (devices.some((entry) => !present.has(entry.key))) {
    const done = await ports.store.tryExclusive('status', async (op: Operation) => {
      const prune = pruneDevices(op.devices(), present, 'status');
      op.commit([...prune.changes]);
      return [op.devices(), prune.pruned] as const;
    });
    if (done !== null) [devices, prunedDevices] = done;
  }
  const departedDevices = ports.store.readDepartedDevices().map((d) => ({ ...d, back: isReturn(d.entry, present.get(d.entry.key) ?? null) }));
  return { devices, prunedDevices, departedDevices };
}
