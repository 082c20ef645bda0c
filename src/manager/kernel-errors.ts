import type { PciAddress } from '../core/address.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import { hostdevCommand } from '../core/shell.js';
import { vfRangeError } from '../core/vf-count.js';
import { KernelWriteError, ModuleLoadError } from '../sysfs/kernel-port.js';

/**
 * The one place where an errno the kernel (or modprobe) returned becomes a catalog error: sysfs
 * writes, sriov_numvfs writes (whose errnos mean something of their own) and module loads.
 */

const HINTS: Readonly<Record<string, string>> = {
  EBUSY: 'The device or driver is busy: it may already be bound, or a process still holds it.',
  ENODEV: 'The driver did not take the device: its driver_override names another driver or its ID table does not match.',
  ENOENT: 'The sysfs file does not exist: the device vanished or the kernel lacks the feature.',
  EINVAL: 'The kernel refused the value written.',
  ENOTTY: 'The device has no usable reset method.',
  EACCES: 'Run hostdev as root.',
  EPERM: 'Run hostdev as root.',
  ERANGE: 'The value is out of the range the device supports.',
  EISDIR: 'The path names a directory, not a sysfs attribute: name the attribute file.',
  ENXIO: 'The attribute is not a regular file (a socket or device node in its place): the tree under --root is damaged.',
};

/** What the errno of a refused write means beyond the write itself (a PF's VF count: its sriov_totalvfs). */
export interface WriteContext {
  readonly totalVfs?: number | null;
}

/** A refused sysfs write as a catalog error that names the device, the file and the errno. */
export function kernelWriteFailed(error: unknown, address: PciAddress, context: WriteContext = {}): HostdevError {
  if (isHostdevError(error)) return error;
  if (error instanceof KernelWriteError && error.outside !== null) return outsideRootRefused(error, address);
  if (error instanceof KernelWriteError && error.hostPath.endsWith('/sriov_numvfs')) {
    return numVfsWriteError(address, error.value, error.errno, context.totalVfs ?? null);
  }
  if (error instanceof KernelWriteError) {
    return new HostdevError(
      'HOSTDEV_KERNEL_WRITE',
      `writing ${JSON.stringify(error.value)} to ${error.hostPath} for PCI device ${address} failed: ${error.errno}`,
      {
        hint: HINTS[error.errno] ?? 'See dmesg for what the kernel said.',
        details: { address, path: error.hostPath, errno: error.errno },
        cause: error,
      },
    );
  }
  return new HostdevError('HOSTDEV_INTERNAL', `unexpected failure while changing PCI device ${address}: ${String(error)}`, {
    hint: 'This is a bug in hostdev; please report it with this message. `hostdev status` shows where the device was left.',
    details: { address },
    cause: error,
  });
}

/** A write refused because a link on its way leads out of --root (exit 6, naming the link). */
export function outsideRootRefused(error: KernelWriteError, address: PciAddress | null): HostdevError {
  const outside = error.outside!;
  const what = address === null ? error.hostPath : `${error.hostPath} for PCI device ${address}`;
  return new HostdevError('HOSTDEV_KERNEL_WRITE', `refusing to change ${what}: ${outside.message}`, {
    hint: `hostdev changes nothing outside --root. Remove or fix the link ${outside.link}, or give the right --root.`,
    details: { ...(address === null ? {} : { address }), path: error.hostPath, errno: error.errno, link: outside.link, target: outside.target },
    cause: error,
  });
}

/** A module load that failed (or a driver directory that did not appear after it), with modprobe's words and errno. */
export function moduleUnavailable(driver: string, module: string, cause: unknown): HostdevError {
  if (cause instanceof KernelWriteError && cause.outside !== null) return outsideRootRefused(cause, null);
  const reason = cause instanceof ModuleLoadError ? cause.reason : cause instanceof Error ? cause.message : null;
  return new HostdevError('HOSTDEV_DRIVER_UNAVAILABLE', `driver ${driver} is not available: loading module ${module} failed${reason === null ? '' : `: ${reason}`}`, {
    hint: `Install the kernel module (modprobe ${module}) or pick another stub with --driver.`,
    details: { driver, ...(cause instanceof ModuleLoadError ? { errno: cause.errno } : {}) },
    cause,
  });
}

