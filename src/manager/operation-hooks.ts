import type { Plan } from '../core/plan-types.js';
import type { Operation } from '../state/store.js';
import type { Execution } from './executor.js';

/**
 * Extra work inside an assign/release operation, under its lock (VF network config).
 * `before` runs after planning and before the first journaled write; `after` once the plan's
 * changes are committed; `failed` after a failed plan was rolled back.
 */
export interface OperationHooks {
  readonly before?: (op: Operation, plan: Plan) => Promise<void>;
  readonly after?: (op: Operation, plan: Plan, execution: Execution) => Promise<void>;
  readonly failed?: (op: Operation, plan: Plan, error: unknown) => Promise<void>;
}
