import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HostdevError } from '../core/errors.js';
import { canonicalAddress } from './attributes.js';
import { BatchResults, opSpec, type BatchOp } from './batch-ops.js';
import { listFunctionNames, type FunctionListing } from './device-ops.js';
import { errnoOf } from './errno.js';
import type { SysfsLayout } from './paths.js';
import { describeReading, ReadProgress } from './read-progress.js';

export const DEFAULT_READ_TIMEOUT_MS = 15_000;

/** Enough of a chunk's head to complete the entry the previous chunk cut off (an entry is ~500 bytes). */
const BOUNDARY_BYTES = 16_384;

/** From this many functions on the native reader forks a helper: below, it costs more than it saves. */
const FUNCTIONS_FOR_TWO_JOBS = 512;

/**
 * A file beside this module in dist/, or in dist/ when this module runs from src/ (tests) or from
 * the benchmarks' build (dist-check/src/).
 */
function built(relative: string): string | null {
  const candidates = [`../${relative}`, `../../dist/${relative}`, `../../../dist/${relative}`].map((at) => new URL(at, import.meta.url));
  for (const candidate of candidates) {
    const file = fileURLToPath(candidate);
    if (existsSync(file)) return file;
  }
  return null;
}

interface ReaderCommand {
  readonly file: string;
  readonly args: string[];
  readonly entries: readonly string[];
  readonly native: boolean;
}

/**
 * The reader processes and the entries each gets: the native program `native` (one process; on a
 * large host it forks a helper for half the entries), else the same ops in Node.js children (two
 * side by side on a large host).
 */
function readerCommands(ops: readonly BatchOp[], entries: readonly string[], native: string | null, eachEntry: boolean): ReaderCommand[] {
  const specs = ops.map(opSpec);
  // Entry by entry, one process: then the entry whose results do not come is the one held up.
  const large = !eachEntry && entries.length >= FUNCTIONS_FOR_TWO_JOBS;
  if (native !== null) {
    return [{ file: native, args: [...(eachEntry ? ['-f'] : []), ...(large ? ['-j', '2'] : []), '-p', ...specs], entries, native: true }];
  }
  const script = built('sysfs/batch-child.js');
  if (script === null) throw new Error('hostdev is not built: neither dist/native/hostdev-sysfs-batch nor dist/sysfs/batch-child.js exists');
  const halves = large ? [entries.slice(0, entries.length >> 1), entries.slice(entries.length >> 1)] : [entries];
  return halves.map((half) => ({
    file: process.execPath,
    args: [script, ...(eachEntry ? ['--flush'] : []), '--progress', ...specs],
    entries: half,
    native: false,
  }));
}

/** No results came for this long: a read the kernel holds up (see BatchReader.forEach's `stallMs`). */
export class ReaderStall extends Error {
  override readonly name = 'ReaderStall';
}

