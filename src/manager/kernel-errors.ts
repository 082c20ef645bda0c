import type { PciAddress } from '../core/address.js';
import { HostdevError, isHostdevError } from '../core/errors.js';
import { KernelWriteError, ModuleLoadError } from '../sysfs/kernel-port.js';

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

/** A refused sysfs write as a catalog error that names the device, the file and the errno. */
export function kernelWriteFailed(error: unknown, address: PciAddress): HostdevError {
  if (isHostdevError(error)) return error;
  if (error instanceof KernelWriteError && error.outside !== null) return outsideRootRefused(error, address);
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

export function moduleUnavailable(driver: string, module: string, cause: unknown): HostdevError {
  const reason = cause instanceof ModuleLoadError ? cause.reason : cause instanceof Error ? cause.message : null;
  return new HostdevError('HOSTDEV_DRIVER_UNAVAILABLE', `driver ${driver} is not available: loading module ${module} failed${reason === null ? '' : `: ${reason}`}`, {
    hint: `Install the kernel module (modprobe ${module}) or pick another stub with --driver.`,
    details: { driver },
    cause,
  });
}
