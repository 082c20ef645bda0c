import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostdevError } from '../core/errors.js';
import { canonicalAddress } from './attributes.js';
import { BatchResults, opSpec, type BatchOp } from './batch-ops.js';
import { listFunctionNames, type FunctionListing } from './device-ops.js';
import type { SysfsLayout } from './paths.js';

export const DEFAULT_READ_TIMEOUT_MS = 15_000;

/** Enough of a chunk's head to complete the entry the previous chunk cut off (an entry is ~500 bytes). */
const BOUNDARY_BYTES = 16_384;

/** From this many functions on the native reader forks a helper: below, it costs more than it saves. */
const FUNCTIONS_FOR_TWO_JOBS = 512;

/** A file beside this module in dist/, or in dist/ when this module runs from src/ (tests). */
function built(relative: string): string | null {
  for (const candidate of [new URL(`../${relative}`, import.meta.url), new URL(`../../dist/${relative}`, import.meta.url)]) {
    const file = fileURLToPath(candidate);
    if (existsSync(file)) return file;
  }
  return null;
}

/**
 * The reader processes and the entries each gets: native/sysfs-batch.c as built into dist/native
 * (one process; on a large host it forks a helper for half the entries), else the same ops in
 * Node.js children (two side by side on a large host). HOSTDEV_BATCH_READER=node asks for those.
 */
function readerCommands(ops: readonly BatchOp[], entries: readonly string[]): Array<{ file: string; args: string[]; entries: readonly string[] }> {
  const specs = ops.map(opSpec);
  const large = entries.length >= FUNCTIONS_FOR_TWO_JOBS;
  const native = process.env['HOSTDEV_BATCH_READER'] === 'node' ? null : built('native/hostdev-sysfs-batch');
  if (native !== null && executable(native)) return [{ file: native, args: large ? ['-j', '2', ...specs] : specs, entries }];
  const script = built('sysfs/batch-child.js');
  if (script === null) throw new Error('hostdev is not built: neither dist/native/hostdev-sysfs-batch nor dist/sysfs/batch-child.js exists');
  const halves = large ? [entries.slice(0, entries.length >> 1), entries.slice(entries.length >> 1)] : [entries];
  return halves.map((half) => ({ file: process.execPath, args: [script, ...specs], entries: half }));
}

/** Whether this process may run `file` (not so on a noexec mount, for one). */
function executable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A reader's environment: NODE_EXTRA_CA_CERTS alone costs a Node.js start 40 ms, and a reader opens no TLS. */
function readerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  return env;
}

/** Visits one function's results: `ops` from `base` on. */
export type VisitFunction = (entry: string, results: BatchResults, base: number) => void;

/** The reader process, the functions it was given, and its output made sense of as it comes. */
class ReaderProcess {
  private readonly child: ChildProcess;
  private rest: Buffer = Buffer.alloc(0);
  private err = '';
  private readonly ready: Array<{ results: BatchResults; first: number; count: number }> = [];
  private decoded = 0;
  /** Entries handed to the visitor so far. */
  visited = 0;
  failure: Error | null = null;
  closed = false;
  onChange: (() => void) | null = null;

