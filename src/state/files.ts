import fs from 'node:fs';
import { HostdevError } from '../core/errors.js';

/** The database's name in the state directory. */
export const DB_FILE = 'state.db';

/** The state directory and the files in it are root's business only. */
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

function stateError(message: string, hint: string, path: string, cause?: unknown): HostdevError {
  return new HostdevError('HOSTDEV_STATE', message, { hint, details: { path }, ...(cause === undefined ? {} : { cause }) });
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/**
 * Creates the state directory (0700, parents too) or checks an existing one and tightens a
 * looser mode. Returns a warning for every mode it had to fix.
 */
export function ensureStateDir(dir: string): string[] {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
    throw stateError(`the state directory ${dir} is not a directory`, 'Move it aside or choose another --state-dir.', dir);
  }
  try {
    fs.mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  } catch (error) {
    throw stateError(
      `cannot create the state directory ${dir}: ${(error as Error).message}`,
      'Run hostdev as root, or point --state-dir (HOSTDEV_STATE_DIR) at a writable directory.',
      dir,
      error,
    );
  }
  return fixMode(dir, fs.statSync(dir).mode, DIR_MODE);
}

/** Creates `path` empty with mode 0600 if missing; tightens the mode of an existing file. */
export function ensureFileMode(path: string): string[] {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, FILE_MODE);
  } catch (error) {
    throw stateError(
      `cannot open ${path}: ${(error as Error).message}`,
      'Run hostdev as root, or point --state-dir (HOSTDEV_STATE_DIR) at a writable directory.',
      path,
      error,
    );
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw stateError(`${path} is not a regular file`, 'Move it aside.', path);
    return fixMode(path, stat.mode, FILE_MODE, fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Tightens the mode of a file that may or may not exist (SQLite's -wal and -shm companions). */
export function tightenIfExists(path: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch {
    return [];
  }
  return stat.isFile() ? fixMode(path, stat.mode, FILE_MODE) : [];
}

function fixMode(path: string, mode: number, wanted: number, fd?: number): string[] {
  if ((mode & 0o777) === wanted) return [];
  try {
    if (fd === undefined) fs.chmodSync(path, wanted);
    else fs.fchmodSync(fd, wanted);
  } catch (error) {
    // A read-only filesystem (EROFS), an immutable file (EPERM): the state cannot be kept here.
    throw stateError(
      `cannot set the mode of ${path} to ${octal(wanted)}: ${(error as Error).message}`,
      'The state directory must be writable by root: check that its filesystem is mounted read-write and the file is not immutable (lsattr), or point --state-dir elsewhere.',
      path,
      error,
    );
  }
  return [`${path} had mode ${octal(mode)}; set it to ${octal(wanted)}`];
}

/**
 * Whether the database file is there: 'absent', or 'file' for a regular file (through a link
 * that leads to one). A dangling link or anything but a regular file (a FIFO, a socket, a
 * directory) is refused: creating a database through it, or reading a FIFO as an empty file,
 * would be wrong.
 */
export function databaseFile(path: string): 'absent' | 'file' {
  let link: fs.Stats;
  try {
    link = fs.lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw stateError(`cannot look at ${path}: ${(error as Error).message}`, 'Check the state directory.', path, error);
  }
  let stat: fs.Stats;
  try {
    stat = fs.statSync(path);
  } catch (error) {
    if (link.isSymbolicLink()) {
      throw stateError(
        `the hostdev state database ${path} is a link to ${fs.readlinkSync(path)}, which does not exist`,
        'Restore the database the link named (a backup, another mount), or remove the link to start with empty tables; then check `hostdev list` for devices left on vfio-pci.',
        path,
        error,
      );
    }
    throw stateError(`cannot look at ${path}: ${(error as Error).message}`, 'Check the state directory.', path, error);
  }
  if (!stat.isFile()) {
    const kind = stat.isFIFO() ? 'a FIFO' : stat.isSocket() ? 'a socket' : stat.isDirectory() ? 'a directory' : 'not a regular file';
    throw stateError(`the hostdev state database ${path} is ${kind}, not a database file`, 'Move it aside and restore the database from a backup.', path);
  }
  return 'file';
}

/** Flushes a directory entry change (a new file linked in) to disk. */
export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
