import type { PciAddress } from '../core/address.js';
import type { OperationName } from '../core/operations.js';
import { HostdevError } from '../core/errors.js';
import { driversToCheck, planRecovery, repairFallback, type RepairDirection, type UnfinishedDevice, type UnfinishedDeviceWrite } from '../core/plan-recovery.js';
import { formatStep } from '../core/plan-types.js';
import { hostdevCommand, releaseCommand } from '../core/shell.js';
import { pciKey, type DeviceKey } from '../core/device-key.js';
import { applyChanges, formatOwner, TableIndex, type Located, type Owner, type TableChange, type TableName, type Tables } from '../core/tables.js';
import type { KernelPort } from '../sysfs/kernel-port.js';
import { hostFiles, type SysfsLayout } from '../sysfs/paths.js';
import type { NetPort } from '../net/net-port.js';
import type { JournalRecord, Operation, StateChange, StateStore } from '../state/store.js';
import { describeInFlight, inFlightOperations, type InFlightOperation } from './in-flight.js';
import { pruneVanished, type PrunedEntry } from './reconcile.js';
import { HostReader } from './host-reader.js';
import { hardwareChanged, identityOf, NO_SERIALS, type DeviceSerials } from '../core/hardware-identity.js';
import { VfNetConfigurator, vfConfigsSettled } from './vf-net.js';
import { executePlan, type Settle, type StepReader } from './executor.js';
import { fromEarlierBoot, planAfterReboot, type DetachedAfterReboot, type RebootAction } from '../core/boot.js';
import type { PciDevice } from '../core/device.js';
import { moduleOf } from '../core/stub-driver.js';
import { toInactive } from '../core/tables.js';
import type { Plan, Step } from '../core/plan-types.js';

/** The reads recovery needs (HostReader has them), each asynchronous and bounded. */
export interface RecoveryReader extends StepReader {
  exists(address: PciAddress): Promise<boolean>;
  /** HostReader.serials (DSN, VPD; bounded): what tells a card from another of its model after a reboot. */
  serials?(addresses: readonly PciAddress[]): Promise<Map<PciAddress, DeviceSerials>>;
  /** The generation of a PF's VFs (HostReader.vfGeneration): it changes whenever they are removed or made. */
  vfGeneration?(pf: PciAddress): Promise<string | null>;
  /** HostReader.hostFingerprint: it moves on with every device added or removed, bound or unbound. */
  hostFingerprint?(): Promise<string | null>;
  /** HostReader.entryFacts: every entry's device in one batch read (without it, a link read per entry). */
  entryFacts?(addresses: readonly PciAddress[]): Promise<ReadonlyMap<PciAddress, { readonly present: boolean; readonly driver: string | null }>>;
}

/**
 * How much of the tables recovery looks at when no operation was left unfinished: 'full' reads
 * every entry's device; 'changed' reads none while the host fingerprint is the one at which every
 * entry was last found consistent (nothing was added, removed, bound or unbound since), and every
 * entry otherwise. An operation then reads the devices it names itself.
 */
export type ReconcileScope = 'full' | 'changed';


/** A device an unfinished operation had touched, and what recovery made of it. */
export interface RepairedDevice {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  /** The operation that never finished: detach, reattach, reset, assign, release. */
  readonly operation: OperationName;
  readonly direction: RepairDirection;
  /** "ok": consistent again; "failed": could not be driven there (see error and warnings). */
  readonly outcome: 'ok' | 'failed';
  /** Its driver after recovery, and where the tables record it. */
  readonly driver: string | null;
  readonly table: TableName | null;
  readonly error: string | null;
  /** On a dry run: the steps the repair would take, one line each (see formatStep). */
  readonly steps?: readonly string[];
}

export type { PrunedEntry } from './reconcile.js';

/** A table entry whose device is not on the stub driver the table says: someone changed it by hand. */
export interface DriftEntry {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly table: TableName;
  readonly usedBy: Owner | null;
  readonly expectedDriver: string;
  readonly actualDriver: string | null;
}

/**
 * A VF's saved network config left behind by an operation that never finished (an assign killed
 * after the save, a release killed before its commit): put back, dropped (the VF is gone), or
 * pending (the restore failed, e.g. the PF is down; the row is kept and retried on the next open).
 */
