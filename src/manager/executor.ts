import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import type { DeviceKey } from '../core/device-key.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import { restoreSteps } from '../core/plan-device.js';
import { bindFailed } from '../core/plan-errors.js';
import { hostDriverWanted, onHostDriver, type Phase, type Plan, type RestorePoint, type Step, type StepGroup } from '../core/plan-types.js';
import { removeChange, type TableChange } from '../core/tables.js';
import type { KernelPort } from '../sysfs/kernel-port.js';
import { hostFiles } from '../sysfs/paths.js';
import type { CommitOptions, JournalHandle, JournalStep, Operation, StateChange } from '../state/store.js';
import { kernelWriteFailed, moduleUnavailable, type WriteContext } from './kernel-errors.js';
import { pendingWarning, toStored, type VfNetConfigurator } from './vf-net.js';

export interface GroupFailure {
  readonly address: PciAddress;
  readonly phase: Phase;
  /** The failed group's place in the plan. */
  readonly index: number;
  readonly error: HostdevError;
}

export interface Execution {
  /** The table changes committed. */
  readonly changes: readonly TableChange[];
  /** Groups that failed (not with onFailure 'rollback': such a plan throws instead). */
  readonly failures: readonly GroupFailure[];
  /** Devices found gone once the steps ran (see `settle`), pruned in the same commit. */
  readonly pruned: readonly PciAddress[];
  /** Saved VF configs that could not be put back (their rows are kept for the next run). */
  readonly netPending: ReadonlyArray<{ readonly address: PciAddress; readonly reason: string }>;
}

/**
 * Runs after the steps, before the commit: the reconcile of the devices the plan worked on (a
 * device may have left the host while the steps ran). Its changes go into the same commit, after
 * the plan's; a failed group of a device it pruned is no failure (there is nothing left to fail).
 * It hears the failed groups (a `leave` plan records where their devices stopped) and may add the
 * commit's options.
 */
export type Settle = (outcome: {
  readonly failures: readonly GroupFailure[];
  readonly netPending: Execution['netPending'];
}) => Promise<{
  readonly changes: readonly StateChange[];
  readonly pruned: readonly PciAddress[];
  readonly commit?: CommitOptions;
}>;

/** The reads the steps need between writes (HostReader has them). */
export interface StepReader {
  device(address: PciAddress): Promise<PciDevice | null>;
  /** The driver link now; null when unbound or vanished. */
  driverOf(address: PciAddress): Promise<string | null>;
  driverLoaded(name: string): Promise<boolean>;
  /** Whether a device of another kind (an mdev) is on the host; the `verify-device` steps read it. */
  devicePresent?(key: DeviceKey): Promise<boolean>;
}

export interface ExecutorPorts {
  readonly kernel: KernelPort;
  readonly reader: StepReader;
  /** VF network config (the `net-*` steps); a plan without such steps needs none. */
  readonly net?: VfNetConfigurator;
  /** What is worth saying but fails nothing: a saved VF config that could not be put back yet. */
  readonly warn?: (line: string) => void;
}

/**
 * Where a step is recorded. An operation journals every sysfs write before making it (op.intendAll,
 * then op.done) and saves a VF's network config in its own row (the row is that step's journal:
 * recovery puts back any saved row whose VF is not assigned). Recovery's own rows stand beside the
 * dead operation's until the commit that records what recovery did clears both.
 */
interface StepRecord {
  readonly op: Operation;
  readonly restore: RestorePoint;
}

/** What running steps touched: devices to bring back to their restore point, VFs whose config was saved or put back. */
interface Touched {
  readonly devices: Array<{ address: PciAddress; restore: RestorePoint }>;
  readonly netSaved: PciAddress[];
  readonly netRestored: PciAddress[];
}

function touchedNothing(): Touched {
  return { devices: [], netSaved: [], netRestored: [] };
}

