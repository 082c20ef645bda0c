import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { SysfsLayout } from './paths.js';
import { errnoOf } from './errno.js';
import { OutsideRootError, resolveInside } from '../platform/contain.js';
import { errnoFromText } from '../platform/errno-names.js';

/**
 * The one port through which hostdev changes the host. Production writes files under the
 * root; tests and `--simulate` plug in the simulated kernel, which reacts as Linux does.
 */
export interface KernelPort {
  /** Writes `value` to a sysfs attribute named by its host path ("/sys/..."). */
  write(hostPath: string, value: string): Promise<void>;
  /** Makes a driver available (modprobe on a real host). */
  loadModule(name: string): Promise<void>;
}

/**
 * A write the kernel refused, with the errno name it returned (EBUSY, ENODEV, ...). A write
 * refused because a link on its path leads out of the root has errno EXDEV and `outside` set.
 */
export class KernelWriteError extends Error {
  override readonly name = 'KernelWriteError';
  readonly outside: OutsideRootError | null;
  constructor(
    readonly hostPath: string,
    readonly value: string,
    readonly errno: string,
    options?: { cause?: unknown },
  ) {
    const outside = options?.cause instanceof OutsideRootError ? options.cause : null;
    super(
      outside === null ? `write of "${value.trim()}" to ${hostPath} failed: ${errno}` : `write of "${value.trim()}" to ${hostPath} refused: ${outside.message}`,
      options,
    );
    this.outside = outside;
  }

  /** The refusal of a write whose path (or a file it would change) leads out of the root. */
  static outsideRoot(hostPath: string, value: string, cause: OutsideRootError): KernelWriteError {
    return new KernelWriteError(hostPath, value, 'EXDEV', { cause });
  }
}

/**
 * A module that could not be loaded, with what modprobe (or the simulated kernel) said and the
 * errno of the failure: ENOENT (no such module, or no modprobe), EPERM, ENODEV, EINVAL, ... as
 * modprobe reported it; ETIMEDOUT when it did not finish; ENOTSUP under a root other than /.
 */
export class ModuleLoadError extends Error {
  override readonly name = 'ModuleLoadError';
  constructor(
    readonly module: string,
    readonly reason: string,
    readonly errno: string,
    options?: { cause?: unknown },
  ) {
    super(`loading module ${module} failed: ${reason}`, options);
  }
}

/** Why modprobe failed, in its own words where it gave any, and the errno it names. */
function modprobeFailure(error: unknown): { reason: string; errno: string } {
  const failure = error as { code?: unknown; killed?: boolean; stderr?: unknown };
  if (failure.code === 'ENOENT') return { reason: 'modprobe is not installed (kmod)', errno: 'ENOENT' };
  if (failure.killed === true) return { reason: 'modprobe did not finish within 30 s', errno: 'ETIMEDOUT' };
  const said = typeof failure.stderr === 'string' ? failure.stderr.trim().split('\n').pop() ?? '' : '';
  // "FATAL: Module x not found" names no errno: the module file is missing (ENOENT).
  const errno = errnoFromText(said) ?? (/not found/i.test(said) ? 'ENOENT' : 'EIO');
  if (said !== '') return { reason: said, errno };
  return { reason: typeof failure.code === 'number' ? `modprobe exited with ${failure.code}` : String(error), errno };
}

/** Writes real files under a root. Never creates a file: sysfs attributes exist or the write fails. */
export class FsKernelPort implements KernelPort {
  readonly layout: SysfsLayout;

  constructor(root: string) {
    this.layout = new SysfsLayout(root);
  }

  async write(hostPath: string, value: string): Promise<void> {
    let handle;
    try {
      // Every link on the way is resolved and must stay under the root; the attribute itself is
      // never a link in sysfs (O_NOFOLLOW). O_WRONLY alone: kernfs refuses read mode on store-only
      // attributes (bind, unbind), and without O_CREAT a missing attribute fails instead of
      // becoming a new file.
      if (!SysfsLayout.isSysfsPath(hostPath)) throw Object.assign(new Error(`not a sysfs path: ${hostPath}`), { code: 'ENOENT' });
      const target = resolveInside(this.layout.root, this.layout.resolve(hostPath));
      handle = await open(target, constants.O_WRONLY | constants.O_NOFOLLOW);
      // One write call, as `echo` does: sysfs takes the whole value in a single store().
      await handle.write(value);
    } catch (error) {
      if (error instanceof OutsideRootError) throw KernelWriteError.outsideRoot(hostPath, value, error);
      throw new KernelWriteError(hostPath, value, errnoOf(error), { cause: error });
    } finally {
      await handle?.close();
    }
  }

  async loadModule(name: string): Promise<void> {
    if (this.layout.root !== '/') {
      throw new ModuleLoadError(name, `modules are loaded on the real host only, not under --root ${this.layout.root}`, 'ENOTSUP');
    }
    try {
      await promisify(execFile)('modprobe', ['--', name], { timeout: 30_000 });
    } catch (error) {
      const { reason, errno } = modprobeFailure(error);
      throw new ModuleLoadError(name, reason, errno, { cause: error });
    }
  }
}