export interface VfConfigRepair {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly outcome: 'restored' | 'dropped' | 'pending';
  readonly reason: string | null;
}

/**
 * A table entry made in an earlier boot of the host, and what the reconcile after the reboot made of
 * it (core/boot.ts): `released` (it was active: no VM survives a reboot), `reapplied` (inactive, put
 * back on its stub) or `reattached` (inactive, given back to the host: --detached-after-reboot reattach).
 */
export interface RebootedEntry {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly formerTable: TableName;
  /** Who held it before the reboot; null when it was only detached. */
  readonly formerOwner: Owner | null;
  readonly action: RebootAction['action'];
  readonly outcome: 'ok' | 'failed';
  /** Its driver afterwards (on a dry run: the one it would be on), and where the tables record it. */
  readonly driver: string | null;
  readonly table: TableName | null;
  readonly error: string | null;
  /** On a dry run: the steps it would take, one line each. */
  readonly steps?: readonly string[];
}

/**
 * What `HostdevManager.open` found and did; `status` shows it as `recovery`. On a dry run
 * (`dryRun: true`) it is what recovery would do: nothing was written, and `warnings` holds only
 * what is reported either way (drift).
 */
export interface RecoveryReport {
  readonly dryRun?: boolean;
  /**
   * Set when recovery was asked not to wait (readers: status, qemu-args, vf list) and another
   * hostdev operation held the state lock: nothing was repaired or pruned; these journal rows wait.
   */
  readonly deferred?: readonly InFlightOperation[];
  readonly repaired: readonly RepairedDevice[];
  readonly pruned: readonly PrunedEntry[];
  readonly drift: readonly DriftEntry[];
  readonly vfConfig: readonly VfConfigRepair[];
  /** Entries of an earlier boot, released or re-applied by the first open after a reboot. */
  readonly rebooted: readonly RebootedEntry[];
  /** Unfinished writes of devices of other kinds (an mdev's create or remove); present only when there were any. */
  readonly devices?: readonly DeviceRepair[];
  readonly warnings: readonly string[];
}

/** What recovery made of an mdev create or remove a hostdev that died left in the journal. */
export interface DeviceRepair {
  readonly key: DeviceKey;
  readonly operation: 'mdev-create' | 'mdev-remove';
  /** rolled-forward: the write took effect (the mdev is there after a create, gone after a remove). */
  readonly direction: RepairDirection;
  /** "failed": the device changed while recovery read it (its journal rows are kept for the next open). */
  readonly outcome: 'ok' | 'failed';
  readonly error: string | null;
  /** On a dry run: the steps the repair would take, one line each. */
  readonly steps?: readonly string[];
}

export const EMPTY_RECOVERY_REPORT: RecoveryReport = { repaired: [], pruned: [], drift: [], vfConfig: [], rebooted: [], warnings: [] };

/** Whether a report has anything recovery changed (or, on a dry run, would change); drift is only reported. */
export function recoveryWouldAct(report: RecoveryReport): boolean {
  return (
    report.repaired.length > 0 ||
    report.pruned.length > 0 ||
    report.vfConfig.length > 0 ||
    (report.rebooted?.length ?? 0) > 0 ||
    (report.devices?.length ?? 0) > 0
  );
}

/**
 * Brings the host and the tables back to a state where every device is either fully assigned
 * (or detached) as recorded, or back on its original driver and in no table. Runs on every
 * open of the manager.
 *
 * Saved VF network config whose VF is not assigned (left by an assign or release that died) is
 * put back last, from the tables as recovery leaves them, in the same commit.
 *
 * Without unfinished journal rows, vanished devices and orphaned VF config it takes no lock and
 * writes nothing: it only reports drift. Otherwise it works under the state lock, where any journal row left
 * belongs to an operation that died (a live one holds the lock until its commit clears them).
 *
 * The repairs are a plan (core/plan-recovery.ts) applied by the one executor, which journals
 * their writes like any operation's. The dead operations' rows are cleared only in the commit
 * that records the result, together with recovery's own, and every step is computed from the
 * device's state as read now: a recovery killed half-way is done again by the next open, from
 * the first (the dead operation's) row of each device.
 */
