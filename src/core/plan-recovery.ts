import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';
import { pciKey, type DeviceKey } from './device-key.js';
import type { KernelFiles } from './kernel-files.js';
import type { OperationName } from './operations.js';
import { reattachSteps, restoreSteps } from './plan-device.js';
import type { Plan, RestorePoint, Step, StepGroup } from './plan-types.js';
import { DEFAULT_STUB_DRIVER, isStubDriver, moduleOf } from './stub-driver.js';
import { applyChanges, removeChange, toInactive, type Located, type TableChange, type TableName, type Tables } from './tables.js';
import type { SavedVfNet } from './vf-net-config.js';

/**
 * Recovery's repairs as a Plan: what an operation that never finished left is rolled back or
 * forward, and saved VF network config whose VF is not assigned is put back. Pure: the caller
 * reads the devices and the drivers, the executor applies the plan (recovery is a plan like any
 * other, journaled the same way, printed the same way by a dry run).
 */

/** A device touched by operations that never finished, as read now. */
export interface UnfinishedDevice {
  readonly address: PciAddress;
  /** The first unfinished operation that touched it, and the device as it was before. */
  readonly operation: OperationName;
  readonly restore: RestorePoint;
  /** Where the tables put it (they still hold the state from before the operation). */
  readonly located: Located | undefined;
  /** null: no longer on this host. */
  readonly device: PciDevice | null;
}

export type RepairDirection = 'rolled-back' | 'rolled-forward';

/** What one device's repair aims at: its driver and table afterwards. */
export interface PlannedRepair {
  readonly address: PciAddress;
  readonly operation: OperationName;
  readonly direction: RepairDirection;
  readonly driver: string | null;
  readonly table: TableName | null;
  readonly change: TableChange | null;
  /** The group's steps (the dry run prints them). */
  readonly steps: readonly Step[];
}

/**
 * The sysfs write of a device of another kind (an mdev's create or remove) whose operation died.
 * Each such write is its whole operation, so the device as it is now says whether it took effect.
 */
export interface UnfinishedDeviceWrite {
  readonly key: DeviceKey;
  readonly operation: 'mdev-create' | 'mdev-remove';
  /** Whether the device is on the host now. */
  readonly present: boolean;
}

/** What recovery makes of such a write: nothing is written, the group reads back what it found. */
export interface PlannedDeviceRepair {
  readonly key: DeviceKey;
  readonly operation: UnfinishedDeviceWrite['operation'];
  /** rolled-forward: the write took effect (the mdev is there after a create, gone after a remove). */
  readonly direction: RepairDirection;
  readonly steps: readonly Step[];
}

export interface RecoveryFacts {
  readonly devices: readonly UnfinishedDevice[];
  /** Unfinished writes of devices of other kinds (absent: none). */
  readonly deviceWrites?: readonly UnfinishedDeviceWrite[];
  readonly tables: Tables;
  /** Drivers that have a directory under /sys/bus/pci/drivers (of those `driversToCheck` names). */
  readonly loadedDrivers: ReadonlySet<string>;
  /** Saved VF network configs (empty: not reviewed), and which of their VFs still exist. */
  readonly savedVfNet: readonly SavedVfNet[];
  readonly vfExists: ReadonlySet<PciAddress>;
  readonly files: KernelFiles;
}

export interface RecoveryPlan {
  /** operation 'recover'; a failed group leaves its device where it stopped (see repairFallback). */
  readonly plan: Plan;
  readonly repairs: readonly PlannedRepair[];
  readonly deviceRepairs: readonly PlannedDeviceRepair[];
  /** Saved VF configs put back by the plan's `vf-net` groups. */
  readonly vfRestored: readonly PciAddress[];
  /** Saved VF configs whose VF no longer exists: only their rows go. */
  readonly vfDropped: readonly PciAddress[];
}

/** The operations whose unfinished devices are rolled forward (they give a device back to the host). */
const TOWARD_HOST: ReadonlySet<OperationName> = new Set<OperationName>(['release', 'reattach']);

/** The drivers whose presence the plan depends on (a target driver may have been unloaded meanwhile). */
export function driversToCheck(devices: readonly UnfinishedDevice[]): string[] {
  const names = new Set<string>();
  for (const { restore, located } of devices) {
    if (restore.driver !== null) names.add(restore.driver);
    if (located?.entry.originalDriver) names.add(located.entry.originalDriver);
    if (located !== undefined) names.add(located.entry.stubDriver);
  }
  return [...names];
}

/**
 * Direction:
 * - release and reattach are rolled FORWARD: they give a device back to the host. Once such an
 *   operation has started, the device may already sit on its host driver and the host may be
 *   using it (a NIC brought up, a disk mounted); taking it away again is exactly the disruption
 *   the host-in-use guard exists to prevent. And the owner it would be returned to has let go of
 *   it (a domain is released after its VM stopped), so keeping it assigned would record an owner
 *   that no longer holds it. Forward means: managed devices back to their original driver and out
 *   of the tables; an unmanaged release ends inactive, on its stub.
 * - everything else (detach, assign, reset) is rolled BACK to the restore point, and the tables
 *   stay as they were: the caller never got a success, so no VM was started with the device.
 */
