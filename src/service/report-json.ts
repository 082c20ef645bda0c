import { planSteps, planWrites, type Step } from '../core/plan-types.js';
import type { OperationReport } from '../manager/reports.js';
import type { AssignResult, HotplugReport, ReleaseResult, UnplugReport } from './hostdev-service.js';

/** A read-back check of the plan: the driver a device must be on once its writes are done. */
export type ReportCheck = Extract<Step, { kind: 'verify-driver' | 'verify-host-driver' }>;

/**
 * A change report as `--json` prints it and the daemon answers it: the report without its plan
 * object, with the plan's writes as `{path, value}` and its read-back checks. It carries all the
 * command line renders, so the CLI prints the same text from the daemon's answer as from the report.
 */
export type ReportJson<R extends OperationReport = OperationReport> = Omit<R, 'plan'> & {
  readonly writes: ReadonlyArray<{ readonly path: string; readonly value: string }>;
  readonly checks: readonly ReportCheck[];
};

/** The JSON of a mutating operation's report (detach, reattach, reset, assign, release). */
export function operationJson<R extends OperationReport>(report: R): ReportJson<R> {
  const { plan, ...rest } = report;
  return {
    ...rest,
    writes: planWrites(plan).map((write) => ({ path: write.hostPath, value: write.value })),
    checks: planSteps(plan).filter((step): step is ReportCheck => step.kind === 'verify-driver' || step.kind === 'verify-host-driver'),
  };
}

/** A hot-plug report as the daemon answers it: its assign as `--json` prints it. */
export type HotplugJson = Omit<HotplugReport, 'assign'> & { readonly assign: ReportJson<AssignResult> | null };

export function hotplugJson(report: HotplugReport): HotplugJson {
  return { ...report, assign: report.assign === null ? null : operationJson(report.assign) };
}

/** An unplug report as the daemon answers it: its release as `--json` prints it. */
export type UnplugJson = Omit<UnplugReport, 'release'> & { readonly release: ReportJson<ReleaseResult> };

export function unplugJson(report: UnplugReport): UnplugJson {
  return { ...report, release: operationJson(report.release) };
}