/** Steps in order, the one step runner; only the executor's own paths call it. */
async function runSteps(
  steps: readonly Step[],
  ports: ExecutorPorts,
  record: StepRecord | null,
  touched: Touched = touchedNothing(),
  context: WriteContext = {},
): Promise<void> {
  let intended = new Map<number, JournalHandle>();
  for (const [index, step] of steps.entries()) {
    if (record !== null && step.kind === 'write' && !intended.has(index)) intended = intendAhead(steps, index, record);
    await runStep(step, ports, record, touched, context, intended.get(index) ?? null);
  }
}

type WriteStep = Extract<Step, { kind: 'write' }>;

function intentOf(step: WriteStep, restore: RestorePoint): JournalStep {
  return { address: step.address, action: step.action, hostPath: step.hostPath, value: step.value, restore };
}

export interface ExecuteOptions {
  /** Bookkeeping that goes in the same commit as the plan's table changes (not on a rollback). */
  readonly extra?: readonly StateChange[];
  readonly settle?: Settle;
  /** What a refused write's error may say (a PF's sriov_totalvfs). */
  readonly context?: WriteContext;
}

/**
 * The intents of the writes from `from` on, in one durable commit before the first of them (one
 * fsync for a group's writes, not one per write). A net-save step ends the run: its commit clears
 * the operation's journal rows, so the writes after it are journaled after it.
 */
function intendAhead(steps: readonly Step[], from: number, record: StepRecord): Map<number, JournalHandle> {
  const ahead: Array<{ index: number; step: WriteStep }> = [];
  for (let index = from; index < steps.length; index++) {
    const step = steps[index]!;
    if (step.kind === 'net-save') break;
    if (step.kind === 'write') ahead.push({ index, step });
  }
  const handles = record.op.intendAll(ahead.map(({ step }) => intentOf(step, record.restore)));
  return new Map(ahead.map(({ index }, i) => [index, handles[i]!]));
}

/**
 * Applies a plan under the state lock: the one way hostdev applies steps (operations, recovery's
 * repairs, `vf set-count`). Every kernel write is journaled first (a group's writes in one durable
 * commit before the first of them, op.intendAll), then written, then marked done; the driver link
 * is read back where the plan says so. VF network config is saved (its own durable row) before it
 * is set. The table changes go in ONE op.commit at the end. A
 * failed step is a catalog error (the errno mapped in kernel-errors.ts).
 *
 * On a failed group: an all-or-nothing plan (assign, detach, reattach) undoes what it did, device
 * by device in reverse order, back to each device's restore point, then puts back the VF network
 * config it set, commits nothing but the cleared journal, and throws. If the undo itself fails the
 * journal is left for recovery on next open. A 'continue' plan (release) takes that device back
 * to where the group found it, records the failure, applies the group's fallback table change and
 * goes on with the other devices; a VF config it could not put back is a warning, its row kept.
 * A 'leave' plan (recovery) records the failure and goes on, the device left where it stopped;
 * a 'stop' plan (vf set-count) records it and runs no further group. The table changes of a
 * device whose group failed or never ran are left out unless a fallback names them.
 */
