import Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { HostdevError } from '../core/errors.js';

/**
 * The cross-process lock: an EXCLUSIVE transaction on a small database of its own (no writes
 * ever happen in it). SQLite takes it with a POSIX file lock, which the kernel drops when the
 * holding process dies, SIGKILL included: a crashed hostdev never leaves a stale lock, and there
 * is no lock file with a timer to go stale. The wait is a polling loop with jitter instead of
 * SQLite's busy handler, so a waiting daemon keeps its event loop and waiters take turns.
 */
export class ProcessLock {
  readonly path: string;
  private readonly db: Database.Database;
  private held = false;

  constructor(path: string) {
    this.path = path;
    this.db = new Database(path, { timeout: 0 });
  }

  get isHeld(): boolean {
    return this.held;
  }

  /** Waits up to `timeoutMs` for the lock; HOSTDEV_TIMEOUT names the lock when it stays taken. */
  async acquire(timeoutMs: number, operationName: string): Promise<void> {
    const started = Date.now();
    let pause = 1;
    for (;;) {
      if (this.tryAcquire()) return;
      const waited = Date.now() - started;
      if (waited >= timeoutMs) {
        throw new HostdevError(
          'HOSTDEV_TIMEOUT',
          `could not take the hostdev state lock ${this.path} for "${operationName}" within ${timeoutMs} ms: ` +
            'another hostdev process is running and holds it',
          {
            hint:
              'Wait for the other hostdev command (or the daemon) to finish and retry; ' +
              '`ps -C node -f | grep hostdev` shows it. The lock is released when that process exits or dies.',
            details: { path: this.path, operation: operationName, waitedMs: waited },
          },
        );
      }
      await sleep(Math.min(timeoutMs - waited, pause + Math.random() * pause));
      pause = Math.min(pause * 2, 16);
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
        hint: 'Check that the state directory is on a local filesystem with working file locks and is writable.',
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
  }

  close(): void {
    this.release();
    this.db.close();
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
