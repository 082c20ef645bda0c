import { closeSync, existsSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';

function errnoOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : 'EIO';
}

/**
 * Synchronous small-file reads with one scratch buffer: open + read + close, no fstat. A sysfs
 * attribute is at most one page, so one read returns all of it. Each method returns null on
 * failure and leaves the errno name ("ENOENT", "EACCES", "EISDIR", ...) in `errno`, so that the
 * thousands of reads of a large host allocate no result objects.
 * One instance per inventory read; nothing is shared between calls.
 */
export class FileReader {
  private readonly buffer = Buffer.allocUnsafe(4096);
  /** Why the last failed call failed. */
  errno = '';

  /** Reads a text attribute (first 4 KiB), without its trailing newline. */
  text(path: string): string | null {
    const size = this.fill(path);
    if (size < 0) return null;
    let end = size;
    while (end > 0 && (this.buffer[end - 1] === 0x0a || this.buffer[end - 1] === 0x00)) end--;
    return this.buffer.toString('latin1', 0, end);
  }

  /**
   * Opens a binary file for a few positioned reads. `readAt` returns a view that is valid until
   * its next call; a failed read returns no bytes.
   */
  binary<T>(path: string, use: (readAt: (offset: number, length: number) => Uint8Array) => T): T | null {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      this.errno = errnoOf(error);
      return null;
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
      return use(readAt);
    } finally {
      closeSync(fd);
    }
  }

  link(path: string): string | null {
    try {
      return readlinkSync(path);
    } catch (error) {
      this.errno = errnoOf(error);
      return null;
    }
  }

  /** Whether something is at `path` (links followed); no exception is created for a missing one. */
  exists(path: string): boolean {
    return existsSync(path);
  }

  names(path: string): string[] | null {
    try {
      return readdirSync(path);
    } catch (error) {
      this.errno = errnoOf(error);
      return null;
    }
  }

  /** Bytes read, or -1 on failure. */
  private fill(path: string): number {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      this.errno = errnoOf(error);
      return -1;
    }
    try {
      // One read: sysfs hands out a whole attribute at once, and so does a small regular file.
      return readSync(fd, this.buffer, 0, this.buffer.length, 0);
    } catch (error) {
      this.errno = errnoOf(error);
      return -1;
    } finally {
      closeSync(fd);
    }
  }
}