export async function recover(
  store: StateStore,
  kernel: KernelPort,
  reader: RecoveryReader,
  /** VF network config (what puts a saved row back); null: saved rows are not reviewed. */
  net: VfNetConfigurator | null = null,
  options: {
    readonly dryRun?: boolean;
    readonly wait?: boolean;
    readonly command?: string;
    readonly reconcile?: ReconcileScope;
    /** What inactive entries of an earlier boot become (default reapply). */
    readonly detachedAfterReboot?: DetachedAfterReboot;
  } = {},
): Promise<RecoveryReport> {
  const dryRun = options.dryRun ?? false;
  const bootId = store.bootId;
  if (dryRun && !store.snapshot) {
    throw new HostdevError('HOSTDEV_INTERNAL', 'a dry-run recovery needs a snapshot of the state (StateStore.openSnapshot)', {
      hint: 'This is a bug in hostdev: report it with the command that was run.',
    });
  }
  // Read before the tables and the walk: an event during the walk leaves it behind the kernel's.
  const fingerprint = (await reader.hostFingerprint?.()) ?? null;
  if ((options.reconcile ?? 'full') === 'changed' && unchangedSince(store, fingerprint, net !== null)) {
    return { ...EMPTY_RECOVERY_REPORT, ...(dryRun ? { dryRun } : {}) };
  }
  const before = store.readState();
  const vfSettled = (): boolean =>
    net === null || vfConfigsSettled(store.readVfConfigs(), new Set<string>(before.tables.active.map((entry) => entry.address)));
  if (before.journal.length === 0 && vfSettled()) {
    const look = await inspect(before.tables, reader, bootId);
    if (look.vanished.length === 0 && look.stale.length === 0) {
      // Drift read without the lock could be an operation in flight: keep only entries that
      // were the same, with no journal row, before and after the device reads.
      const after = store.readState();
      const busy = new Set<string>(after.journal.map((row) => row.address));
      const drift = look.drift.filter(
        (d) => !busy.has(d.address) && sameEntry(before.tables, after.tables, d.address),
      );
      if (look.drift.length === 0 && after.journal.length === 0 && !dryRun) await noteReconciled(store, fingerprint, before.tables, after.tables);
      return { ...EMPTY_RECOVERY_REPORT, ...(dryRun ? { dryRun } : {}), drift, warnings: drift.map(driftWarning) };
    }
  }
  const repair = async (op: Operation): Promise<RecoveryReport> => {
    const tables = op.tables();
    const unfinished = op.unfinished();
    const index = new TableIndex(tables);
    const order: PciAddress[] = [];
    const setCounts = new Map<PciAddress, NonNullable<Awaited<ReturnType<typeof settleVfSetCount>>>>();
    const devices: UnfinishedDevice[] = [];
    for (const [address, rows] of byAddress(unfinished)) {
      order.push(address);
      const setCount = await settleVfSetCount(address, rows, index, reader);
      if (setCount !== null) {
        setCounts.set(address, setCount);
        continue;
      }
      const first = rows[0]!;
      devices.push({ address, operation: first.operationName, restore: first.restore, located: index.find(address), device: await reader.device(address) });
    }
    const drivers = driversToCheck(devices);
    const loaded = await Promise.all(drivers.map((driver) => reader.driverLoaded(driver)));
    const saved = net === null ? [] : op.vfConfigs();
    const present = await Promise.all(saved.map((row) => reader.exists(row.address)));
    // Journal rows of writes to devices of other kinds (mdev create/remove): each is its whole operation.
    const deviceRows = op.unfinishedDevices();
    const deviceWrites: UnfinishedDeviceWrite[] = [];
    for (const row of deviceRows) {
      deviceWrites.push({ key: row.key, operation: row.action, present: await devicePresent(reader, row.key) });
    }
    const planned = planRecovery({
      devices,
      deviceWrites,
      tables,
      loadedDrivers: new Set(drivers.filter((_, at) => loaded[at])),
      savedVfNet: saved,
      vfExists: new Set(saved.filter((_, at) => present[at]).map((row) => row.address)),
      files: hostFiles,
    });
    // Entries of an earlier boot (the host rebooted since they were made) whose device is here and
    // that no unfinished operation touched: core/boot.ts's reconcile, as groups of the same plan.
    const earlier = (await inspect(tables, reader, bootId)).stale.filter((place) => !order.includes(place.entry.address));
    const rebootDevices = new Map<PciAddress, PciDevice>();
    for (const place of earlier) {
      const device = await reader.device(place.entry.address);
      if (device !== null) rebootDevices.set(place.entry.address, device);
    }
    // A card swapped while the host was off is not put on the stub of the entry made for another.
    const recorded = earlier.filter((place) => place.entry.hardware != null && rebootDevices.has(place.entry.address)).map((place) => place.entry);
    const serials = recorded.length === 0 || reader.serials === undefined ? new Map<PciAddress, DeviceSerials>() : await reader.serials(recorded.map((e) => e.address));
    const swapped = new Set(
      recorded.filter((e) => hardwareChanged(e.hardware!, identityOf(rebootDevices.get(e.address)!, serials.get(e.address) ?? NO_SERIALS))).map((e) => e.address),
    );
    const rebootActions = planAfterReboot(hostFiles, earlier, rebootDevices, options.detachedAfterReboot ?? 'reapply', swapped).map(
      (action): RebootAction => ({ ...action, change: action.change.kind === 'set-inactive' ? { ...action.change, entry: { ...action.change.entry, bootId } } : action.change }),
    );
    const rebootSteps = new Map<PciAddress, Step[]>();
    for (const action of rebootActions) {
      const load = action.steps.length > 0 && action.driver !== null && !(await reader.driverLoaded(action.driver));
      rebootSteps.set(action.address, [...(load ? [{ kind: 'load-module' as const, module: moduleOf(action.driver!), driver: action.driver! }] : []), ...action.steps]);
    }
    const plan: Plan = {
      ...planned.plan,
      groups: [
        ...planned.plan.groups,
        ...rebootActions.map((action) => ({
          address: action.address,
          phase: 'recover' as const,
          restore: { driver: rebootDevices.get(action.address)!.driver, driverOverride: rebootDevices.get(action.address)!.driverOverride },
          steps: rebootSteps.get(action.address)!,
        })),
      ],
      changes: [...planned.plan.changes, ...rebootActions.map((action) => action.change)],
    };
    const deviceFailed = new Set<string>();
    const operationsOf = (): string[] => [
      ...new Set([
        ...unfinished.map((row) => row.operationId),
        // A device repair that failed keeps its operation's rows for the next open.
        ...deviceRows.filter((row) => !deviceFailed.has(row.key)).map((row) => row.operationId),
      ]),
    ];
    let report: RecoveryReport = EMPTY_RECOVERY_REPORT;

    // After the plan's steps (or, on a dry run, instead of them): where failed repairs stopped,
    // then the reconcile of what is gone, then the report that goes in the same commit.
    const settle: Settle = async ({ failures, netPending }) => {
      const warnings: string[] = [];
      const repaired: RepairedDevice[] = [];
      const changes: StateChange[] = [];
      const failedAt = new Map(failures.map((failure) => [failure.address as string, failure]));
      const notes = planned.plan.notes[Symbol.iterator]();
      for (const address of order) {
        const setCount = setCounts.get(address);
        if (setCount !== undefined) {
          if (setCount.repaired) repaired.push(setCount.repaired);
          continue;
        }
        const plannedRepair = planned.repairs.find((candidate) => candidate.address === address);
        if (plannedRepair === undefined) {
          warnings.push(notes.next().value ?? `${address} is no longer on this host`);
          continue;
        }
        const { operation, direction } = plannedRepair;
        const failure = failedAt.get(address);
        if (failure === undefined) {
          const done = repairedDevice(address, operation, direction, 'ok', plannedRepair.driver, plannedRepair.table, null);
          repaired.push(dryRun ? { ...done, steps: plannedRepair.steps.map(formatStep) } : done);
          warnings.push(repairedWarning(done));
          continue;
        }
        const unfinishedDevice = devices.find((candidate) => candidate.address === address)!;
        const now = await reader.driverOf(address);
        const fallback = repairFallback(plannedRepair, unfinishedDevice.restore, unfinishedDevice.located, now);
        if (fallback.change !== null) changes.push(fallback.change);
        const message = failure.error.message;
        warnings.push(
          `recovery of ${address} after an unfinished ${operation} failed: ${message}; it is on ${now ?? 'no driver'}` +
            (fallback.table === null ? ' and in no table' : `, recorded as ${fallback.table}`) +
            (fallback.table === 'inactive' ? ` (run \`${hostdevCommand('reattach', address)}\` to give it back to the host)` : ''),
        );
        repaired.push(repairedDevice(address, operation, direction, 'failed', now, fallback.table, message));
      }
      // VFs a killed `vf set-count --force` was pruning, once their PF's VFs were removed or made
      // anew: the entry names a VF that left the host (a VF now at its address is another one).
      // The operator let them go with --force: not awaited back (as vf set-count itself records them).
      const replaced = new Map([...setCounts].flatMap(([address, setCount]) => (setCount.replaced ? [[address, setCount.replaced] as const] : [])));
      const replacedPrune = pruneVanished(op, new Set(replaced.keys()), 'vf-set-count', { known: replaced, awaitReturn: false });
      changes.push(...replacedPrune.changes);
      const rebooted: RebootedEntry[] = [];
      for (const action of rebootActions) {
        const { key, address, formerTable, formerOwner } = action;
        const failure = failedAt.get(address);
        const base = { key, address, formerTable, formerOwner, action: action.action };
        if (failure === undefined) {
          const done: RebootedEntry = { ...base, outcome: 'ok', driver: action.driver, table: action.table, error: null };
          rebooted.push(dryRun ? { ...done, steps: rebootSteps.get(address)!.map(formatStep) } : done);
          warnings.push(rebootWarning(action, action.driver));
          continue;
        }
        // Never lost: it stays recorded as detached, for `hostdev reattach` (or detach) to finish by hand.
        const entry = earlier.find((place) => place.entry.address === address)!.entry;
        changes.push({ kind: 'set-inactive', entry: { ...toInactive(entry), bootId } });
        const now = await reader.driverOf(address);
        rebooted.push({ ...base, outcome: 'failed', driver: now, table: 'inactive', error: failure.error.message });
        warnings.push(
          `${address}: the host rebooted since ${formatOwner(formerOwner)} had it; ${action.action === 'reapplied' ? 'putting it back on its stub' : 'giving it back to the host'} ` +
            `failed: ${failure.error.message}; it is on ${now ?? 'no driver'}, recorded as inactive (see \`${hostdevCommand('reattach', address)}\`)`,
        );
      }
      const kept = plan.changes.filter((change) => !failedAt.has(change.kind === 'remove' ? change.address : change.entry.address));
      const look = await inspect(applyChanges(tables, [...kept, ...changes].filter(isTableChange)), reader, bootId);
      const prune = pruneVanished(op, new Set(look.vanished.map((located) => located.entry.address)), 'recover');
      const pruned = [...replacedPrune.pruned, ...prune.pruned];
      changes.push(...prune.changes);
      for (const { address, table, usedBy } of pruned) {
        warnings.push(
          `${address} is no longer on this host; dropped from the ${table} table` +
            (usedBy ? ` (it was used by ${formatOwner(usedBy)})` : ''),
        );
      }
      warnings.push(...look.drift.map(driftWarning));
      const pending = new Set<string>(netPending.map((item) => item.address));
      changes.push(...planned.vfDropped.map((address): StateChange => ({ kind: 'drop-vf-config', address })));
      const vfConfig: VfConfigRepair[] = [
        ...planned.vfRestored.filter((address) => !pending.has(address)).map((address) => ({ key: pciKey(address), address, outcome: 'restored' as const, reason: null })),
        ...planned.vfDropped.map((address) => ({ key: pciKey(address), address, outcome: 'dropped' as const, reason: null })),
        ...netPending.map((item) => ({ key: pciKey(item.address), address: item.address, outcome: 'pending' as const, reason: item.reason })),
      ];
      warnings.push(...vfConfig.map(vfConfigWarning));
      const deviceRepairs: DeviceRepair[] = planned.deviceRepairs.map(({ key, operation, direction, steps }) => {
        const failure = failedAt.get(key);
        if (failure !== undefined) deviceFailed.add(key);
        const done: DeviceRepair = { key, operation, direction, outcome: failure === undefined ? 'ok' : 'failed', error: failure?.error.message ?? null };
        return dryRun ? { ...done, steps: steps.map(formatStep) } : done;
      });
      warnings.push(...deviceRepairs.map(deviceRepairWarning));
      const devicesPart = deviceRepairs.length > 0 ? { devices: deviceRepairs } : {};
      report = dryRun
        ? { dryRun, repaired, pruned, drift: look.drift, vfConfig, rebooted, ...devicesPart, warnings: look.drift.map(driftWarning) }
        : { repaired, pruned, drift: look.drift, vfConfig, rebooted, ...devicesPart, warnings };
      const commit = { resolve: operationsOf(), report, ...(options.command === undefined ? {} : { reportedBy: options.command }) };
      return { changes, pruned: pruned.map((entry) => entry.address), commit };
    };

    if (dryRun) {
      // The store is a snapshot in memory: the commit lets the plan that follows see the tables
      // as recovery would leave them. Nothing is written to the host.
      const settled = await settle({ failures: [], netPending: [] });
      const restored = planned.vfRestored.map((address): StateChange => ({ kind: 'drop-vf-config', address }));
      op.commit([...plan.changes, ...settled.changes, ...restored], settled.commit);
      return report;
    }
    // Repairs and VF config go through the one executor: journaled like any operation's steps.
    await executePlan(plan, op, { kernel, reader, ...(net === null ? {} : { net }) }, { settle });
    return report;
  };
  if (options.wait ?? true) return store.exclusive('recover', repair);
  const done = await store.tryExclusive('recover', repair);
  if (done !== null) return done;
  const deferred = inFlightOperations(store.readJournal());
  const holders = deferred.length === 0 ? '' : ` (journal: ${deferred.map(describeInFlight).join('; ')})`;
  const warnings = [`another hostdev operation holds the state lock${holders}; recovery is left to the next command that gets it`];
  return { ...EMPTY_RECOVERY_REPORT, deferred, warnings };
}

