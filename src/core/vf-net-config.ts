import type { PciAddress } from './address.js';

/**
 * A VF's network identity as the PF's driver reports it (`ip -j link show PF`, vfinfo_list)
 * and as hostdev saves and restores it.
 */
export interface VfNetConfig {
  /** The administrative MAC, lower-case; "00:00:00:00:00:00" means none was set. */
  readonly mac: string;
  /** 0 means no VLAN. */
  readonly vlan: number;
  readonly qos: number;
  /** null when the driver does not report it. */
  readonly spoofchk: boolean | null;
  readonly trust: boolean | null;
  readonly linkState: 'auto' | 'enable' | 'disable' | null;
}

export interface VfNetInfo extends VfNetConfig {
  readonly vf: number;
}

/** What an operator asks for at assign; absent fields are left as they are. */
export interface VfNetRequest {
  readonly mac?: string;
  readonly vlan?: number;
  readonly spoofchk?: boolean;
  readonly trust?: boolean;
}

/** One `ip link set PF vf N ...` change. */
export type VfSetting =
  | { readonly kind: 'vlan'; readonly vlan: number; readonly qos: number }
  | { readonly kind: 'trust'; readonly on: boolean }
  | { readonly kind: 'mac'; readonly mac: string }
  | { readonly kind: 'spoofchk'; readonly on: boolean };

/** Where a VF's network config lives: its PF, the PF's network interface and the VF's index there. */
export interface VfNetTarget {
  readonly address: PciAddress;
  readonly pf: PciAddress;
  readonly pfNetdev: string;
  /** N of the PF's virtfnN link: the index `ip link set PF vf N` means. */
  readonly vfIndex: number;
}

/** A VF's network config as saved before an assign changed it (what release puts back). */
export interface SavedVfNet {
  readonly address: PciAddress;
  /** The PF's network interface name. */
  readonly pf: string;
  readonly vfIndex: number;
  readonly mac: string | null;
  readonly vlan: number | null;
  readonly spoofchk: boolean | null;
  readonly trust: boolean | null;
}

/**
 * The settings that turn `current` into what was requested, in the order that works on Intel
 * NICs (igb/ixgbe/i40e/ice): VLAN, trust, MAC, spoofchk.
 */
export function settingsFor(request: VfNetRequest): VfSetting[] {
  const settings: VfSetting[] = [];
  if (request.vlan !== undefined) settings.push({ kind: 'vlan', vlan: request.vlan, qos: 0 });
  if (request.trust !== undefined) settings.push({ kind: 'trust', on: request.trust });
  if (request.mac !== undefined) settings.push({ kind: 'mac', mac: request.mac });
  if (request.spoofchk !== undefined) settings.push({ kind: 'spoofchk', on: request.spoofchk });
  return settings;
}

export function describeSetting(setting: VfSetting): string {
  switch (setting.kind) {
    case 'vlan':
      return `vlan ${setting.vlan}${setting.qos > 0 ? ` qos ${setting.qos}` : ''}`;
    case 'trust':
      return `trust ${setting.on ? 'on' : 'off'}`;
    case 'mac':
      return `mac ${setting.mac}`;
    case 'spoofchk':
      return `spoofchk ${setting.on ? 'on' : 'off'}`;
  }
}
