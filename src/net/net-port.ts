import { isHostdevError } from '../core/errors.js';
import type { VfSetting } from '../core/vf-net-config.js';
import type { PfLinkInfo } from './vf-net-config.js';

/**
 * The port around iproute2 through which hostdev reads and sets VF network config.
 * Production runs `ip` with an argument array; tests and `--simulate` use the simulated one.
 */
export interface NetPort {
  /** `ip -j link show dev PF`: the PF's UP flag and its vfinfo_list. */
  show(ifname: string): Promise<PfLinkInfo>;
  /** `ip link set dev PF vf N <setting>`. */
  setVf(ifname: string, vf: number, setting: VfSetting): Promise<void>;
}

/** The errno a net port's failure carries (`details.errno`: what netlink answered), if any. */
export function netErrnoOf(error: unknown): string | null {
  if (!isHostdevError(error)) return null;
  return typeof error.details.errno === 'string' ? error.details.errno : null;
}