function repairOf(unfinished: UnfinishedDevice & { device: PciDevice }, facts: RecoveryFacts): PlannedRepair {
  const { address, operation, located, device, restore } = unfinished;
  const forward = located !== undefined && TOWARD_HOST.has(operation);
  const direction: RepairDirection = forward ? 'rolled-forward' : 'rolled-back';
  let target: { steps: Step[]; driver: string | null; change: TableChange | null; table: TableName | null };
  if (forward && located.table === 'active' && !located.entry.managed) {
    target = { steps: [], driver: located.entry.stubDriver, change: { kind: 'set-inactive', entry: toInactive(located.entry) }, table: 'inactive' };
  } else if (forward) {
    const entry = toInactive(located.entry);
    const driver = entry.originalDriver === entry.stubDriver ? entry.stubDriver : entry.originalDriver;
    target = { steps: reattachSteps(facts.files, device, entry), driver, change: removeChange(address), table: null };
  } else {
    target = { steps: restoreSteps(facts.files, device, restore), driver: restore.driver, change: null, table: located?.table ?? null };
  }
  const load: Step[] =
    target.steps.length > 0 && target.driver !== null && !facts.loadedDrivers.has(target.driver)
      ? [{ kind: 'load-module', module: moduleOf(target.driver), driver: target.driver }]
      : [];
  // The repair is done when the device is on the target driver: read back whatever the steps were.
  const last = target.steps.at(-1);
  const check: Step[] =
    last?.kind === 'verify-driver' && last.expected === target.driver ? [] : [{ kind: 'verify-driver', address, expected: target.driver }];
  return { address, operation, direction, driver: target.driver, table: target.table, change: target.change, steps: [...load, ...target.steps, ...check] };
}

export function planRecovery(facts: RecoveryFacts): RecoveryPlan {
  const notes: string[] = [];
  const repairs: PlannedRepair[] = [];
  for (const unfinished of facts.devices) {
    if (unfinished.device === null) {
      // A table entry is pruned by the reconcile that follows; a device in no table needs nothing.
      notes.push(`${unfinished.address}, touched by an unfinished ${unfinished.operation}, is no longer on this host`);
      continue;
    }
    repairs.push(repairOf({ ...unfinished, device: unfinished.device }, facts));
  }
  const changes = repairs.flatMap((repair) => (repair.change === null ? [] : [repair.change]));
  const groups: StepGroup[] = repairs.map((repair) => ({
    address: repair.address,
    phase: 'recover',
    restore: { driver: repair.driver, driverOverride: null },
    steps: repair.steps,
  }));
  const deviceRepairs = deviceRepairsOf(facts.deviceWrites ?? []);
  for (const repair of deviceRepairs) {
    groups.push({ address: repair.key as string as PciAddress, key: repair.key, phase: 'recover', restore: { driver: null, driverOverride: null }, steps: repair.steps });
  }
  // Saved VF config whose VF the repaired tables do not assign belongs to an assign that did not
  // complete or a release that never committed: put back, last, or only dropped if the VF is gone.
  const active = new Set<string>(applyChanges(facts.tables, changes).active.map((entry) => entry.address));
  const vfRestored: PciAddress[] = [];
  const vfDropped: PciAddress[] = [];
  for (const saved of facts.savedVfNet) {
    // A VF that is gone is only dropped (an assigned one is pruned by the reconcile that follows).
    if (!facts.vfExists.has(saved.address)) {
      vfDropped.push(saved.address);
      continue;
    }
    if (active.has(saved.address)) continue;
    vfRestored.push(saved.address);
    groups.push({
      address: saved.address,
      phase: 'vf-net',
      restore: { driver: null, driverOverride: null },
      steps: [{ kind: 'net-restore', address: saved.address, saved }],
    });
  }
  const plan: Plan = { operation: 'recover', onFailure: 'leave', fallbacks: [], groups, changes, pruned: [], resets: [], notes };
  return { plan, repairs, deviceRepairs, vfRestored, vfDropped };
}

/** One repair per device (an operation's rows of one key are one write), in journal order. */
function deviceRepairsOf(writes: readonly UnfinishedDeviceWrite[]): PlannedDeviceRepair[] {
  const byKey = new Map<DeviceKey, UnfinishedDeviceWrite>();
  for (const write of writes) if (!byKey.has(write.key)) byKey.set(write.key, write);
  return [...byKey.values()].map(({ key, operation, present }) => {
    const happened = operation === 'mdev-create' ? present : !present;
    return { key, operation, direction: happened ? 'rolled-forward' : 'rolled-back', steps: [{ kind: 'verify-device', key, present }] };
  });
}

/**
 * A device recovery could not drive to its target is left recorded, never lost: if it sits on a
 * stub (or on no driver), it is kept as or moved to inactive (managed), so `hostdev reattach`
 * can finish the job. `now`: its driver after the failed steps.
 */
export function repairFallback(
  repair: Pick<PlannedRepair, 'address' | 'operation'>,
  restore: RestorePoint,
  located: Located | undefined,
  now: string | null,
): { readonly change: TableChange | null; readonly table: TableName | null } {
  const parked = now === null || isStubDriver(now);
  if (parked && located?.table !== 'active') {
    const entry = located?.entry ?? {
      key: pciKey(repair.address),
      address: repair.address,
      managed: true,
      stubDriver: now ?? DEFAULT_STUB_DRIVER,
      originalDriver: restore.driver,
    };
    return { change: { kind: 'set-inactive', entry: toInactive(entry) }, table: 'inactive' };
  }
  if (parked && located?.table === 'active' && TOWARD_HOST.has(repair.operation)) {
    return { change: { kind: 'set-inactive', entry: toInactive(located.entry) }, table: 'inactive' };
  }
  return { change: null, table: located?.table ?? null };
}
