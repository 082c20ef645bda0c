import type { PciAddress } from '../core/address.js';
import { HostdevError } from '../core/errors.js';
import type { SavedVfNet, VfNetConfig, VfNetTarget, VfSetting } from '../core/vf-net-config.js';
import { netErrnoOf, type NetPort } from '../net/net-port.js';
import { NO_MAC, pfDownError, restoreSettings } from '../net/vf-net-config.js';
import type { VfConfig } from '../state/store.js';

/**
 * VF network config through the net port: what the executor's `net-*` steps and recovery's
 * review of saved rows use (the order of the steps is in core/plan-vf-net.ts). The saved row
 * of a vanished VF is dropped with its table entry (libvirt leaks those).
 */

/** What a VF's config is saved as, read from its PF now. */
export function toStored(target: VfNetTarget, config: VfNetConfig): VfConfig {
  return {
    address: target.address,
    pf: target.pfNetdev,
    vfIndex: target.vfIndex,
    mac: config.mac,
    vlan: config.vlan,
    spoofchk: config.spoofchk,
    trust: config.trust,
  };
}

function fromStored(saved: SavedVfNet): VfNetConfig {
  return {
    mac: saved.mac ?? NO_MAC,
    vlan: saved.vlan ?? 0,
    qos: 0,
    spoofchk: saved.spoofchk,
    trust: saved.trust,
    linkState: null,
  };
}

/** What a VF's MAC is set to when its driver will not take 00:00:00:00:00:00 (libvirt's altZeroMAC). */
const ALT_ZERO_MAC = '02:00:00:00:00:00';


export class VfNetConfigurator {
  constructor(private readonly net: NetPort) {}

  /** The VF's current config as its PF reports it; refuses a PF that is down (libvirt's wording). */
  async current(target: VfNetTarget): Promise<VfNetConfig> {
    const link = await this.net.show(target.pfNetdev);
    if (!link.up) throw pfDownError(target.pfNetdev, target.vfIndex);
    const vf = link.vfs.find((entry) => entry.vf === target.vfIndex);
    if (vf === undefined) {
      throw new HostdevError('HOSTDEV_NET_CONFIG', `PF ${target.pfNetdev} reports no VF ${target.vfIndex} (${target.address})`, {
        hint:
          `\`ip link show ${target.pfNetdev}\` should list vf ${target.vfIndex}: if the VF count just changed, retry; ` +
          'if it never lists VFs, the PF driver does not report them and their MAC and VLAN cannot be set.',
        details: { address: target.address, ifname: target.pfNetdev },
      });
    }
    return vf;
  }

  async set(target: VfNetTarget, setting: VfSetting): Promise<void> {
    await this.net.setVf(target.pfNetdev, target.vfIndex, setting);
  }

  /**
   * Puts a saved config back (same order as apply). A driver that refuses to set the all-zero MAC
   * ("no MAC", EINVAL) gets 02:00:00:00:00:00 instead, as libvirt does (its altZeroMAC): the
   * locally administered bit alone, which no real NIC carries.
   */
  async restore(saved: SavedVfNet): Promise<void> {
    const link = await this.net.show(saved.pf);
    if (!link.up) throw pfDownError(saved.pf, saved.vfIndex);
    for (const setting of restoreSettings(fromStored(saved))) {
      try {
        await this.net.setVf(saved.pf, saved.vfIndex, setting);
      } catch (error) {
        if (setting.kind !== 'mac' || setting.mac !== NO_MAC || netErrnoOf(error) !== 'EINVAL') throw error;
        await this.net.setVf(saved.pf, saved.vfIndex, { kind: 'mac', mac: ALT_ZERO_MAC });
      }
    }
  }

}

/** Whether every saved VF config belongs to an assigned VF (then there is nothing to repair). */
export function vfConfigsSettled(rows: readonly VfConfig[], active: ReadonlySet<string>): boolean {
  return rows.every((row) => active.has(row.address));
}

/** The warning of a saved VF config whose restore failed (its row is kept and tried again by the next open). */
export function pendingWarning(address: PciAddress, reason: string): string {
  return `VF network config of ${address} not restored yet (kept for the next run): ${reason}`;
}