/** The errno of a refused sriov_numvfs write, as what it means for the PF's VF count. */
export function numVfsWriteError(pf: PciAddress, value: string, errno: string, totalVfs: number | null): HostdevError {
  const details = { address: pf, errno, value };
  switch (errno) {
    case 'ERANGE':
      return vfRangeError(pf, Number(value), totalVfs ?? Number.NaN);
    case 'EINVAL':
      return new HostdevError('HOSTDEV_KERNEL_WRITE', `the kernel refused ${value} VFs on PF ${pf} (EINVAL)`, {
        hint: 'The count can only change through 0 (N -> 0 -> M); check `hostdev vf list` and retry.',
        details,
      });
    case 'EBUSY':
      return new HostdevError('HOSTDEV_KERNEL_WRITE', `PF ${pf} is busy: the kernel refused to change its VF count (EBUSY)`, {
        hint: 'A VF is still held by a process (a VM with the VF open blocks the removal); stop it and retry.',
        details,
      });
    case 'ENOENT':
    case 'ENODEV':
      return new HostdevError('HOSTDEV_NOT_SRIOV', `PF ${pf} has no sriov_numvfs: it is gone or not SR-IOV capable`, {
        hint: `Check with \`${hostdevCommand('show', pf)}\` that the PF is still on the host and shows a VF count; a VF has none.`,
        details,
      });
    default:
      return new HostdevError('HOSTDEV_KERNEL_WRITE', `writing ${value} to sriov_numvfs of PF ${pf} failed: ${errno}`, {
        hint: `dmesg says why the PF driver refused; \`${hostdevCommand('vf', 'list', pf)}\` shows how many VFs the PF has now.`,
        details,
      });
  }
}

/** What a refused mdev `create` or `remove` write means (drivers/vfio/mdev/mdev_sysfs.c, mdev_core.c). */
const MDEV_HINTS: Readonly<Record<string, string>> = {
  EINVAL: 'The kernel takes a UUID of 36 characters (8-4-4-4-12 hex digits); give --uuid such a UUID or leave it out.',
  EEXIST: 'A mediated device with this UUID exists already (`hostdev mdev list`); give another --uuid or leave it out.',
  EUSERS: 'The parent has no instance of this type left (available_instances is 0): remove an mdev of the parent first.',
  EBUSY: 'A VM (or another process) still has the mediated device open: stop it first.',
};

/** A refused write of an mdev's `create` or `remove` file, as a catalog error naming the mdev, its parent and type. */
export function mdevWriteFailed(error: unknown, what: { readonly key: string; readonly parent: string | null; readonly type: string | null }): HostdevError {
  if (isHostdevError(error)) return error;
  if (error instanceof KernelWriteError && error.outside !== null) return outsideRootRefused(error, null);
  if (!(error instanceof KernelWriteError)) {
    return new HostdevError('HOSTDEV_INTERNAL', `unexpected failure while changing mediated device ${what.key}: ${String(error)}`, {
      hint: 'This is a bug in hostdev; please report it with this message.',
      details: { key: what.key },
      cause: error,
    });
  }
  const on = what.parent === null ? '' : ` (type ${what.type ?? '?'} on ${what.parent})`;
  return new HostdevError('HOSTDEV_KERNEL_WRITE', `the kernel refused mediated device ${what.key}${on}: writing to ${error.hostPath} failed with ${error.errno}`, {
    hint: MDEV_HINTS[error.errno] ?? HINTS[error.errno] ?? 'See dmesg for what the parent driver said.',
    details: { key: what.key, path: error.hostPath, errno: error.errno, parent: what.parent, type: what.type },
    cause: error,
  });
}