/**
 * Whether recovery may look at no entry: the host fingerprint is the one at which every entry was
 * last found on its stub driver, and no operation has left a journal row or a saved VF config
 * whose VF is not assigned since.
 */
function unchangedSince(store: StateStore, fingerprint: string | null, withNet: boolean): boolean {
  if (fingerprint === null || fingerprint !== store.reconciledAt()) return false;
  if (store.readJournal().length > 0) return false;
  if (!withNet) return true;
  const configs = store.readVfConfigs();
  return vfConfigsSettled(configs, store.activeAmong(configs.map((config) => config.address)));
}

/**
 * After a walk that found every entry consistent: its fingerprint is recorded, if the lock is free
 * at once and the tables did not change meanwhile (else the next open walks again).
 */
async function noteReconciled(store: StateStore, fingerprint: string | null, before: Tables, after: Tables): Promise<void> {
  if (fingerprint === null || store.reconciledAt() === fingerprint || JSON.stringify(before) !== JSON.stringify(after)) return;
  await store.tryExclusive('recover', async (op) => {
    op.markReconciled(fingerprint);
    op.commit([]);
  });
}

/** `recover` in the shape HostdevManager.open takes (OpenOptions.recover). */
export function recoverOnOpen(context: {
  store: StateStore;
  kernel: KernelPort;
  layout: SysfsLayout;
  net: NetPort;
  dryRun?: boolean;
  wait?: boolean;
  command?: string;
  detachedAfterReboot?: DetachedAfterReboot;
  reconcile?: ReconcileScope;
}): Promise<RecoveryReport> {
  return recover(context.store, context.kernel, new HostReader(context.layout), new VfNetConfigurator(context.net), {
    dryRun: context.dryRun ?? false,
    wait: context.wait ?? true,
    reconcile: context.reconcile ?? 'full',
    ...(context.command === undefined ? {} : { command: context.command }),
    ...(context.detachedAfterReboot === undefined ? {} : { detachedAfterReboot: context.detachedAfterReboot }),
  });
}

