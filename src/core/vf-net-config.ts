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
