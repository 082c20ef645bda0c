import type { PciAddress } from '../core/address.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import { restoreSteps } from '../core/plan-device.js';
import { bindFailed } from '../core/plan-errors.js';
import { hostDriverWanted, onHostDriver, type Phase, type Plan, type RestorePoint, type Step, type StepGroup } from '../core/plan-types.js';
import { removeChange, type TableChange } from '../core/tables.js';
import { KernelWriteError, type KernelPort } from '../sysfs/kernel-port.js';
import { hostFiles } from '../sysfs/paths.js';
import type { Operation, StateChange } from '../state/store.js';
import type { HostReader } from './host-reader.js';
import { kernelWriteFailed, moduleUnavailable, outsideRootRefused } from './kernel-errors.js';

interface GroupFailure {
  readonly address: PciAddress;
  readonly phase: Phase;
  readonly error: HostdevError;
}

export interface Execution {
  /** The table changes committed. */
  readonly changes: readonly TableChange[];
  /** Groups that failed (only with onFailure 'continue'; a 'rollback' plan throws instead). */
  readonly failures: readonly GroupFailure[];
  /** Devices found gone once the steps ran (see `settle`), pruned in the same commit. */
  readonly pruned: readonly PciAddress[];
}

/**
 * Runs after the steps, before the commit: the reconcile of the devices the plan worked on (a
 * device may have left the host while the steps ran). Its changes go into the same commit, after
 * the plan's; a failed group of a device it pruned is no failure (there is nothing left to fail).
 */
export type Settle = () => { readonly changes: readonly StateChange[]; readonly pruned: readonly PciAddress[] };

interface ExecutorPorts {
  readonly kernel: KernelPort;
  readonly reader: HostReader;
}

/**
 * Applies a plan under the state lock. Every kernel write is journaled first (op.intend), then
 * written, then marked done; the driver link is read back where the plan says so. The table
 * changes go in ONE op.commit at the end.
 *
 * On a failed group: an all-or-nothing plan (assign, detach, reattach) undoes what it did, device
 * by device in reverse order, back to each device's restore point, commits nothing but the cleared
 * journal, and throws. If the undo itself fails the journal is left for recovery on next open.
 * A 'continue' plan (release) takes that device back to where the group found it, records the
 * failure, applies the group's fallback table change and goes on with the other devices.
 */
export async function executePlan(
  plan: Plan,
  op: Operation,
  ports: ExecutorPorts,
  /** Bookkeeping that goes in the same commit as the plan's table changes (not on a rollback). */
  extra: readonly StateChange[] = [],
  settle: Settle = () => ({ changes: [], pruned: [] }),
): Promise<Execution> {
  const touched: Array<{ address: PciAddress; restore: RestorePoint }> = [];
  const seen = new Set<string>();
  const failures: GroupFailure[] = [];

  for (const group of plan.groups) {
    try {
      await runGroup(group, op, ports, (address) => {
        if (!seen.has(address)) {
          seen.add(address);
          touched.push({ address, restore: group.restore });
        }
      });
    } catch (caught) {
      const error = isHostdevError(caught) ? caught : kernelWriteFailed(caught, group.address);
      if (plan.onFailure === 'rollback') {
        await rollBack(touched, op, ports, error);
        op.commit([]);
        throw error;
      }
      // This device only: back to where the group found it (a failed reattach leaves it on the stub).
      let reported = error;
      try {
        await rollBack([{ address: group.address, restore: group.restore }], op, ports, error);
      } catch (undo) {
        reported = isHostdevError(undo) ? undo : error;
      }
      failures.push({ address: group.address, phase: group.phase, error: reported });
    }
  }

  const failed = new Set(failures.map((failure) => `${failure.address} ${failure.phase}`));
  const fallbacks = new Map(
    plan.fallbacks
      .filter((fallback) => failed.has(`${fallback.address} ${fallback.phase}`))
      .map((fallback) => [fallback.address as string, fallback.change]),
  );
  const planned = plan.changes.map((change) => fallbacks.get(change.kind === 'remove' ? change.address : change.entry.address) ?? change);
  const settled = settle();
  const gone = new Set<string>(settled.pruned);
  const changes = [
    ...planned.filter((change) => !gone.has(change.kind === 'remove' ? change.address : change.entry.address)),
    ...settled.pruned.map(removeChange),
  ];
  op.commit([...planned, ...extra, ...settled.changes]);
  return { changes, failures: failures.filter((failure) => !gone.has(failure.address)), pruned: settled.pruned };
}

async function runGroup(
  group: StepGroup,
  op: Operation,
  ports: ExecutorPorts,
  onTouch: (address: PciAddress) => void,
): Promise<void> {
  for (const step of group.steps) await runStep(step, group.restore, op, ports, onTouch);
}

async function runStep(
  step: Step,
  restore: RestorePoint,
  op: Operation,
  ports: ExecutorPorts,
  onTouch: (address: PciAddress) => void,
): Promise<void> {
  switch (step.kind) {
    case 'load-module': {
      try {
        await ports.kernel.loadModule(step.module);
      } catch (error) {
        if (error instanceof KernelWriteError && error.outside !== null) throw outsideRootRefused(error, null);
        throw moduleUnavailable(step.driver, step.module, error);
      }
      if (!ports.reader.driverLoaded(step.driver)) {
        throw moduleUnavailable(step.driver, step.module, new Error(`no ${step.driver} driver directory after loading`));
      }
      return;
    }
    case 'write': {
      onTouch(step.address);
      const handle = op.intend({ address: step.address, action: step.action, hostPath: step.hostPath, value: step.value, restore });
      try {
        await ports.kernel.write(step.hostPath, step.value);
      } catch (error) {
        throw kernelWriteFailed(error, step.address);
      }
      op.done(handle);
      return;
    }
    case 'verify-driver': {
      const actual = ports.reader.driverOf(step.address);
      if (actual !== step.expected) throw bindFailed(step.address, step.expected, actual);
      return;
    }
    case 'verify-host-driver': {
      const actual = ports.reader.driverOf(step.address);
      if (!onHostDriver(actual, step.bound)) throw bindFailed(step.address, hostDriverWanted(step.bound), actual);
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
    const device = ports.reader.device(address);
    if (device === null) continue;
    try {
      for (const step of restoreSteps(hostFiles, device, restore)) await runStep(step, restore, op, ports, () => {});
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
