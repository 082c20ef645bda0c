import type { PciAddress } from '../core/address.js';
import type { OperationName } from '../core/operations.js';
import type { PciDevice } from '../core/device.js';
import { HostdevError } from '../core/errors.js';
import { reattachSteps, restoreSteps } from '../core/plan-device.js';
import { formatStep, type RestorePoint, type Step } from '../core/plan-types.js';
import { hostdevCommand, releaseCommand } from '../core/shell.js';
import { pciKey, type DeviceKey } from '../core/device-key.js';
import { DEFAULT_STUB_DRIVER, isStubDriver, moduleOf } from '../core/stub-driver.js';
import {
  applyChanges,
  formatOwner,
  removeChange,
  TableIndex,
  toInactive,
  type Located,
  type Owner,
  type TableChange,
  type TableName,
  type Tables,
} from '../core/tables.js';
import type { KernelPort } from '../sysfs/kernel-port.js';
import { hostFiles, type SysfsLayout } from '../sysfs/paths.js';
import type { NetPort } from '../net/net-port.js';
import type { JournalRecord, Operation, StateChange, StateStore } from '../state/store.js';
import { describeInFlight, inFlightOperations, type InFlightOperation } from './in-flight.js';
import { pruneVanished, type PrunedEntry } from './reconcile.js';
import { HostReader } from './host-reader.js';
import { reviewVfConfigs, VfNetConfigurator, vfConfigsSettled } from './vf-net.js';
import { runSteps, type ExecutorPorts, type StepReader } from './executor.js';
import { bindFailed } from '../core/plan-errors.js';
import type { SavedVfNet } from '../core/vf-net-config.js';

/** The reads recovery needs (HostReader has them), each asynchronous and bounded. */
export interface RecoveryReader extends StepReader {
  exists(address: PciAddress): Promise<boolean>;
  /** The generation of a PF's VFs (HostReader.vfGeneration): it changes whenever they are removed or made. */
  vfGeneration?(pf: PciAddress): Promise<string | null>;
  /** HostReader.hostFingerprint: it moves on with every device added or removed, bound or unbound. */
  hostFingerprint?(): Promise<string | null>;
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
  readonly direction: 'rolled-back' | 'rolled-forward';
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
  readonly warnings: readonly string[];
}

export const EMPTY_RECOVERY_REPORT: RecoveryReport = { repaired: [], pruned: [], drift: [], vfConfig: [], warnings: [] };

/** Whether a report has anything recovery changed (or, on a dry run, would change); drift is only reported. */
export function recoveryWouldAct(report: RecoveryReport): boolean {
  return report.repaired.length > 0 || report.pruned.length > 0 || report.vfConfig.length > 0;
}

/** The operation names whose unfinished devices are rolled forward (see `direction`). */
const TOWARD_HOST = new Set(['release', 'reattach']);

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
 * Recovery writes no journal rows of its own: it clears the dead operations' rows only in the
 * commit that records its result, and every step is computed from the device's state as read
 * now, so a recovery killed half-way is simply done again by the next open.
 */
