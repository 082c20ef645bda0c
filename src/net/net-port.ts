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