/** Whether a device of another kind is on the host (a reader without such reads finds none). */
async function devicePresent(reader: RecoveryReader, key: DeviceKey): Promise<boolean> {
  if (reader.devicePresent === undefined) {
    throw new HostdevError('HOSTDEV_INTERNAL', `recovery of ${key} needs a reader of devices of other kinds`, {
      hint: 'This is a bug in hostdev: report it with the command that was run.',
    });
  }
  return reader.devicePresent(key);
}

export function deviceRepairWarning(repair: DeviceRepair): string {
  const what = `${repair.key}: an ${repair.operation.replace('-', ' ')} a hostdev that did not finish left`;
  if (repair.outcome === 'failed') return `${what}: recovery could not settle it (${repair.error ?? 'unknown error'}); the next command tries again`;
  return `${what}: the mediated device ${deviceRepairOutcome(repair)}`;
}

/** Where a repaired mdev write left its device, in words ("was created", "is still there"). */
export function deviceRepairOutcome(repair: Pick<DeviceRepair, 'operation' | 'direction'>): string {
  const created = repair.operation === 'mdev-create';
  if (repair.direction === 'rolled-forward') return created ? 'was created' : 'was removed';
  return created ? 'was not created' : 'is still there';
}

function repairedWarning(repair: RepairedDevice): string {
  const where = repair.table === null ? 'in no table' : `recorded as ${repair.table}`;
  const how = repair.direction === 'rolled-back' ? 'rolled back' : 'rolled forward';
  return `${repair.address}: ${how} the ${repair.operation} a hostdev that did not finish left; on ${repair.driver ?? 'no driver'}, ${where}`;
}

