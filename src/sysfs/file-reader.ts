import { closeSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';

/** Why a read failed: the errno name ("ENOENT", "EACCES", "EISDIR", ...). */
export interface ReadFailure {
  readonly errno: string;
}

export type ReadResult<T> = { readonly ok: true; readonly value: T } | ({ readonly ok: false } & ReadFailure);

function failure(error: unknown): { ok: false; errno: string } {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return { ok: false, errno: typeof code === 'string' ? code : 'EIO' };
}

/**
 * Synchronous small-file reads with one scratch buffer: open + read + close, no fstat, no
 * exceptions escaping. A sysfs attribute is at most one page, so one read returns all of it.
 * One instance per inventory read; nothing is shared between calls.
 */
export class FileReader {
  private readonly buffer = Buffer.allocUnsafe(4096);

  /** Reads a text attribute (first 4 KiB), without its trailing newline. */
  text(path: string): ReadResult<string> {
    const bytes = this.fill(path, this.buffer.length);
    if (!bytes.ok) return bytes;
    let end = bytes.value;
    while (end > 0 && (this.buffer[end - 1] === 0x0a || this.buffer[end - 1] === 0x00)) end--;
    return { ok: true, value: this.buffer.toString('latin1', 0, end) };
  }

  /**
   * Opens a binary file for a few positioned reads. `readAt` returns a view that is valid until
   * its next call; a failed read returns no bytes.
   */
  binary<T>(path: string, use: (readAt: (offset: number, length: number) => Uint8Array) => T): ReadResult<T> {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      return failure(error);
    }
    const readAt = (offset: number, length: number): Uint8Array => {
      try {
        const n = readSync(fd, this.buffer, 0, Math.min(length, this.buffer.length), offset);
        return this.buffer.subarray(0, n);
      } catch {
        return this.buffer.subarray(0, 0);
      }
    };
    try {
      return { ok: true, value: use(readAt) };
    } finally {
      closeSync(fd);
    }
  }

  link(path: string): ReadResult<string> {
    try {
      return { ok: true, value: readlinkSync(path) };
    } catch (error) {
      return failure(error);
    }
  }

  names(path: string): ReadResult<string[]> {
    try {
      return { ok: true, value: readdirSync(path) };
    } catch (error) {
      return failure(error);
    }
  }

  private fill(path: string, size: number): ReadResult<number> {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      return failure(error);
    }
    try {
      // One read: sysfs hands out a whole attribute at once, and so does a small regular file.
      return { ok: true, value: readSync(fd, this.buffer, 0, size, 0) };
    } catch (error) {
      return failure(error);
    } finally {
      closeSync(fd);
    }
  }
}
