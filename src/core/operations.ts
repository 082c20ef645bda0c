/** The operations that change devices through a plan (core/plan-types.ts), one journal each. */
export type PlanOperationName = 'detach' | 'reattach' | 'reset' | 'assign' | 'release' | 'hand-over' | 'adopt' | 'recover' | 'vf-set-count';

/**
 * Every operation of hostdev by its one name: what the journal records (op_name), what the state
 * lock reports as its holder, what recovery says it repaired. The plan operations, then the ones
 * that change the tables or the host without a plan of their own.
 */
export type OperationName = PlanOperationName | 'vf-forget' | 'status' | 'watch-prune' | 'watch-returned' | 'mdev-create' | 'mdev-remove';

/**
 * The operations a client starts through the daemon: operations of hostdev, and hotplug and unplug,
 * which the daemon runs as one operation each (an assign or a release, journalled as such, with the
 * VM's QMP commands around it).
 */
export type DaemonOperationName =
  | Extract<OperationName, 'detach' | 'reattach' | 'reset' | 'assign' | 'release' | 'vf-set-count' | 'adopt' | 'mdev-create' | 'mdev-remove'>
  | 'hotplug'
  | 'unplug';

/**
 * Their names on the daemon's wire (`kind` of an operation record, metrics labels, events): the
 * operation names, as first published, where vf set-count is `sriov` (its route's name). The one
 * place the two are mapped.
 */
export const WIRE_KINDS = {
  detach: 'detach',
  reattach: 'reattach',
  reset: 'reset',
  assign: 'assign',
  release: 'release',
  'vf-set-count': 'sriov',
  adopt: 'adopt',
  hotplug: 'hotplug',
  unplug: 'unplug',
  'mdev-create': 'mdev-create',
  'mdev-remove': 'mdev-remove',
} as const satisfies Record<DaemonOperationName, string>;

export type WireKind = (typeof WIRE_KINDS)[DaemonOperationName];

/** The operation a wire kind names. */
export function operationOfKind(kind: WireKind): DaemonOperationName {
  return (Object.keys(WIRE_KINDS) as DaemonOperationName[]).find((name) => WIRE_KINDS[name] === kind)!;
}