/** native/sysfs-batch.c as built into dist/native, unless HOSTDEV_BATCH_READER=node asks for the Node.js reader. */
function builtNativeReader(): string | null {
  return process.env['HOSTDEV_BATCH_READER'] === 'node' ? null : built('native/hostdev-sysfs-batch');
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

/** The ELF e_machine of the architectures Node.js runs on. */
const ELF_MACHINE: Partial<Record<string, number>> = {
  ia32: 3,
  arm: 40,
  ppc64: 21,
  s390x: 22,
  x64: 62,
  arm64: 183,
  riscv64: 243,
  loong64: 258,
};

/**
 * Why `file` cannot run on this machine, or null when it can as far as its ELF header tells: a
 * dist/ copied from another architecture (or a damaged build) would otherwise be handed to
 * /bin/sh by the spawn, which fails with a syntax error instead of ENOEXEC.
 */
export function nativeReaderMismatch(file: string): string | null {
  const header = Buffer.alloc(20);
  let length = 0;
  try {
    const fd = openSync(file, 'r');
    try {
      length = readSync(fd, header, 0, header.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    return `cannot read it: ${errnoOf(error)}`;
  }
  if (length < header.length || header.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF executable';
  const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
  const expected = ELF_MACHINE[process.arch];
  if (expected !== undefined && machine !== expected) return `built for another machine (ELF machine ${machine}, this is ${process.arch})`;
  return null;
}

function fallbackNote(file: string, why: string): string {
  return (
    `the native sysfs reader ${file} cannot run here (${why}); the slower Node.js reader reads instead. ` +
    'Rebuild hostdev on this machine (npm run build) to get it back.'
  );
}

/**
 * The command of a reader that serves many reads (native -s, or the Node.js reader's --serve):
 * the native program when it can run here, else the Node.js reader.
 */
export function servingCommand(ops: readonly BatchOp[]): { readonly file: string; readonly args: readonly string[] } {
  const native = builtNativeReader();
  const specs = ops.map(opSpec);
  if (native !== null && executable(native) && nativeReaderMismatch(native) === null) return { file: native, args: ['-s', ...specs] };
  const script = built('sysfs/batch-child.js');
  if (script === null) throw new Error('hostdev is not built: neither dist/native/hostdev-sysfs-batch nor dist/sysfs/batch-child.js exists');
  return { file: process.execPath, args: [script, '--serve', ...specs] };
}

/** A reader's environment: NODE_EXTRA_CA_CERTS alone costs a Node.js start 40 ms, and a reader opens no TLS. */
export function readerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_EXTRA_CA_CERTS'];
  return env;
}

/** Visits one function's results: `ops` from `base` on. */
type VisitFunction = (entry: string, results: BatchResults, base: number) => void;

/** The reader process, the functions it was given, and its output made sense of as it comes. */
class ReaderProcess {
  private readonly child: ChildProcess;
  readonly entries: readonly string[];
  /** Which file the reader reads now (file descriptor 3 of the reader). */
  readonly progress: ReadProgress;
  private rest: Buffer = Buffer.alloc(0);
  private err = '';
  private readonly ready: Array<{ results: BatchResults; first: number; count: number }> = [];
  private decoded = 0;
  /** Entries handed to the visitor so far. */
  visited = 0;
  failure: Error | null = null;
  closed = false;
  onChange: (() => void) | null = null;

  /** The program could not be started at all (ENOENT for a missing ELF interpreter, EACCES, ...). */
  spawnFailed = false;

  constructor(
    readonly command: ReaderCommand,
    cwd: string,
    private readonly width: number,
  ) {
    this.entries = command.entries;
    this.progress = new ReadProgress(cwd);
    try {
      this.child = spawn(command.file, command.args, { cwd, env: readerEnv(), stdio: ['pipe', 'pipe', 'pipe', this.progress.fd] });
    } catch (error) {
      this.progress.close();
      throw error;
    }
    this.child.stdout!.on('data', (chunk: Buffer) => this.take(chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.err += chunk));
    this.child.on('error', (error) => this.fail(error));
    this.child.on('close', (code) => this.close(code));
    // A reader that dies early closes its stdin under us: its exit tells why, not this.
    this.child.stdin!.on('error', () => {});
    this.child.stdin!.end(`${this.entries.join('\0')}\0`, 'latin1');
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
    this.progress.close();
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
    this.progress.close();
    if (code !== 0) this.failure ??= new Error(`the sysfs reader exited with ${code}: ${this.err.trim()}`);
    else if (this.decoded !== this.entries.length || this.rest.length > 0) {
      this.failure ??= new Error(`the sysfs reader gave ${this.decoded} of ${this.entries.length} functions and ${this.rest.length} bytes more`);
    }
    this.onChange?.();
  }

  private fail(error: Error): void {
    if ((error as NodeJS.ErrnoException).syscall?.startsWith('spawn') === true) this.spawnFailed = true;
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
  /** What the caller should tell the user about how the reads were done (a native reader that cannot run). */
  readonly notes: string[] = [];
  private readonly ops: readonly BatchOp[];
  private readonly cwd: string;
  /** The functions it reads, in the order their results come. */
  readonly entries: readonly string[];
  /** Results come entry by entry from one process: a stall is in the first entry not visited. */
  readonly entryByEntry: boolean;
  /** In entry order: each has a run of the sorted entries. */
  private readers: ReaderProcess[] = [];
  /** What the readers call when they have something new (forEach's pump, while it runs). */
  private onChange: (() => void) | null = null;

  /**
   * `options.nativeReader`: the native program to run, null for the Node.js reader; default the built one.
   * `options.only`: read just these functions, not every listed one.
   */
  constructor(
    layout: SysfsLayout,
    ops: readonly BatchOp[],
    options: { readonly nativeReader?: string | null; readonly only?: readonly string[]; readonly entryByEntry?: boolean } = {},
  ) {

    this.root = layout.root;
    this.ops = ops;
    this.cwd = layout.pciDevicesDir;
    // Named functions are read without listing the bus: a gone one reads as gone (ENOENT), and the
    // cost of a few reads does not grow with the host.
    this.listing = options.only === undefined ? listFunctionNames(layout.pciDevicesDir) : { names: [...new Set(options.only)] };
    this.entries = 'names' in this.listing ? this.listing.names.filter((name) => canonicalAddress(name) !== null).sort() : [];
    // Below the size where two jobs pay, results come entry by entry anyway: a held read is then
    // found on the first stall (a few hundred more writes cost nothing).
    this.entryByEntry = options.entryByEntry ?? this.entries.length < FUNCTIONS_FOR_TWO_JOBS;
    if (this.entries.length === 0) return;
    this.startReaders(this.usable(options.nativeReader === undefined ? builtNativeReader() : options.nativeReader));
  }

  /** The native program when it can run here; null (with a note when it exists but cannot) for the Node.js reader. */
  private usable(native: string | null): string | null {
    if (native === null || !executable(native)) return null;
    const mismatch = nativeReaderMismatch(native);
    if (mismatch === null) return native;
    this.notes.push(fallbackNote(native, mismatch));
    return null;
  }

  private startReaders(native: string | null): void {
    this.readers = readerCommands(this.ops, this.entries, native, this.entryByEntry).map(
      (command) => new ReaderProcess(command, this.cwd, this.ops.length),
    );
    for (const reader of this.readers) reader.onChange = this.onChange;
  }

  /** A native reader that could not even be started gives way to the Node.js reader, once. */
  private fallBack(failed: ReaderProcess): boolean {
    if (!failed.spawnFailed || !failed.command.native) return false;
    this.cancel();
    for (const reader of this.readers) reader.onChange = null;
    this.notes.push(fallbackNote(failed.command.file, failed.failure?.message ?? 'it did not start'));
    this.startReaders(null);
    return true;
  }

  /**
   * Hands every listed function's results to `visit`, in address order, as they come; settles
   * when all came, at most `timeoutMs` from now. With `stallMs`, a wait of that long with no new
   * results ends it with ReaderStall (the readers are left running: cancel them). `boundMs`: the
   * whole bound the timeout error names, when this call has only what is left of it.
   */
  forEach(layout: SysfsLayout, timeoutMs: number, visit: VisitFunction, stallMs?: number, boundMs = timeoutMs): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let progress = Date.now();
      const counted = (): number => this.readers.reduce((sum, reader) => sum + reader.visited, 0);
      let seen = 0;
      const settle = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (watchdog !== null) clearInterval(watchdog);
        this.onChange = null;
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
          if (failed !== undefined) {
            if (this.fallBack(failed)) return pump();
            return settle(failed.failure);
          }
          for (const reader of this.readers) {
            reader.visit(visit);
            if (!reader.done) return; // the next reader's entries come after this one's
          }
          settle(null);
        } catch (error) {
          settle(error as Error);
        } finally {
          const now = counted();
          if (now !== seen) {
            seen = now;
            progress = Date.now();
          }
        }
      };
      // The files the readers that are not done were reading when the bound hit name the blocked one.
      const timer = setTimeout(() => {
        const reading = this.readers.filter((reader) => !reader.done).map((reader) => reader.progress.reading());
        void Promise.all(reading).then((files) => settle(timeoutError(layout, boundMs, files.flat())));
      }, timeoutMs);
      // A late timer after a busy event loop is no stall: the output that came meanwhile is taken
      // (setImmediate runs after the I/O callbacks) before the wait is judged.
      const watchdog =
        stallMs === undefined
          ? null
          : setInterval(() => {
              if (Date.now() - progress < stallMs) return;
              setImmediate(() => {
                if (Date.now() - progress >= stallMs) settle(new ReaderStall(`no results for ${stallMs} ms`));
              });
            }, Math.max(10, stallMs >> 2));
      this.onChange = pump;
      for (const reader of this.readers) reader.onChange = pump;
      pump();
    });
  }

  /** Stops the readers (those still running) and lets this process exit without them. */
  cancel(): void {
    for (const reader of this.readers) reader.cancel();
  }
}

/** `files`: what the readers were reading when the bound hit (none known: the message names /sys). */
function timeoutError(layout: SysfsLayout, timeoutMs: number, files: readonly string[]): HostdevError {
  const what = files.length === 0 ? `the PCI devices under ${layout.sys}` : describeReading(files);
  return new HostdevError('HOSTDEV_TIMEOUT', `reading ${what} did not finish within ${timeoutMs} ms: a sysfs file is blocked in the kernel`, {
    hint:
      'This happens while a VF removal waits for a VM to let go of the VF (`dmesg` shows "Relaying device ' +
      'request to user"): stop or detach that VM\'s device, then try again. HOSTDEV_READ_TIMEOUT_MS sets the bound.',
    details: { path: files[0] ?? layout.sys, files, timeoutMs },
  });
}
