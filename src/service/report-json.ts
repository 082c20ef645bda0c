import { planWrites } from '../core/plan-types.js';
import type { OperationReport } from '../manager/reports.js';

/**
 * The JSON of a mutating operation's report (detach, reattach, reset, assign, release), as
 * `--json` prints it and the daemon answers it: the report without its plan object, with the
 * plan's writes as `{path, value}`.
 */
export function operationJson(report: OperationReport): Record<string, unknown> {
  const { plan, ...rest } = report;
  return { ...rest, writes: planWrites(plan).map((write) => ({ path: write.hostPath, value: write.value })) };
}
