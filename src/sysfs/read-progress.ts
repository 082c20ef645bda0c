import { closeSync, ftruncateSync, openSync, read, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Where a reader process is: the file it reads now. A read the kernel holds up (D state) holds the
 * reader's only thread with it, so it cannot say so when asked; instead it notes every file in a
 * shared, unlinked file before reading it (a store into a mapping in native/sysfs-batch.c, a pwrite
 * in the Node.js readers), and when the bound hits, the parent reads the notes and names the file.
 *
 * Layout: SLOTS slots of SLOT_BYTES, one per reading job (the native reader's forked helper has the
 * second); a slot is a 32-bit little-endian length, then the path (relative to the reader's working
 * directory, or absolute); length 0 when the job is not reading.
 */
export const PROGRESS_SLOTS = 2;
export const PROGRESS_SLOT_BYTES = 4096;

/** The parent's side: the file a reader is given (as a file descriptor) and what it noted last. */
export class ReadProgress {
  readonly fd: number;
  private closed = false;
  /** Reads in flight: the descriptor is closed after them, never under them (a new file could take its number). */
  private reads = 0;

  constructor(private readonly cwd: string) {
    const file = path.join(os.tmpdir(), `hostdev-read-progress-${process.pid}-${Math.random().toString(36).slice(2)}`);
    this.fd = openSync(file, 'wx+', 0o600);
    unlinkSync(file);
    ftruncateSync(this.fd, PROGRESS_SLOTS * PROGRESS_SLOT_BYTES);
  }

  /** The files the reader's jobs are reading now (absolute paths), in job order. */
  async reading(): Promise<string[]> {
    if (this.closed) return [];
    const buffer = Buffer.alloc(PROGRESS_SLOTS * PROGRESS_SLOT_BYTES);
    this.reads += 1;
    const bytes = await new Promise<number>((resolve) => read(this.fd, buffer, 0, buffer.length, 0, (error, n) => resolve(error ? 0 : n)));
    this.reads -= 1;
    if (this.closed && this.reads === 0) closeSync(this.fd);
    const files: string[] = [];
    for (let slot = 0; slot < PROGRESS_SLOTS; slot++) {
      const at = slot * PROGRESS_SLOT_BYTES;
      if (at + 4 > bytes) break;
      const length = buffer.readUInt32LE(at);
      if (length === 0 || length > PROGRESS_SLOT_BYTES - 4) continue;
      files.push(path.resolve(this.cwd, buffer.toString('utf8', at + 4, at + 4 + length)));
    }
    return files;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reads === 0) closeSync(this.fd);
  }
}

/** The reader's side (Node.js readers): notes each file before it is read. */
export class ProgressNotes {
  private readonly buffer = Buffer.alloc(PROGRESS_SLOT_BYTES);

  constructor(
    private readonly fd: number,
    private readonly slot = 0,
  ) {}

  note(file: string): void {
    const length = this.buffer.write(file, 4, PROGRESS_SLOT_BYTES - 4, 'utf8');
    this.buffer.writeUInt32LE(length, 0);
    this.write(4 + length);
  }

  /** Not reading anything: done. */
  clear(): void {
    this.buffer.writeUInt32LE(0, 0);
    this.write(4);
  }

  private write(length: number): void {
    try {
      writeSync(this.fd, this.buffer, 0, length, this.slot * PROGRESS_SLOT_BYTES);
    } catch {
      // Notes are for the error message only: a reader goes on without them.
    }
  }
}

/** What to say of the files a reader was reading when its bound hit. */
export function describeReading(files: readonly string[]): string {
  return files.join(' and ');
}
