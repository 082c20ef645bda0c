import type { PciAddress } from '../core/address.js';
import type { DeviceKey } from '../core/device-key.js';
import { isHostdevError } from '../core/errors.js';
import { describeHolder, type DomainHolder, type Holder, type HolderLife, type HolderStatus } from '../core/holders.js';
import { formatOwner } from '../core/tables.js';
import { processStartTime, signalZero, type SignalZero } from '../platform/process-alive.js';
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

/** Where a process holder is looked up: the /proc root, and kill(pid, 0). Injected by tests. */
export interface ProcessProbe {
  readonly proc?: string;
  readonly signal?: SignalZero;
}

/**
 * A process holder lives while its pid runs with the start time recorded for it. /proc mounted
 * with hidepid=2 hides another user's processes: a pid /proc does not show is asked with
 * kill(pid, 0), ESRCH meaning gone and EPERM alive, its start time then unknown (so a reused pid
 * cannot be told from the holder; the reason says so).
 */
export async function pidHolderLife(pid: number, startTime: string, probe: ProcessProbe = {}): Promise<HolderLife> {
  const now = await processStartTime(pid, probe.proc);
  if (now === null) {
    const signal = (probe.signal ?? signalZero)(pid);
    if (signal === 'absent') return { alive: false, reason: `pid ${pid} exited` };
    return {
      alive: true,
      reason: `pid ${pid} runs, hidden from /proc (hidepid): its start time is unknown, a reused pid cannot be told from it`,
      startTimeUnknown: true,
    };
  }
  if (now !== startTime) {
    return { alive: false, reason: `pid ${pid} now belongs to another process (started at tick ${now}; the holder started at tick ${startTime})` };
  }
  return { alive: true, reason: `pid ${pid} runs` };
}

export function holderLife(holder: Holder, probeQmp: QmpHolderProbe = qmpHolderLife, process: ProcessProbe = {}): Promise<HolderLife> {
  return holder.kind === 'pid' ? pidHolderLife(holder.pid, holder.startTime, process) : probeQmp(holder.socket);
}

/** Every holder with whether it lives, the probes run side by side. */
export function holderStatuses(holders: readonly DomainHolder[], probeQmp?: QmpHolderProbe, process?: ProcessProbe): Promise<HolderStatus[]> {
  return Promise.all(holders.map(async (held) => ({ ...held, ...(await holderLife(held.holder, probeQmp, process)) })));
}

/**
 * Which holders a command probes: `all` (status, domains, the daemon's watch), `pids` (a changing
 * command: a /proc read each, cheap), `none` (a reader such as list or show). A QMP probe may
 * wait up to its bound on a monitor another client holds, so only the commands about holders pay it.
 */
export type HolderScope = 'all' | 'pids' | 'none';

export function inScope(held: DomainHolder, scope: HolderScope): boolean {
  return scope === 'all' || (scope === 'pids' && held.holder.kind === 'pid');
}

/** Whether the holder recorded for a domain now is still the one that was found gone (not one re-registered since). */
export function sameHolderRecord(a: DomainHolder, b: DomainHolder): boolean {
  const [x, y] = [a.holder, b.holder];
  const same =
    x.kind === 'pid' && y.kind === 'pid' ? x.pid === y.pid && x.startTime === y.startTime : x.kind === 'qmp' && y.kind === 'qmp' && x.socket === y.socket;
  return same && a.since === b.since && a.owner.hypervisor === b.owner.hypervisor && a.owner.vm === b.owner.vm;
}

/**
 * Thrown under the state lock when the holder found gone was replaced before its release took the
 * lock (an adopt or assign re-registered the domain): nothing is released. Never leaves the manager.
 */
export class HolderReplaced extends Error {
  constructor(readonly holder: DomainHolder) {
    super(`the holder of domain ${holder.owner.vm} was replaced before its release`);
  }
}

/** A domain whose holder is gone, and what releasing it did. */
export interface HolderEnd {
  readonly holder: HolderStatus;
  /** The PCI devices given back (on a dry run: that would be). */
  readonly released: readonly PciAddress[];
  /** The devices of other kinds (mdev, USB) given back. */
  readonly releasedDevices: readonly DeviceKey[];
  /** Why the release failed (the devices stay assigned; the next command tries again), or null. */
  readonly error: string | null;
}

/** The warning line for a domain whose holder ended. */
export function holderEndLine(end: HolderEnd, dryRun: boolean): string {
  const { owner, holder, reason } = end.holder;
  const who = `the holder of domain ${owner.vm} (${formatOwner(owner)}), ${describeHolder(holder)}, is gone (${reason})`;
  if (end.error !== null) return `${who}: releasing it failed, the next command tries again: ${end.error}`;
  const devices = [...end.released, ...end.releasedDevices].join(', ') || 'no device';
  return dryRun ? `${who}: its devices would be released: ${devices}` : `${who}: released ${devices}`;
}