function isTableChange(change: StateChange): change is TableChange {
  return change.kind === 'set-active' || change.kind === 'set-inactive' || change.kind === 'remove';
}

function vfConfigWarning(repair: VfConfigRepair): string {
  switch (repair.outcome) {
    case 'restored':
      return `restored the saved VF network config of ${repair.address} (left by an interrupted operation)`;
    case 'dropped':
      return `dropped the saved VF network config of ${repair.address}: the VF no longer exists`;
    case 'pending':
      return `VF network config of ${repair.address} not restored yet (kept for the next run): ${repair.reason ?? 'unknown error'}`;
  }
}

/** Drift is said on every open until someone settles it: hostdev neither trusts nor fixes it. */
function driftWarning(drift: DriftEntry): string {
  const where = drift.usedBy ? `assigned to ${formatOwner(drift.usedBy)}` : formatOwner(null);
  const settle = drift.usedBy ? `\`${releaseCommand(drift.usedBy, drift.address)}\`` : `\`${hostdevCommand('reattach', drift.address)}\``;
  return (
    `${drift.address} (${where}) should be on ${drift.expectedDriver} but is on ${drift.actualDriver ?? 'no driver'}: ` +
    `changed outside hostdev; check the device, then ${settle}`
  );
}

function byAddress(rows: readonly JournalRecord[]): Map<PciAddress, JournalRecord[]> {
  const grouped = new Map<PciAddress, JournalRecord[]>();
  for (const row of rows) {
    const list = grouped.get(row.address) ?? [];
    list.push(row);
    grouped.set(row.address, list);
  }
  return grouped;
}

