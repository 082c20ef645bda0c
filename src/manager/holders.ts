import type { PciAddress } from '../core/address.js';
import { isHostdevError } from '../core/errors.js';
import { describeHolder, type DomainHolder, type Holder, type HolderLife, type HolderStatus } from '../core/holders.js';
import { formatOwner } from '../core/tables.js';
import { processStartTime } from '../platform/process-alive.js';
import { QmpClient } from '../qmp/qmp-client.js';

/** How long a QMP holder has to greet and answer `query-status` before it is taken as unresponsive. */
export const QMP_HOLDER_BOUND_MS = 1_000;

/** Tells whether a QMP socket's QEMU lives. */
export type QmpHolderProbe = (socket: string) => Promise<HolderLife>;

/**
 * A QMP socket's QEMU lives while it greets and answers `query-status` within the bound. No socket,
 * a refused connection or one closed without a greeting: gone. No answer within the bound: not
 * known (QEMU serves one client per QMP socket, so a monitor another client holds does not answer).
 */
export async function qmpHolderLife(socket: string, boundMs = QMP_HOLDER_BOUND_MS): Promise<HolderLife> {
  let client: QmpClient | null = null;
  try {
    client = await QmpClient.connect(socket, { timeoutMs: boundMs, commandTimeoutMs: boundMs });
    const status = await client.execute<{ status?: string }>('query-status');
    return { alive: true, reason: `QEMU answers on ${socket} (${status.status ?? 'status unknown'})` };
  } catch (error) {
    return qmpProbeFailure(socket, error, boundMs);
  } finally {
    client?.close();
  }
}

/**
 * What a failed QMP probe says of its QEMU. No greeting or answer within the bound, or a connect
 * refused with EAGAIN (a unix socket whose listener is there but whose backlog is full: QEMU serves one
 * client per QMP socket and leaves the others waiting, so a busy monitor soon refuses so): not known.
 * Anything else (no socket, ECONNREFUSED: nobody listens; a connection closed without a greeting): gone.
 */
export function qmpProbeFailure(socket: string, error: unknown, boundMs: number): HolderLife {
  const message = error instanceof Error ? error.message : String(error);
  if (isHostdevError(error) && /did not greet|did not answer/.test(message)) {
    return { alive: null, reason: `QEMU did not answer on ${socket} within ${boundMs} ms (another client may hold its monitor)` };
  }
  if (isHostdevError(error) && error.details['errno'] === 'EAGAIN') {
    return { alive: null, reason: `QEMU's monitor on ${socket} takes no more connections now (EAGAIN: another client holds it, others wait)` };
  }
  return { alive: false, reason: `QEMU no longer answers on ${socket}: ${message}` };
}

/** A process holder lives while its pid runs with the start time recorded for it. */
export async function pidHolderLife(pid: number, startTime: string): Promise<HolderLife> {
  const now = await processStartTime(pid);
  if (now === null) return { alive: false, reason: `pid ${pid} exited` };
  if (now !== startTime) {
    return { alive: false, reason: `pid ${pid} now belongs to another process (started at tick ${now}; the holder started at tick ${startTime})` };
  }
  return { alive: true, reason: `pid ${pid} runs` };
}

export function holderLife(holder: Holder, probeQmp: QmpHolderProbe = qmpHolderLife): Promise<HolderLife> {
  return holder.kind === 'pid' ? pidHolderLife(holder.pid, holder.startTime) : probeQmp(holder.socket);
}

/** Every holder with whether it lives, the probes run side by side. */
export function holderStatuses(holders: readonly DomainHolder[], probeQmp?: QmpHolderProbe): Promise<HolderStatus[]> {
  return Promise.all(holders.map(async (held) => ({ ...held, ...(await holderLife(held.holder, probeQmp)) })));
}

/** A domain whose holder is gone, and what releasing it did. */
export interface HolderEnd {
  readonly holder: HolderStatus;
  /** The devices given back (on a dry run: that would be). */
  readonly released: readonly PciAddress[];
  /** Why the release failed (the devices stay assigned; the next command tries again), or null. */
  readonly error: string | null;
}

/** The warning line for a domain whose holder ended. */
export function holderEndLine(end: HolderEnd, dryRun: boolean): string {
  const { owner, holder, reason } = end.holder;
  const who = `the holder of domain ${owner.vm} (${formatOwner(owner)}), ${describeHolder(holder)}, is gone (${reason})`;
  if (end.error !== null) return `${who}: releasing it failed, the next command tries again: ${end.error}`;
  const devices = end.released.join(', ') || 'no device';
  return dryRun ? `${who}: its devices would be released: ${devices}` : `${who}: released ${devices}`;
}
