import { HostdevError } from '../core/errors.js';
import { describeSetting, settingsFor, type VfNetConfig, type VfNetInfo, type VfNetRequest, type VfSetting } from '../core/vf-net-config.js';

export { describeSetting, settingsFor };

/** VF network config, pure: checks of what the operator typed, `ip` arguments and output, the settings to apply. */

export interface PfLinkInfo {
  readonly ifname: string;
  /** Administratively up (the UP flag). */
  readonly up: boolean;
  readonly vfs: readonly VfNetInfo[];
}

export const NO_MAC = '00:00:00:00:00:00';
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;

export function parseMac(input: string): string {
  const mac = input.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC.test(mac)) {
    throw new HostdevError('HOSTDEV_USAGE', `"${input}" is not a MAC address`, {
      hint: 'Write it as 52:54:00:12:34:56.',
      details: { input },
    });
  }
  // Bit 0 of the first octet marks a multicast address: no NIC accepts one as a VF's MAC.
  if ((Number.parseInt(mac.slice(0, 2), 16) & 1) === 1) {
    throw new HostdevError('HOSTDEV_USAGE', `MAC address ${mac} is a multicast address`, {
      hint: 'A VF needs a unicast MAC: the lowest bit of the first octet must be 0 (for example 52:54:00:...).',
      details: { input },
    });
  }
  return mac;
}

export function parseVlan(input: string | number): number {
  // Decimal digits only: Number() would take "" and " " as 0 (an unset $VLAN would put the VF on
  // the untagged network), "1e3" as 1000, "0x7" and "+3".
  const vlan = typeof input === 'number' ? input : /^[0-9]{1,4}$/.test(input) ? Number(input) : Number.NaN;
  if (!Number.isInteger(vlan) || vlan < 0 || vlan > 4094) {
    throw new HostdevError('HOSTDEV_USAGE', `VLAN "${String(input)}" is not a VLAN ID`, {
      hint: 'A VLAN ID is written in decimal digits, from 1 to 4094 (0 removes the VLAN).',
      details: { input: String(input) },
    });
  }
  return vlan;
}

export function parseOnOff(input: string, option: string): boolean {
  if (input === 'on') return true;
  if (input === 'off') return false;
  throw new HostdevError('HOSTDEV_USAGE', `${option} takes "on" or "off", not "${input}"`, {
    hint: `Write ${option} on or ${option} off.`,
    details: { input },
  });
}

/** Guards the interface name before it reaches an argument list. */
export function checkIfname(ifname: string): string {
  if (!IFNAME.test(ifname)) {
    throw new HostdevError('HOSTDEV_USAGE', `"${ifname}" is not a network interface name`, {
      hint: 'hostdev gives `ip` only names of 1 to 15 letters, digits and _.:@-; rename the interface (`ip link set dev OLD name NEW`).',
      details: { input: ifname },
    });
  }
  return ifname;
}

/** The argument array of `ip link set PF vf N ...` (for execFile; never joined into a shell line). */
export function ipSetArgs(ifname: string, vf: number, setting: VfSetting): string[] {
  const base = ['link', 'set', 'dev', checkIfname(ifname), 'vf', String(vf)];
  switch (setting.kind) {
    case 'vlan':
      return [...base, 'vlan', String(setting.vlan), ...(setting.qos > 0 ? ['qos', String(setting.qos)] : [])];
    case 'trust':
      return [...base, 'trust', setting.on ? 'on' : 'off'];
    case 'mac':
      return [...base, 'mac', setting.mac];
    case 'spoofchk':
      return [...base, 'spoofchk', setting.on ? 'on' : 'off'];
  }
}

export function ipShowArgs(ifname: string): string[] {
  return ['-j', 'link', 'show', 'dev', checkIfname(ifname)];
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function numberOr(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

function boolOrNull(value: unknown): boolean | null {
  return typeof value === 'boolean' ? value : null;
}

function linkStateOf(value: unknown): VfNetConfig['linkState'] {
  return value === 'auto' || value === 'enable' || value === 'disable' ? value : null;
}

function vfInfoOf(raw: unknown): VfNetInfo | null {
  const vf = record(raw);
  if (typeof vf['vf'] !== 'number') return null;
  // iproute2 prints either a vlan_list (newer kernels, one entry per tag) or flat vlan/qos.
  const list = Array.isArray(vf['vlan_list']) ? vf['vlan_list'].map(record) : [];
  const first = list[0] ?? vf;
  return {
    vf: vf['vf'],
    mac: typeof vf['address'] === 'string' ? vf['address'].toLowerCase() : NO_MAC,
    vlan: numberOr(first['vlan'], 0),
    qos: numberOr(first['qos'], 0),
    spoofchk: boolOrNull(vf['spoofchk']),
    trust: boolOrNull(vf['trust']),
    linkState: linkStateOf(vf['link_state']),
  };
}

/** Parses `ip -j link show dev PF`. Throws HOSTDEV_NET_CONFIG on output it does not understand. */
export function parseIpLinkShow(output: string, ifname: string): PfLinkInfo {
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch (error) {
    throw new HostdevError('HOSTDEV_NET_CONFIG', `\`ip -j link show ${ifname}\` printed something that is not JSON`, {
      hint: 'hostdev needs iproute2 with JSON output (ip -j, iproute2 4.14 or later).',
      details: { ifname },
      cause: error,
    });
  }
  const links = Array.isArray(parsed) ? parsed.map(record) : [];
  const link = links.find((entry) => entry['ifname'] === ifname) ?? links[0];
  if (link === undefined) {
    throw new HostdevError('HOSTDEV_NET_CONFIG', `\`ip -j link show ${ifname}\` reported no interface`, {
      hint: `Check that ${ifname} still exists (\`ip link show\`): it may have been renamed or removed; then retry.`,
      details: { ifname },
    });
  }
  const flags = Array.isArray(link['flags']) ? link['flags'] : [];
  const vfs = (Array.isArray(link['vfinfo_list']) ? link['vfinfo_list'] : [])
    .map(vfInfoOf)
    .filter((vf): vf is VfNetInfo => vf !== null)
    .sort((a, b) => a.vf - b.vf);
  return { ifname: typeof link['ifname'] === 'string' ? link['ifname'] : ifname, up: flags.includes('UP'), vfs };
}

/** The settings that put a saved config back, same order; values the driver never reported are skipped. */
export function restoreSettings(saved: VfNetConfig): VfSetting[] {
  const settings: VfSetting[] = [{ kind: 'vlan', vlan: saved.vlan, qos: saved.qos }];
  if (saved.trust !== null) settings.push({ kind: 'trust', on: saved.trust });
  settings.push({ kind: 'mac', mac: saved.mac });
  if (saved.spoofchk !== null) settings.push({ kind: 'spoofchk', on: saved.spoofchk });
  return settings;
}

export function isEmptyRequest(request: VfNetRequest): boolean {
  return settingsFor(request).length === 0;
}

/** libvirt's wording (virNetDevSetNetConfig), which users search for. */
export function pfDownError(ifname: string, vf: number): HostdevError {
  return new HostdevError(
    'HOSTDEV_PF_DOWN',
    `Unable to configure VF ${vf} of PF '${ifname}' because the PF is not online. Please change host network config to put the PF online.`,
    { hint: `Bring the PF up first: ip link set dev ${ifname} up`, details: { ifname, vf } },
  );
}