function sameEntry(a: Tables, b: Tables, address: PciAddress): boolean {
  const find = (t: Tables) => JSON.stringify(new TableIndex(t).find(address) ?? null);
  return find(a) === find(b);
}

/** From this many table entries on, a walk reads them in one reader process (HostReader.entryFacts): measured, at 128 entries the process start (about 2 ms CPU) costs what the links read one by one cost. */
const BATCH_WALK_FROM = 128;

/**
 * Table entries whose device vanished, entries of an earlier boot whose device is here (`stale`: the
 * host rebooted since they were made), and entries whose device is not on the recorded stub.
 */
async function inspect(
  tables: Tables,
  reader: RecoveryReader,
  bootId: string | null,
): Promise<{ vanished: Located[]; stale: Located[]; drift: DriftEntry[] }> {
  const vanished: Located[] = [];
  const stale: Located[] = [];
  const drift: DriftEntry[] = [];
  const entries: Located[] = [
    ...tables.active.map((entry) => ({ table: 'active' as const, entry })),
    ...tables.inactive.map((entry) => ({ table: 'inactive' as const, entry })),
  ];
  // Many entries: one batch read for all when the reader can; a few: their links side by side
  // (libuv's pool), cheaper than starting the reader process.
  const batch = reader.entryFacts !== undefined && entries.length >= BATCH_WALK_FROM;
  const facts = batch ? await reader.entryFacts!(entries.map((located) => located.entry.address)) : null;
  const drivers = facts === null ? await Promise.all(entries.map((located) => reader.driverOf(located.entry.address))) : entries.map((located) => facts.get(located.entry.address)?.driver ?? null);
  const exists = async (address: PciAddress): Promise<boolean> => facts?.get(address)?.present ?? reader.exists(address);
  for (const [at, located] of entries.entries()) {
    const { address, stubDriver } = located.entry;
    const driver = drivers[at] ?? null;
    const earlier = fromEarlierBoot(located.entry, bootId);
    if (driver === stubDriver && !earlier) continue;
    // Unbound or vanished look the same through the driver link; only then look the device up.
    if ((driver === null || earlier) && !(await exists(address))) {
      vanished.push(located);
      continue;
    }
    if (earlier) {
      stale.push(located);
      continue;
    }
    const usedBy = located.table === 'active' ? located.entry.usedBy : null;
    drift.push({ key: pciKey(address), address, table: located.table, usedBy, expectedDriver: stubDriver, actualDriver: driver });
  }
  return { vanished, stale, drift };
}

