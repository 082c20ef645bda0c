import type { PciAddress } from '../core/address.js';
import { pciKey, type DeviceKey } from '../core/device-key.js';
import { formatStep, planSteps, type Phase, type Plan, type ResetChoice } from '../core/plan-types.js';
import type { TableChange } from '../core/tables.js';
import type { Execution } from './executor.js';
import type { RecoveryReport } from './recovery.js';

export interface FailureReport {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly phase: Phase;
  readonly code: string;
  readonly message: string;
}

/** What a mutating call did (or, on a dry run, would do). */
export interface OperationReport {
  readonly operation: Plan['operation'];
  readonly dryRun: boolean;
  /** The plan, in order: writes, module loads and read-back checks, one line each. */
  readonly steps: readonly string[];
  readonly changes: readonly TableChange[];
  readonly pruned: readonly PciAddress[];
  readonly resets: readonly ResetChoice[];
  readonly failures: readonly FailureReport[];
  readonly notes: readonly string[];
  readonly plan: Plan;
  /** Dry runs only: what recovery at open would do before this operation (see RecoveryReport.dryRun). */
  readonly recovery?: RecoveryReport;
}

export interface ReleaseReport extends OperationReport {
  /** Devices that left the domain. */
  readonly released: readonly PciAddress[];
  /** Released and back on their original driver (managed). */
  readonly reattached: readonly PciAddress[];
  /** Released and still on the stub, in the inactive table (unmanaged, or a failed reattach). */
  readonly inactive: readonly PciAddress[];
}

export function operationReport(plan: Plan, execution: Execution | null): OperationReport {
  return {
    operation: plan.operation,
    dryRun: execution === null,
    steps: planSteps(plan).map(formatStep),
    changes: execution?.changes ?? plan.changes,
    pruned: [...new Set([...plan.pruned, ...(execution?.pruned ?? [])])],
    resets: plan.resets,
    failures: (execution?.failures ?? []).map((failure) => ({
      key: pciKey(failure.address),
      address: failure.address,
      phase: failure.phase,
      code: failure.error.code,
      message: failure.error.message,
    })),
    notes: plan.notes,
    plan,
  };
}

export function releaseReport(
  plan: Plan,
  execution: Execution | null,
  prunedEarlier: readonly PciAddress[] = [],
): ReleaseReport {
  const report = operationReport(plan, execution);
  const pruned = new Set<string>([...plan.pruned, ...(execution?.pruned ?? [])]);
  const released: PciAddress[] = [];
  const reattached: PciAddress[] = [];
  const inactive: PciAddress[] = [];
  for (const change of report.changes) {
    const address = change.kind === 'remove' ? change.address : change.entry.address;
    if (pruned.has(address)) continue;
    released.push(address);
    (change.kind === 'remove' ? reattached : inactive).push(address);
  }
  const allPruned = [...new Set([...plan.pruned, ...(execution?.pruned ?? []), ...prunedEarlier])];
  return { ...report, pruned: allPruned, released, reattached, inactive };
}