export async function executePlan(plan: Plan, op: Operation, ports: ExecutorPorts, options: ExecuteOptions = {}): Promise<Execution> {
  const touched = touchedNothing();
  const failures: GroupFailure[] = [];
  const netPending: Array<{ address: PciAddress; reason: string }> = [];
  const skipped = new Set<string>();

  for (const [index, group] of plan.groups.entries()) {
    if (plan.onFailure === 'stop' && failures.length > 0) {
      skipped.add(group.address);
      continue;
    }
    try {
      await runGroup(group, op, ports, touched, options.context ?? {});
    } catch (caught) {
      const error = isHostdevError(caught) ? caught : kernelWriteFailed(caught, group.address);
      if (plan.onFailure === 'rollback') {
        try {
          await rollBack(touched.devices, op, ports, error);
        } finally {
          await putBackVfNet(touched.netSaved, op, ports);
        }
        op.commit([]);
        throw error;
      }
      if (group.phase === 'vf-net') {
        // A saved config is put back first; one it cannot put back now is kept for the next run.
        ports.warn?.(pendingWarning(group.address, error.message));
        netPending.push({ address: group.address, reason: error.message });
        continue;
      }
      let reported = error;
      if (plan.onFailure === 'continue') {
        // This device only: back to where the group found it (a failed reattach leaves it on the stub).
        try {
          await rollBack([{ address: group.address, restore: group.restore }], op, ports, error);
        } catch (undo) {
          reported = isHostdevError(undo) ? undo : error;
        }
      }
      skipped.add(group.address);
      failures.push({ address: group.address, phase: group.phase, index, error: reported });
    }
  }

  const failed = new Set(failures.map((failure) => `${failure.address} ${failure.phase}`));
  const fallbacks = new Map(
    plan.fallbacks
      .filter((fallback) => failed.has(`${fallback.address} ${fallback.phase}`))
      .map((fallback) => [fallback.address as string, fallback.change]),
  );
  const addressOf = (change: TableChange): string => (change.kind === 'remove' ? change.address : change.entry.address);
  const planned = plan.changes.flatMap((change) => {
    const fallback = fallbacks.get(addressOf(change));
    if (fallback !== undefined) return [fallback];
    return plan.onFailure !== 'continue' && skipped.has(addressOf(change)) ? [] : [change];
  });
  const settled = options.settle === undefined ? { changes: [], pruned: [] } : await options.settle({ failures, netPending });
  const gone = new Set<string>(settled.pruned);
  const changes = [...planned.filter((change) => !gone.has(addressOf(change))), ...settled.pruned.map(removeChange)];
  // A VF config put back is dropped in the same commit that lets the VF go.
  const dropped = touched.netRestored.filter((address) => !gone.has(address)).map((address): StateChange => ({ kind: 'drop-vf-config', address }));
  op.commit([...planned, ...(options.extra ?? []), ...settled.changes, ...dropped], 'commit' in settled ? settled.commit : undefined);
  return { changes, failures: failures.filter((failure) => !gone.has(failure.address)), pruned: settled.pruned, netPending };
}

async function runGroup(group: StepGroup, op: Operation, ports: ExecutorPorts, touched: Touched, context: WriteContext): Promise<void> {
  await runSteps(group.steps, ports, { op, restore: group.restore }, touched, context);
}

function netOf(ports: ExecutorPorts, step: Step): VfNetConfigurator {
  if (ports.net === undefined) {
    throw new HostdevError('HOSTDEV_INTERNAL', `a ${step.kind} step without a net port`, {
      hint: 'This is a bug in hostdev: report it with the command that was run.',
    });
  }
  return ports.net;
}

