import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostdevError } from '../core/errors.js';
import { snapshotOf, type Snapshot } from '../core/events.js';
import { describeReading, ReadProgress } from '../sysfs/read-progress.js';
import type { SnapshotReply } from './snapshot-worker.js';

/** Takes a snapshot of the host's PCI devices. */
export interface SnapshotReader {
  read(): Promise<Snapshot>;
  close(): Promise<void>;
}

/** The compiled worker: beside this file in dist/, or dist/ when running from src/ (tests). */
function workerScript(): string {
  const beside = fileURLToPath(new URL('./snapshot-worker.js', import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL('../../dist/events/snapshot-worker.js', import.meta.url));
}

/**
 * Reads snapshots in a long-lived child process (one fork, many reads), each read bounded by
 * `timeoutMs`. A child that does not answer in time is abandoned (killed, unreferenced: a child in
 * D state dies only when the kernel lets go) and the read fails with HOSTDEV_TIMEOUT; while it
 * has not exited, further reads fail at once instead of piling up blocked children.
 */
export class ChildSnapshotReader implements SnapshotReader {
  private child: ChildProcess | null = null;
  /** The file the child reads now (its file descriptor 4). */
  private readonly progress = new WeakMap<ChildProcess, ReadProgress>();
  private abandoned: ChildProcess | null = null;
  private nextId = 1;
  private pending = new Map<number, { resolve: (s: Snapshot) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly root: string,
    private readonly timeoutMs = 5_000,
  ) {}

  private spawn(): ChildProcess {
    const progress = new ReadProgress(this.root);
    const child = fork(workerScript(), [this.root], { stdio: ['ignore', 'ignore', 'inherit', 'ipc', progress.fd], serialization: 'json' });
    this.progress.set(child, progress);
    child.on('message', (reply: SnapshotReply) => this.settle(reply));
    child.on('exit', () => {
      progress.close();
      if (this.child === child) {
        this.child = null;
        this.failAll(new Error('the sysfs snapshot process exited'));
      }
      if (this.abandoned === child) this.abandoned = null;
    });
    child.on('error', (error) => this.failAll(error));
    return child;
  }

  private settle(reply: SnapshotReply): void {
    const waiter = this.pending.get(reply.id);
    if (waiter === undefined) return;
    this.pending.delete(reply.id);
    clearTimeout(waiter.timer);
    if ('error' in reply) waiter.reject(new Error(reply.error));
    else waiter.resolve(snapshotOf(reply.devices));
  }

  private failAll(error: Error): void {
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
      this.pending.delete(id);
    }
  }

  private abandon(child: ChildProcess): void {
    if (this.child === child) this.child = null;
    this.abandoned = child;
    child.kill('SIGKILL');
    child.unref();
    child.channel?.unref();
  }

  read(): Promise<Snapshot> {
    if (this.abandoned !== null) {
      return Promise.reject(
        new HostdevError('HOSTDEV_TIMEOUT', 'an earlier sysfs read is still blocked in the kernel; not reading again yet', {
          hint: 'A device removal is probably waiting for a VM to let go of a VF (see `dmesg`: "Relaying device request to user").',
        }),
      );
    }
    const child = (this.child ??= this.spawn());
    const id = this.nextId++;
    return new Promise<Snapshot>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const progress = this.progress.get(child);
        this.abandon(child);
        // What the child was reading when the bound hit: the file the kernel holds.
        void (progress?.reading() ?? Promise.resolve([])).then((files) => {
          progress?.close();
          const what = files.length === 0 ? 'sysfs' : describeReading(files);
          reject(
            new HostdevError('HOSTDEV_TIMEOUT', `reading ${what} did not finish within ${this.timeoutMs} ms; the reading process was abandoned`, {
              hint: 'A sysfs file is blocked (D state), typically sriov_numvfs while a VM still holds a VF.',
              details: { path: files[0] ?? this.root, files, timeoutMs: this.timeoutMs },
            }),
          );
        });
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      child.send({ id });
    });
  }

  async close(): Promise<void> {
    this.failAll(new Error('snapshot reader closed'));
    const child = this.child;
    this.child = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.disconnect();
        // A child blocked in the kernel would not see the disconnect.
        setTimeout(() => {
          child.kill('SIGKILL');
          child.unref();
          resolve();
        }, 1_000).unref();
      });
    }
  }
}
