import type { PciAddress } from './address.js';

/** The device attributes plans write. */
type DeviceAttribute = 'driver_override' | 'reset' | 'sriov_numvfs' | 'sriov_drivers_autoprobe';

/**
 * The host paths ("/sys/...") of the kernel files plans write, which the kernel port takes and
 * `--dry-run` prints. Implemented in src/sysfs, the one place that knows the /sys layout, and
 * handed to the planners, which stay pure.
 */
export interface KernelFiles {
  device(address: PciAddress, attribute: DeviceAttribute): string;
  driver(name: string, file: 'bind' | 'unbind'): string;
  readonly driversProbe: string;
}