async function runStep(
  step: Step,
  ports: ExecutorPorts,
  record: StepRecord | null,
  touched: Touched,
  context: WriteContext,
  /** A write's intent, already journaled (intendAhead) when `record` is given. */
  handle: JournalHandle | null,
): Promise<void> {
  switch (step.kind) {
    case 'load-module': {
      try {
        await ports.kernel.loadModule(step.module);
      } catch (error) {
        throw moduleUnavailable(step.driver, step.module, error);
      }
      if (!(await ports.reader.driverLoaded(step.driver))) {
        throw moduleUnavailable(step.driver, step.module, new Error(`no ${step.driver} driver directory after loading`));
      }
      return;
    }
    case 'write': {
      if (record !== null && !touched.devices.some((device) => device.address === step.address)) {
        touched.devices.push({ address: step.address, restore: record.restore });
      }
      try {
        await ports.kernel.write(step.hostPath, step.value);
      } catch (error) {
        throw kernelWriteFailed(error, step.address, context);
      }
      if (handle !== null && record !== null) record.op.done(handle);
      return;
    }
    case 'verify-driver': {
      const actual = await ports.reader.driverOf(step.address);
      if (actual !== step.expected) throw bindFailed(step.address, step.expected, actual);
      return;
    }
    case 'verify-host-driver': {
      const actual = await ports.reader.driverOf(step.address);
      if (!onHostDriver(actual, step.bound)) throw bindFailed(step.address, hostDriverWanted(step.bound), actual);
      return;
    }
    case 'net-save': {
      const net = netOf(ports, step);
      const current = await net.current(step.target);
      if (record === null) return;
      // An earlier unfinished assign's row holds the true original: never overwrite it.
      const earlier = record.op.vfConfigs().find((row) => row.address === step.address);
      const original = earlier ?? toStored(step.target, current);
      // What the domain asked for is kept with it: a VF that leaves and returns is readied with it again.
      // Durable before any setting changes; it also clears the operation's journal rows, which is
      // why a plan's vf-net groups come before its first sysfs write.
      record.op.commit([{ kind: 'save-vf-config', config: { ...original, requested: step.request } }]);
      touched.netSaved.push(step.address);
      return;
    }
    case 'net-set':
      await netOf(ports, step).set(step.target, step.setting);
      return;
    case 'net-restore':
      await netOf(ports, step).restore(step.saved);
      touched.netRestored.push(step.address);
      return;
    case 'verify-device': {
      if (ports.reader.devicePresent === undefined) {
        throw new HostdevError('HOSTDEV_INTERNAL', `a verify-device step of ${step.key} without a reader of such devices`, {
          hint: 'This is a bug in hostdev: report it with the command that was run.',
        });
      }
      const present = await ports.reader.devicePresent(step.key);
      if (present !== step.present) {
        throw new HostdevError('HOSTDEV_DRIFT', `${step.key} is ${present ? 'on the host' : 'not on the host'} again: it changed while recovery read it`, {
          hint: 'Something else creates or removes it (mdevctl?); run the command again to look at it anew.',
          details: { key: step.key, expected: step.present, present },
        });
      }
      return;
    }
  }
}

/** Each touched device, newest first, back to its restore point. Resets cannot be undone and need not be. */
async function rollBack(
  touched: ReadonlyArray<{ address: PciAddress; restore: RestorePoint }>,
  op: Operation,
  ports: ExecutorPorts,
  cause: HostdevError,
): Promise<void> {
  const problems: string[] = [];
  for (const { address, restore } of [...touched].reverse()) {
    const device = await ports.reader.device(address);
    if (device === null) continue;
    try {
      await runSteps(restoreSteps(hostFiles, device, restore), ports, { op, restore });
    } catch (error) {
      problems.push(`${address}: ${isHostdevError(error) ? error.message : String(error)}`);
    }
  }
  if (problems.length > 0) {
    throw new HostdevError('HOSTDEV_KERNEL_WRITE', `${cause.message}; and undoing it failed: ${problems.join('; ')}`, {
      hint: 'The journal keeps what was done: the next hostdev command recovers it (see `hostdev status`).',
      details: { ...cause.details, rollback: problems },
      cause,
    });
  }
}

/**
 * The VF configs a failed assign saved go back (newest first) and their rows are dropped; one
 * that cannot go back now keeps its row (recovery at the next open tries again) and is a warning.
 */
async function putBackVfNet(saved: readonly PciAddress[], op: Operation, ports: ExecutorPorts): Promise<void> {
  const dropped: StateChange[] = [];
  for (const address of [...saved].reverse()) {
    const row = op.vfConfigs().find((config) => config.address === address);
    if (row === undefined) continue;
    try {
      await runSteps([{ kind: 'net-restore', address, saved: row }], ports, null);
      dropped.push({ kind: 'drop-vf-config', address });
    } catch (error) {
      ports.warn?.(pendingWarning(address, error instanceof Error ? error.message : String(error)));
    }
  }
  if (dropped.length > 0) op.commit(dropped);
}