  constructor(
    command: { file: string; args: string[] },
    cwd: string,
    readonly entries: readonly string[],
    private readonly width: number,
  ) {
    this.child = spawn(command.file, command.args, { cwd, env: readerEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (chunk: Buffer) => this.take(chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.err += chunk));
    this.child.on('error', (error) => this.fail(error));
    this.child.on('close', (code) => this.close(code));
    // A reader that dies early closes its stdin under us: its exit tells why, not this.
    this.child.stdin!.on('error', () => {});
    this.child.stdin!.end(`${entries.join('\0')}\0`, 'latin1');
  }

  /** Hands the decoded entries to `visit`, in order. */
  visit(visit: VisitFunction): void {
    for (let batch = this.ready.shift(); batch !== undefined; batch = this.ready.shift()) {
      for (let i = 0; i < batch.count; i++) visit(this.entries[batch.first + i]!, batch.results, i * this.width);
      this.visited += batch.count;
    }
  }

  get done(): boolean {
    return this.closed && this.failure === null && this.visited === this.entries.length;
  }

  cancel(): void {
    if (!this.closed) this.child.kill('SIGKILL');
    this.child.stdin?.destroy();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.child.unref();
  }

  private take(chunk: Buffer): void {
    let wire = chunk;
    if (this.rest.length > 0 && this.decoded < this.entries.length) {
      // The entry the last chunk cut off is completed from this one's head: the rest of the chunk
      // is decoded where it lies, not copied (an entry longer than that head, rare, is).
      const head = Buffer.concat([this.rest, chunk.subarray(0, BOUNDARY_BYTES)]);
      const boundary = BatchResults.decodeEntries(head, this.width, 1);
      if (boundary.entries === 1) {
        this.add(boundary.results, 1);
        wire = chunk.subarray(boundary.bytes - this.rest.length);
      } else {
        wire = Buffer.concat([this.rest, chunk]);
      }
    } else if (this.rest.length > 0) {
      wire = Buffer.concat([this.rest, chunk]);
    }
    const { results, entries, bytes } = BatchResults.decodeEntries(wire, this.width, this.entries.length - this.decoded);
    if (entries > 0) this.add(results, entries);
    this.rest = wire.subarray(bytes);
    this.onChange?.();
  }

  private add(results: BatchResults, count: number): void {
    this.ready.push({ results, first: this.decoded, count });
    this.decoded += count;
  }

  private close(code: number | null): void {
    if (this.closed) return;
    this.closed = true;
    if (code !== 0) this.failure ??= new Error(`the sysfs reader exited with ${code}: ${this.err.trim()}`);
    else if (this.decoded !== this.entries.length || this.rest.length > 0) {
      this.failure ??= new Error(`the sysfs reader gave ${this.decoded} of ${this.entries.length} functions and ${this.rest.length} bytes more`);
    }
    this.onChange?.();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.closed = true;
    this.onChange?.();
  }
}

/**
 * Does `ops` for every function under ROOT/sys/bus/pci/devices in reader processes, started at
 * once and waited for with a bound. A command run while the kernel holds up one of those reads
 * fails with HOSTDEV_TIMEOUT instead of hanging, and can exit (a process whose own thread is stuck
 * in such a read cannot): the readers are killed and abandoned, not waited for.
 */
export class BatchReader {
  readonly root: string;
  /** What the readers were given: the listing of ROOT/sys/bus/pci/devices, once. */
  readonly listing: FunctionListing;
  /** In entry order: each has a run of the sorted entries. */
  private readonly readers: ReaderProcess[] = [];

  constructor(layout: SysfsLayout, ops: readonly BatchOp[]) {
    this.root = layout.root;
    this.listing = listFunctionNames(layout.pciDevicesDir);
    const entries = 'names' in this.listing ? this.listing.names.filter((name) => canonicalAddress(name) !== null).sort() : [];
    if (entries.length === 0) return;
    for (const command of readerCommands(ops, entries)) {
      this.readers.push(new ReaderProcess(command, layout.pciDevicesDir, command.entries, ops.length));
    }
  }

  /**
   * Hands every listed function's results to `visit`, in address order, as they come; settles
   * when all came, at most `timeoutMs` from now.
   */
  forEach(layout: SysfsLayout, timeoutMs: number, visit: VisitFunction): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        for (const reader of this.readers) reader.onChange = null;
        if (error === null) resolve();
        else {
          this.cancel();
          reject(error);
        }
      };
      const pump = (): void => {
        try {
          const failed = this.readers.find((reader) => reader.failure !== null);
          if (failed !== undefined) return settle(failed.failure);
          for (const reader of this.readers) {
            reader.visit(visit);
            if (!reader.done) return; // the next reader's entries come after this one's
          }
          settle(null);
        } catch (error) {
          settle(error as Error);
        }
      };
      const timer = setTimeout(() => settle(timeoutError(layout, timeoutMs)), timeoutMs);
      for (const reader of this.readers) reader.onChange = pump;
      pump();
    });
  }

  /** Stops the readers (those still running) and lets this process exit without them. */
  cancel(): void {
    for (const reader of this.readers) reader.cancel();
  }
}

function timeoutError(layout: SysfsLayout, timeoutMs: number): HostdevError {
  return new HostdevError(
    'HOSTDEV_TIMEOUT',
    `reading the PCI devices under ${layout.sys} took more than ${timeoutMs} ms: a sysfs file is blocked in the kernel`,
    {
      hint:
        'This happens while a VF removal waits for a VM to let go of the VF (`dmesg` shows "Relaying device ' +
        'request to user"): stop or detach that VM\'s device, then try again. HOSTDEV_READ_TIMEOUT_MS sets the bound.',
      details: { path: layout.sys, timeoutMs },
    },
  );
}
