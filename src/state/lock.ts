import { statfsSync } from 'node:fs';
import type { OperationName } from '../core/operations.js';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { openSqlite } from './sqlite.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostdevError } from '../core/errors.js';

/** A process known to hold the lock, and the operation it runs. */
export interface LockHolder {
  readonly operation: OperationName;
  readonly pid: number;
}

/** Waiters poll at most every MAX_POLL_MS (plus as much jitter). */
const MAX_POLL_MS = 16;
/** How long a process may keep retaking the lock while others wait, before it yields. */
const FAIR_SLICE_MS = 200;
/** Long enough for every waiter to poll once. */
const YIELD_MS = 2 * MAX_POLL_MS + 1;

/**
 * The cross-process lock: an EXCLUSIVE transaction on a small database of its own (no writes
 * ever happen in it). SQLite takes it with a POSIX file lock, which the kernel drops when the
 * holding process dies, SIGKILL included: a crashed hostdev never leaves a stale lock, and there
 * is no lock file with a timer to go stale. The wait is a polling loop with jitter instead of
 * SQLite's busy handler, so a waiting daemon keeps its event loop.
 *
 * Fairness: a process that runs operations back to back would retake the lock before any
 * sleeping waiter polls. So waiters announce themselves by holding a SHARED lock on a second
 * small database (the waiting room; it too vanishes with a dead process), and a process that
 * has kept retaking the lock for FAIR_SLICE_MS checks the waiting room and, if anyone waits,
 * yields long enough for one of them to poll. Handing over at every operation would cost a
 * wake-up per operation; a slice bounds the wait at about (waiters x slice) instead.
 */
export class ProcessLock {
  readonly path: string;
  private readonly db: Database.Database;
  private readonly room: Database.Database;
  private held = false;
  private waiting = false;
  private releasedAt = Number.NEGATIVE_INFINITY;
  /** When this process's current run of back-to-back acquisitions began. */
  private sliceStart = 0;

  constructor(path: string, waitingRoomPath: string) {
    this.path = path;
    this.db = openSqlite(path, { timeout: 0 });
    this.room = openSqlite(waitingRoomPath, { timeout: 0 });
  }

  get isHeld(): boolean {
    return this.held;
  }

  /**
   * Waits up to `timeoutMs` for the lock; HOSTDEV_BUSY names the lock, and the holder when
   * `holder` can tell who it is, when it stays taken.
   */
  async acquire(timeoutMs: number, operationName: OperationName, holder: () => LockHolder | null = () => null): Promise<void> {
    let started = Date.now();
    const backToBack = started - this.releasedAt < YIELD_MS;
    if (!backToBack) this.sliceStart = started;
    else if (started - this.sliceStart >= FAIR_SLICE_MS && this.othersWaiting()) {
      await sleep(YIELD_MS);
      started = this.sliceStart = Date.now();
    }
    let pause = 1;
    try {
      for (;;) {
        if (this.tryAcquire()) {
          if (this.waiting) this.sliceStart = Date.now();
          return;
        }
        this.enterWaitingRoom();
        const waited = Date.now() - started;
        if (waited >= timeoutMs) throw this.busyError(operationName, timeoutMs, waited, holder());
        await sleep(Math.min(timeoutMs - waited, pause + Math.random() * pause));
        pause = Math.min(pause * 2, MAX_POLL_MS);
      }
    } finally {
      this.leaveWaitingRoom();
    }
  }

  /** One non-blocking attempt. */
  tryAcquire(): boolean {
    if (this.held) throw new Error('ProcessLock.tryAcquire: already held by this connection');
    try {
      this.db.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      if (isBusy(error)) return false;
      throw new HostdevError('HOSTDEV_STATE', `the hostdev state lock ${this.path} cannot be used: ${String(error)}`, {
        hint: noSpaceLeft(this.path)
          ? 'Free space on the filesystem of the state directory (df): it is full. Then run `hostdev status`.'
          : 'Check that the state directory is on a local filesystem with working file locks and is writable.',
        details: { path: this.path },
        cause: error,
      });
    }
    this.held = true;
    return true;
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.db.exec('ROLLBACK');
    this.releasedAt = Date.now();
  }

  close(): void {
    this.release();
    this.leaveWaitingRoom();
    this.db.close();
    this.room.close();
  }

  private busyError(operationName: OperationName, timeoutMs: number, waitedMs: number, holder: LockHolder | null): HostdevError {
    const who = holder === null ? 'another hostdev process is running and' : `"${holder.operation}" of hostdev process ${holder.pid}`;
    return new HostdevError(
      'HOSTDEV_BUSY',
      `could not take the hostdev state lock ${this.path} for "${operationName}" within ${timeoutMs} ms: ${who} holds it`,
      {
        hint:
          holder === null
            ? 'Wait for the other hostdev command (or `hostdev watch`) to finish and retry; `ps -C node -f | grep hostdev` ' +
              'finds it. The lock is released when that process exits or dies.'
            : `Wait for "${holder.operation}" to finish and retry; \`ps -f -p ${holder.pid}\` shows the process. It is ` +
              'part-way through its sysfs writes, and one can block for as long as a VM holds the device (dmesg says so). ' +
              'The lock is released when that process exits or dies.',
        details: { path: this.path, operation: operationName, waitedMs, holder },
      },
    );
  }

  /** A read transaction holds a SHARED lock on the waiting room until it ends. */
  private enterWaitingRoom(): void {
    if (this.waiting) return;
    try {
      this.room.exec('BEGIN');
      this.room.prepare('SELECT count(*) FROM sqlite_master').get();
      this.waiting = true;
    } catch (error) {
      if (this.room.inTransaction) this.room.exec('ROLLBACK');
      if (!isBusy(error)) throw error;
      // Someone is checking the room right now; announce on the next poll.
    }
  }

  private leaveWaitingRoom(): void {
    if (!this.waiting) return;
    this.waiting = false;
    this.room.exec('COMMIT');
  }

  /** True when some process holds a SHARED lock on the waiting room, i.e. waits for the lock. */
  private othersWaiting(): boolean {
    try {
      this.room.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      if (isBusy(error)) return true;
      throw error;
    }
    this.room.exec('ROLLBACK');
    return false;
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** Whether the filesystem holding `file` has no space left for its journal. */
function noSpaceLeft(file: string): boolean {
  try {
    return statfsSync(path.dirname(file)).bavail === 0;
  } catch {
    return false;
  }
}
