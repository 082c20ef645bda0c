import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import type { HostUse } from '../core/plan-types.js';

/**
 * Does the host itself use a device? A netdev with an IP address or a route, a mounted filesystem
 * on a disk behind it, the console. Detach and assign refuse such a device unless forced.
 * Production reads /proc and runs `ip`; tests and `--simulate` read a file in the simulated tree.
 */
export interface HostUsagePort {
  usesOf(devices: readonly PciDevice[]): Promise<ReadonlyMap<PciAddress, readonly HostUse[]>>;
}

/** For callers that do not want the guard (the library default when no port is given). */
export const NO_HOST_USAGE: HostUsagePort = {
  usesOf: async () => new Map(),
};
