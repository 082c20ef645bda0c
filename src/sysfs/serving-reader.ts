import { spawn, type ChildProcess } from 'node:child_process';
import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import { HostdevError } from '../core/errors.js';
import { BatchResults } from './batch-ops.js';
import { readerEnv, servingCommand } from './batch-reader.js';
import { DEVICE_OP_LIST } from './device-ops.js';
import type { SysfsLayout } from './paths.js';
import { DeviceReadContext, interpretDevice } from './read-device.js';

/** One read in flight: its entries, what came for them, and how it ends. */
interface Pending {
  readonly entries: readonly PciAddress[];
  readonly found: Map<PciAddress, PciDevice | null>;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/**
 * One long-lived reader process that serves every device read of a service (native -s, or the
 * Node.js reader's --serve): an operation's reads cost a round trip over a pipe instead of a
 * process start. The reads stay out of this process (a read the kernel holds up never blocks it)
 * and bounded: a read that does not finish in time kills the reader (abandoned, as a process stuck
 * in the kernel may not die at once) and fails; the next read starts a new one.
 */
export class ServingReader {
  private child: ChildProcess | null = null;
  private rest: Buffer = Buffer.alloc(0);
  private pending: Pending | null = null;
  /** Reads wait for the one before them: the reader answers in the order it was asked. */
  private queue: Promise<void> = Promise.resolve();
  private readonly width = DEVICE_OP_LIST.length;
  private readonly context: DeviceReadContext;
  private closed = false;

  constructor(private readonly layout: SysfsLayout) {
    this.context = new DeviceReadContext(layout, null, () => {}, true);
  }

  /**
   * Reads the devices; settles when all came, or rejects with `timedOut(pending)` at `timeoutMs`.
   * `onProgress` hears which are still pending (the caller's slow-read ticker).
   */
  read(
    addresses: readonly PciAddress[],
    timeoutMs: number,
    timedOut: (pending: readonly PciAddress[], cause: HostdevError) => Error,
  ): { readonly found: Map<PciAddress, PciDevice | null>; readonly done: Promise<void> } {
    const found = new Map<PciAddress, PciDevice | null>();
    const entries = [...new Set(addresses)];
    const done = this.queue.then(() => this.exchange(entries, found, timeoutMs, timedOut));
    this.queue = done.catch(() => undefined);
    return { found, done };
  }

  /** The reader process now (null: none yet, or the last one was abandoned). */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Ends the reader (its stdin closes: it exits when it has nothing left to read). */
  close(): void {
    this.closed = true;
    this.child?.stdin?.end();
    this.child?.unref();
    this.child = null;
  }

  private exchange(
    entries: readonly PciAddress[],
    found: Map<PciAddress, PciDevice | null>,
    timeoutMs: number,
    timedOut: (pending: readonly PciAddress[], cause: HostdevError) => Error,
  ): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('the sysfs reader of this service is closed'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.abandon();
        const left = entries.filter((address) => !found.has(address));
        const cause = new HostdevError('HOSTDEV_TIMEOUT', `the sysfs reader did not answer within ${timeoutMs} ms`, {
          hint: 'The kernel holds a file the reader reads; see the message of the read that waited.',
        });
        finish(timedOut(left, cause));
      }, timeoutMs);
      const finish = (error: Error | null): void => {
        clearTimeout(timer);
        this.pending = null;
        if (error === null) resolve();
        else reject(error);
      };
      this.pending = { entries, found, resolve: () => finish(null), reject: (error) => finish(error) };
      const child = this.started();
      child.stdin!.write(`${entries.join('\0')}\0`, 'latin1');
    });
  }

  private started(): ChildProcess {
    if (this.child !== null) return this.child;
    const command = servingCommand(DEVICE_OP_LIST);
    const child = spawn(command.file, [...command.args], { cwd: this.layout.pciDevicesDir, env: readerEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let said = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      if (this.child === child) this.take(chunk);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (said += chunk));
    child.stdin!.on('error', () => {});
    const ended = (why: string): void => {
      if (this.child !== child) return;
      this.child = null;
      this.rest = Buffer.alloc(0);
      this.pending?.reject(new Error(`the sysfs reader ${why}${said.trim() === '' ? '' : `: ${said.trim()}`}`));
    };
    child.on('error', (error) => ended(`could not run: ${error.message}`));
    child.on('close', (code) => ended(`exited with ${code}`));
    // Between reads the reader keeps nobody waiting: a command ends when its work is done.
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
    this.child = child;
    this.rest = Buffer.alloc(0);
    return child;
  }

  private take(chunk: Buffer): void {
    const pending = this.pending;
    const wire = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk]);
    if (pending === null) {
      this.rest = Buffer.alloc(0);
      return;
    }
    const left = pending.entries.length - pending.found.size;
    const { results, entries, bytes } = BatchResults.decodeEntries(wire, this.width, left);
    for (let i = 0; i < entries; i++) {
      const address = pending.entries[pending.found.size]!;
      pending.found.set(address, interpretDevice(this.context, address, results, i * this.width));
    }
    this.rest = wire.subarray(bytes);
    if (pending.found.size === pending.entries.length) pending.resolve();
  }

  /** A reader stuck in the kernel is killed and left (it dies when the kernel lets go). */
  private abandon(): void {
    const child = this.child;
    this.child = null;
    this.rest = Buffer.alloc(0);
    if (child === null) return;
    child.kill('SIGKILL');
    child.stdin?.destroy();
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
}
