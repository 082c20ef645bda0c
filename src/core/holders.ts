import type { Owner } from './tables.js';

/**
 * What keeps a domain's devices: a process (a pid AND the start time the kernel gives it, field 22
 * of /proc/PID/stat in clock ticks since boot, so a pid the kernel has given to another process is
 * not taken for the holder), or a running QEMU's QMP socket (the holder lives while the socket
 * answers). A domain without a holder keeps its devices until it is released.
 */
export type Holder =
  | { readonly kind: 'pid'; readonly pid: number; readonly startTime: string }
  | { readonly kind: 'qmp'; readonly socket: string };

export interface DomainHolder {
  readonly owner: Owner;
  readonly holder: Holder;
  /** When the holder was recorded (ISO time). */
  readonly since: string;
}

/**
 * Whether a holder lives: true, false (gone: its devices are released), or null when it could not
 * be told (a QMP socket that accepts but does not answer in time: QEMU serves one client at a time,
 * so a busy monitor is not a dead VM; nothing is released).
 */
export interface HolderLife {
  readonly alive: boolean | null;
  /** Why, in words: "pid 4242 exited", "pid 4242 now belongs to another process (...)". */
  readonly reason: string;
  /** Present (true) for a live pid holder /proc does not show (hidepid=2): a reused pid cannot be told from it. */
  readonly startTimeUnknown?: true;
}

export interface HolderStatus extends DomainHolder, HolderLife {}

/** How a holder is named in messages: "pid 4242" or "QMP socket /run/vm1.qmp". */
export function describeHolder(holder: Holder): string {
  return holder.kind === 'pid' ? `pid ${holder.pid}` : `QMP socket ${holder.socket}`;
}