function rebootWarning(action: RebootAction, driver: string | null): string {
  const was = action.formerTable === 'active' ? `was used by ${formatOwner(action.formerOwner)} before the host rebooted` : 'was detached before the host rebooted';
  if (action.action === 'not-reapplied') {
    return `${action.address} ${was}, but another card is there now (\`hostdev status\` shows the change): not put back on its stub, left on ${driver ?? 'no driver'}`;
  }
  const now =
    action.action === 'reapplied'
      ? `put back on ${driver ?? 'no driver'}, still detached (--detached-after-reboot reattach gives such devices back to the host)`
      : action.table === 'inactive'
        ? `released; unmanaged, it stays detached on ${driver ?? 'no driver'}`
        : `released to ${driver ?? 'no driver'}, in no table`;
  return `${action.address} ${was}: ${now}`;
}

/** The journal action of a VF that `vf set-count --force` prunes; its value is "INDEX GENERATION". */
export const VF_PRUNE_ACTION = 'vf-prune';

export function vfPruneValue(vfIndex: number, generation: string | null): string {
  return `${vfIndex} ${generation ?? 'none'}`;
}

/**
 * Rows of a killed `vf set-count`: its PF is rolled forward (a VF count cannot be taken back, and
 * the PF's driver never changed), and a VF it was pruning is replaced when its PF's VF generation
 * moved on since the row was written. null: rows of any other operation.
 */
async function settleVfSetCount(
  address: PciAddress,
  rows: readonly JournalRecord[],
  index: TableIndex,
  reader: RecoveryReader,
): Promise<{ repaired: RepairedDevice | null; replaced: { pf: PciAddress; vfIndex: number } | null } | null> {
  if (rows[0]!.operationName !== 'vf-set-count') return null;
  const prune = rows.find((row) => row.action === VF_PRUNE_ACTION);
  if (prune === undefined) {
    const driver = await reader.driverOf(address);
    return { repaired: repairedDevice(address, 'vf-set-count', 'rolled-forward', 'ok', driver, index.find(address)?.table ?? null, null), replaced: null };
  }
  const [indexText, generation] = prune.value.split(' ');
  const pf = prune.hostPath.split('/')[5] as PciAddress;
  const now = (await reader.vfGeneration?.(pf)) ?? null;
  return { repaired: null, replaced: (now ?? 'none') === generation ? null : { pf, vfIndex: Number(indexText) } };
}

function repairedDevice(
  address: PciAddress,
  operation: OperationName,
  direction: RepairDirection,
  outcome: RepairedDevice['outcome'],
  driver: string | null,
  table: TableName | null,
  error: string | null,
): RepairedDevice {
  return { key: pciKey(address), address, operation, direction, outcome, driver, table, error };
}
