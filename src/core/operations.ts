/** The operations that change devices through a plan (core/plan-types.ts), one journal each. */
export type PlanOperationName = 'detach' | 'reattach' | 'reset' | 'assign' | 'release' | 'hand-over' | 'adopt';

/**
 * Every operation of hostdev by its one name: what the journal records (op_name), what the state
 * lock reports as its holder, what recovery says it repaired. The plan operations, then the ones
 * that change the tables or the host without a plan of their own.
 */
export type OperationName = PlanOperationName | 'vf-set-count' | 'vf-forget' | 'recover' | 'status' | 'watch-prune' | 'watch-returned';