export async function recover(
  store: StateStore,
  kernel: KernelPort,
  reader: RecoveryReader,
  /** VF network config (what puts a saved row back); null: saved rows are not reviewed. */
  net: VfNetConfigurator | null = null,
  options: { readonly dryRun?: boolean; readonly wait?: boolean; readonly command?: string; readonly reconcile?: ReconcileScope } = {},
): Promise<RecoveryReport> {
  const dryRun = options.dryRun ?? false;
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
  // Repairs and VF config go through the executor's step runner; recovery journals nothing of its own.
  const ports: ExecutorPorts = { kernel, reader, ...(net === null ? {} : { net }) };
  if (before.journal.length === 0 && vfSettled()) {
    const look = await inspect(before.tables, reader);
    if (look.vanished.length === 0) {
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
    const warnings: string[] = [];
    const repaired: RepairedDevice[] = [];
    const changes: StateChange[] = [];
    const replaced = new Map<PciAddress, { pf: PciAddress; vfIndex: number }>();
    for (const [address, rows] of byAddress(unfinished)) {
      const setCount = await settleVfSetCount(address, rows, index, reader);
      if (setCount !== null) {
        if (setCount.repaired) repaired.push(setCount.repaired);
        if (setCount.replaced) replaced.set(address, setCount.replaced);
        continue;
      }
      const result = await repairDevice(address, rows, index.find(address), ports, reader, warnings, dryRun);
      if (result.repaired) repaired.push(result.repaired);
      if (result.change) changes.push(result.change);
      // A failed repair has said so already (repairDevice's warning); a done one says it here.
      if (result.repaired?.outcome === 'ok') warnings.push(repairedWarning(result.repaired));
    }
    // VFs a killed `vf set-count --force` was pruning, once their PF's VFs were removed or made
    // anew: the entry names a VF that left the host (a VF now at its address is another one).
    // The operator let them go with --force: not awaited back (as vf set-count itself records them).
    const replacedPrune = pruneVanished(op, new Set(replaced.keys()), 'vf-set-count', { known: replaced, awaitReturn: false });
    changes.push(...replacedPrune.changes);
    const look = await inspect(applyChanges(tables, changes.filter(isTableChange)), reader);
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
    const vfConfig: VfConfigRepair[] = [];
    if (net !== null) {
      const after = applyChanges(tables, changes.filter(isTableChange));
      const restore = dryRun
        ? () => Promise.resolve()
        : (saved: SavedVfNet) => runSteps([{ kind: 'net-restore', address: saved.address, saved }], ports, null);
      const active = new Set<string>(after.active.map((entry) => entry.address));
      const review = await reviewVfConfigs(op.vfConfigs(), active, { restore, exists: (address) => reader.exists(address) });
      changes.push(...review.changes);
      vfConfig.push(
        ...review.report.restored.map((address) => ({ key: pciKey(address), address, outcome: 'restored' as const, reason: null })),
        ...review.report.dropped.map((address) => ({ key: pciKey(address), address, outcome: 'dropped' as const, reason: null })),
        ...review.report.pending.map((item) => ({ key: pciKey(item.address), address: item.address, outcome: 'pending' as const, reason: item.reason })),
      );
      warnings.push(...vfConfig.map(vfConfigWarning));
    }
    const report: RecoveryReport = dryRun
      ? { dryRun, repaired, pruned, drift: look.drift, vfConfig, warnings: look.drift.map(driftWarning) }
      : { repaired, pruned, drift: look.drift, vfConfig, warnings };
    const operations = [...new Set(unfinished.map((row) => row.operationId))];
    // On a dry run the store is a snapshot in memory: the commit lets the plan that follows see
    // the tables as recovery would leave them.
    op.commit(changes, { resolve: operations, report, ...(options.command === undefined ? {} : { reportedBy: options.command }) });
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
  reconcile?: ReconcileScope;
}): Promise<RecoveryReport> {
  return recover(context.store, context.kernel, new HostReader(context.layout), new VfNetConfigurator(context.net), {
    dryRun: context.dryRun ?? false,
    wait: context.wait ?? true,
    reconcile: context.reconcile ?? 'full',
    ...(context.command === undefined ? {} : { command: context.command }),
  });
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

/** Table entries whose device vanished, and entries whose device is not on the recorded stub. */
async function inspect(tables: Tables, reader: RecoveryReader): Promise<{ vanished: Located[]; drift: DriftEntry[] }> {
  const vanished: Located[] = [];
  const drift: DriftEntry[] = [];
  const entries: Located[] = [
    ...tables.active.map((entry) => ({ table: 'active' as const, entry })),
    ...tables.inactive.map((entry) => ({ table: 'inactive' as const, entry })),
  ];
  // Every open looks at every entry: the links are read side by side (libuv's pool), not one by one.
  const drivers = await Promise.all(entries.map((located) => reader.driverOf(located.entry.address)));
  for (const [at, located] of entries.entries()) {
    const { address, stubDriver } = located.entry;
    const driver = drivers[at] ?? null;
    if (driver === stubDriver) continue;
    // Unbound or vanished look the same through the driver link; only then look the device up.
    if (driver === null && !(await reader.exists(address))) {
      vanished.push(located);
      continue;
    }
    const usedBy = located.table === 'active' ? located.entry.usedBy : null;
    drift.push({ key: pciKey(address), address, table: located.table, usedBy, expectedDriver: stubDriver, actualDriver: driver });
  }
  return { vanished, drift };
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
    return { repaired: repaired(address, 'vf-set-count', 'rolled-forward', 'ok', driver, index.find(address)?.table ?? null, null), replaced: null };
  }
  const [indexText, generation] = prune.value.split(' ');
  const pf = prune.hostPath.split('/')[5] as PciAddress;
  const now = (await reader.vfGeneration?.(pf)) ?? null;
  return { repaired: null, replaced: (now ?? 'none') === generation ? null : { pf, vfIndex: Number(indexText) } };
}

interface Repair {
  readonly repaired: RepairedDevice | null;
  readonly change: TableChange | null;
}

/**
 * One device touched by dead operations (rows in journal order; the first row's restore point is
 * the device as it was before any of them touched it; the tables still hold the state from
 * before, because an operation changes them only in its final commit).
 *
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
async function repairDevice(
  address: PciAddress,
  rows: readonly JournalRecord[],
  located: Located | undefined,
  ports: ExecutorPorts,
  reader: RecoveryReader,
  warnings: string[],
  dryRun: boolean,
): Promise<Repair> {
  const first = rows[0]!;
  const operation = first.operationName;
  const device = await reader.device(address);
  if (device === null) {
    // A table entry is pruned by the reconcile that follows; a device in no table needs nothing.
    warnings.push(`${address}, touched by an unfinished ${operation}, is no longer on this host`);
    return { repaired: null, change: null };
  }
  const forward = located !== undefined && TOWARD_HOST.has(operation);
  const direction = forward ? 'rolled-forward' : 'rolled-back';
  let target: { steps: Step[]; driver: string | null; change: TableChange | null; table: TableName | null };
  if (forward && located.table === 'active' && !located.entry.managed) {
    target = { steps: [], driver: located.entry.stubDriver, change: { kind: 'set-inactive', entry: toInactive(located.entry) }, table: 'inactive' };
  } else if (forward) {
    const entry = toInactive(located.entry);
    target = { steps: reattachSteps(hostFiles, device, entry), driver: entry.originalDriver, change: removeChange(address), table: null };
    if (entry.originalDriver === entry.stubDriver) target = { ...target, driver: entry.stubDriver };
  } else {
    target = { steps: restoreSteps(hostFiles, device, first.restore), driver: first.restore.driver, change: null, table: located?.table ?? null };
  }
  const steps = await loadSteps(target.steps, target.driver, reader);
  if (dryRun) {
    const planned = repaired(address, operation, direction, 'ok', target.driver, target.table, null);
    return { repaired: { ...planned, steps: steps.map(formatStep) }, change: target.change };
  }
  try {
    await runSteps(steps, ports, null);
    const now = await reader.driverOf(address);
    if (now !== target.driver) throw bindFailed(address, target.driver, now);
    return { repaired: repaired(address, operation, direction, 'ok', now, target.table, null), change: target.change };
  } catch (error) {
    return fallback(address, operation, direction, first.restore, located, reader, warnings, error);
  }
}

/**
 * A device recovery could not drive to its target is left recorded, never lost: if it sits on a
 * stub (or on no driver), it is kept as or moved to inactive (managed), so `hostdev reattach`
 * can finish the job; the warning says what happened.
 */
async function fallback(
  address: PciAddress,
  operation: OperationName,
  direction: RepairedDevice['direction'],
  restore: RestorePoint,
  located: Located | undefined,
  reader: RecoveryReader,
  warnings: string[],
  error: unknown,
): Promise<Repair> {
  const message = error instanceof Error ? error.message : String(error);
  const now = await reader.driverOf(address);
  const parked = now === null || isStubDriver(now);
  let change: TableChange | null = null;
  let table: TableName | null = located?.table ?? null;
  if (parked && located?.table !== 'active') {
    const entry = located?.entry ?? {
      key: pciKey(address),
      address,
      managed: true,
      stubDriver: now ?? DEFAULT_STUB_DRIVER,
      originalDriver: restore.driver,
    };
    change = { kind: 'set-inactive', entry: toInactive(entry) };
    table = 'inactive';
  } else if (parked && located?.table === 'active' && TOWARD_HOST.has(operation)) {
    change = { kind: 'set-inactive', entry: toInactive(located.entry) };
    table = 'inactive';
  }
  warnings.push(
    `recovery of ${address} after an unfinished ${operation} failed: ${message}; it is on ${now ?? 'no driver'}` +
      (table === null ? ' and in no table' : `, recorded as ${table}`) +
      (table === 'inactive' ? ` (run \`${hostdevCommand('reattach', address)}\` to give it back to the host)` : ''),
  );
  return { repaired: repaired(address, operation, direction, 'failed', now, table, message), change };
}

function repaired(
  address: PciAddress,
  operation: OperationName,
  direction: RepairedDevice['direction'],
  outcome: RepairedDevice['outcome'],
  driver: string | null,
  table: TableName | null,
  error: string | null,
): RepairedDevice {
  return { key: pciKey(address), address, operation, direction, outcome, driver, table, error };
}

/** A driver the target needs may have been unloaded meanwhile: load it first (bind needs it). */
async function loadSteps(steps: Step[], driver: string | null, reader: RecoveryReader): Promise<Step[]> {
  if (steps.length === 0 || driver === null || (await reader.driverLoaded(driver))) return steps;
  return [{ kind: 'load-module', module: moduleOf(driver), driver }, ...steps];
}
