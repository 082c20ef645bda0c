import type { PciAddress } from '../core/address.js';
import type { OperationName } from '../core/operations.js';
import { processAlive } from '../platform/process-alive.js';
import type { JournalRecord } from '../state/store.js';

/** An operation with rows in the journal: under way (its process is alive) or left by one that died. */
export interface InFlightOperation {
  readonly id: string;
  readonly operation: OperationName;
  readonly pid: number;
  /** Whether its process is still alive; a dead one's rows are repaired by the next command that gets the lock. */
  readonly running: boolean;
  readonly addresses: readonly PciAddress[];
  readonly since: string;
}

/** The journal's rows, one entry an operation, in the order they began. */
export function inFlightOperations(journal: readonly JournalRecord[]): InFlightOperation[] {
  const byId = new Map<string, { first: JournalRecord; addresses: Set<PciAddress> }>();
  for (const row of journal) {
    const seen = byId.get(row.operationId) ?? { first: row, addresses: new Set<PciAddress>() };
    seen.addresses.add(row.address);
    byId.set(row.operationId, seen);
  }
  return [...byId.values()].map(({ first, addresses }) => ({
    id: first.operationId,
    operation: first.operationName,
    pid: first.pid,
    running: processAlive(first.pid),
    addresses: [...addresses],
    since: first.createdAt,
  }));
}

/** "release (pid 4242, running) on 0000:01:10.0": for warnings and status. */
export function describeInFlight(operation: InFlightOperation): string {
  const state = operation.running ? 'running' : 'its process is gone';
  return `${operation.operation} (pid ${operation.pid}, ${state}) on ${operation.addresses.join(', ')} since ${operation.since}`;
}
