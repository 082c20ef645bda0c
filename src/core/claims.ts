import { compareAddresses, tryParseAddress, type PciAddress } from './address.js';
import { pciKey, type DeviceKey } from './device-key.js';
import { HostdevError } from './errors.js';
import { describeHardware, hardwareChanged, type HardwareIdentity } from './hardware-identity.js';
import { hostdevCommand } from './shell.js';
import { CLAIM_OWNER, ownerName } from './tables.js';

/**
 * Claims from boot: a definition that a PCI function belongs on a stub driver from the moment the
 * host finds it (driverctl's saved overrides). A claim names its device by address and by what is
 * there (vendor:device, and from the card it was made for its subsystem IDs, class and serials), so
 * a card swapped in at the same address is never bound by it, even one of the same model.
 * Definitions are files of `key=value` lines (CONFIG/claims.d/pci-ADDRESS), which the initramfs
 * script reads with a POSIX shell.
 */

export interface ClaimMatch {
  readonly vendor: string;
  readonly device: string;
}

/**
 * What a claim knows of its card besides vendor:device (read when it was made; a field null when the
 * card has none or it could not be read, and then not compared).
 */
export interface ClaimIdentity {
  readonly subsystemVendor: string | null;
  readonly subsystemDevice: string | null;
  /** Base class and subclass, 4 hex digits. */
  readonly class: string | null;
  /** The PCIe Device Serial Number, as lspci prints it. */
  readonly serialNumber: string | null;
  /** The VPD SN field. */
  readonly vpdSerial: string | null;
}

export interface Claim {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  /** The stub driver the device is claimed for. */
  readonly driver: string;
  readonly match: ClaimMatch;
  /** Absent in a claim written before claims kept more than vendor:device. */
  readonly identity?: ClaimIdentity;
}

/** The claim's identity from the card's (the vendor:device of the match). */
export function claimIdentityOf(hardware: HardwareIdentity): ClaimIdentity {
  return {
    subsystemVendor: hardware.subsystemVendor,
    subsystemDevice: hardware.subsystemDevice,
    class: hardware.class,
    serialNumber: hardware.serialNumber,
    vpdSerial: hardware.vpd?.serialNumber ?? null,
  };
}

/** The card a claim was made for, as a HardwareIdentity (unknown fields null). */
export function claimedHardware(claim: Pick<Claim, 'match' | 'identity'>): HardwareIdentity {
  const id = claim.identity;
  return {
    vendor: claim.match.vendor,
    device: claim.match.device,
    subsystemVendor: id?.subsystemVendor ?? null,
    subsystemDevice: id?.subsystemDevice ?? null,
    class: id?.class ?? null,
    serialNumber: id?.serialNumber ?? null,
    vpd: id?.vpdSerial == null ? null : { productName: null, partNumber: null, serialNumber: id.vpdSerial, engineeringChange: null, manufacturer: null },
  };
}

/** Claim file keys of the identity (values without spaces or '=' only, so the initramfs script reads them). */
const IDENTITY_KEYS = [
  ['subsystemVendor', 'subsystem_vendor'],
  ['subsystemDevice', 'subsystem_device'],
  ['class', 'class'],
  ['serialNumber', 'dsn'],
  ['vpdSerial', 'vpd_sn'],
] as const;
const SAFE_VALUE = /^[A-Za-z0-9._:/+-]{1,64}$/;

/** Who holds a claimed device in `status` and the OWNER column: `hostdev/claim`. */
export const CLAIM_OWNER_NAME = ownerName(CLAIM_OWNER);

export const CLAIMS_SUBDIR = 'claims.d';
/** The udev rules `hostdev claims write-udev` writes (before 80-drivers.rules, which loads host drivers). */
export const UDEV_RULES_FILE = '70-hostdev-claims.rules';

const HEX4 = /^[0-9a-f]{4}$/;

/** `--match VENDOR:DEVICE` (4 hex digits each, as lspci -nn prints them). */
export function parseMatch(text: string): ClaimMatch {
  const [vendor, device, ...rest] = text.toLowerCase().replace(/0x/g, '').split(':');
  if (vendor === undefined || device === undefined || rest.length > 0 || !HEX4.test(vendor) || !HEX4.test(device)) {
    throw new HostdevError('HOSTDEV_USAGE', `--match ${text} is not VENDOR:DEVICE`, {
      hint: 'Give the IDs as lspci -nn prints them, 4 hex digits each: --match 8086:10ca.',
      details: { match: text },
    });
  }
  return { vendor, device };
}

export function formatMatch(match: ClaimMatch): string {
  return `${match.vendor}:${match.device}`;
}

export function claimFileName(address: PciAddress): string {
  return `pci-${address}`;
}

export function claimFileText(claim: Claim): string {
  return [
    `# hostdev claim: ${claim.address} (${formatMatch(claim.match)}) belongs on ${claim.driver} from boot.`,
    `# Written by hostdev claim; removed by ${hostdevCommand('unclaim', claim.address)}.`,
    `address=${claim.address}`,
    `driver=${claim.driver}`,
    `vendor=${claim.match.vendor}`,
    `device=${claim.match.device}`,
    ...IDENTITY_KEYS.flatMap(([field, key]) => {
      const value = claim.identity?.[field] ?? null;
      return value !== null && SAFE_VALUE.test(value) ? [`${key}=${value}`] : [];
    }),
    '',
  ].join('\n');
}

/** A claim file's text, or why it is not one (the caller names the file). */
export function parseClaimFile(text: string): Claim | string {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const at = trimmed.indexOf('=');
    if (at < 1) return `line "${trimmed}" is not key=value`;
    fields.set(trimmed.slice(0, at), trimmed.slice(at + 1));
  }
  const address = tryParseAddress(fields.get('address') ?? '');
  if (address === null) return `address "${fields.get('address') ?? ''}" is not a PCI address`;
  const driver = fields.get('driver') ?? '';
  if (!/^[A-Za-z0-9_-]+$/.test(driver)) return `driver "${driver}" is not a driver name`;
  const vendor = fields.get('vendor') ?? '';
  const device = fields.get('device') ?? '';
  if (!HEX4.test(vendor) || !HEX4.test(device)) return `vendor:device "${vendor}:${device}" is not 4 hex digits each`;
  const claim: Claim = { key: pciKey(address), address, driver, match: { vendor, device } };
  if (!IDENTITY_KEYS.some(([, key]) => fields.has(key))) return claim;
  const identity = Object.fromEntries(IDENTITY_KEYS.map(([field, key]) => [field, fields.get(key) || null])) as unknown as ClaimIdentity;
  return { ...claim, identity };
}

export function sortClaims(claims: readonly Claim[]): Claim[] {
  return [...claims].sort((a, b) => compareAddresses(a.address, b.address));
}

/** What is at a claimed address now: its identity (serials read bounded) and driver. */
export interface FoundDevice {
  readonly hardware: HardwareIdentity;
  readonly driver: string | null;
}

/** The card there is the one the claim was made for: same vendor:device, and no other ID or serial known on both sides differs. */
export function matchesClaim(claim: Pick<Claim, 'match' | 'identity'>, found: FoundDevice): boolean {
  const now = found.hardware;
  return now.vendor === claim.match.vendor && now.device === claim.match.device && !hardwareChanged(claimedHardware(claim), now);
}

/** A claim does not bind a device it was not made for: the message names both cards (IDs, and the serial when known). */
export function claimMismatch(address: PciAddress, claim: Pick<Claim, 'match' | 'identity'>, found: FoundDevice, defined = true): HostdevError {
  const ids = `${found.hardware.vendor ?? '????'}:${found.hardware.device ?? '????'}`;
  const now = describeHardware(found.hardware);
  const was = describeHardware(claimedHardware(claim));
  const hint = defined
    ? `Check the card at ${address}; if this one is to be claimed, \`${hostdevCommand('unclaim', address)}\` then claim it again.`
    : `Check the card with \`lspci -nn -s ${address}\`; to claim the one that is there, give its IDs (--match ${ids}) or leave --match out.`;
  return new HostdevError(
    'HOSTDEV_CLAIM_MISMATCH',
    `${address} is ${now} on driver ${found.driver ?? '(none)'}, not the ${was} the claim is for: not bound`,
    {
      hint,
      details: { address, key: pciKey(address), expected: was, found: now, driver: found.driver },
    },
  );
}

export function notClaimed(address: PciAddress): HostdevError {
  return new HostdevError('HOSTDEV_NOT_CLAIMED', `no claim is defined for ${address}`, {
    hint: '`hostdev claims` lists the claims; `hostdev reattach ADDRESS` gives back a device detached without a claim.',
    details: { address, key: pciKey(address) },
  });
}

/** The subsystem IDs and class as udev ATTR matches (sysfs prints them 0x-prefixed; class has 6 hex digits, the claim keeps 4). */
function udevIdentityMatches(identity: ClaimIdentity | undefined): string {
  if (identity === undefined) return '';
  const hex = (value: string | null, size: number): string | null => (value !== null && new RegExp(`^[0-9a-f]{${size}}$`).test(value) ? value : null);
  const parts: string[] = [];
  const sv = hex(identity.subsystemVendor, 4);
  const sd = hex(identity.subsystemDevice, 4);
  const cls = hex(identity.class, 4);
  if (sv !== null) parts.push(`ATTR{subsystem_vendor}=="0x${sv}"`);
  if (sd !== null) parts.push(`ATTR{subsystem_device}=="0x${sd}"`);
  if (cls !== null) parts.push(`ATTR{class}=="0x${cls}*"`);
  return parts.map((part) => `${part}, `).join('');
}

/**
 * udev rules, one per claim: at the device's `add` event, if its IDs are the claim's, set
 * driver_override before 80-drivers.rules loads the host driver's module, and load the stub (whose
 * module init binds the unbound device). Matched inside udev: no program runs per event.
 */
export function udevRules(claims: readonly Claim[]): string {
  const lines = [
    '# Written by hostdev (hostdev claims write-udev) from the claims in claims.d: do not edit;',
    '# hostdev claim / unclaim write it again.',
  ];
  for (const claim of sortClaims(claims)) {
    lines.push(
      `ACTION=="add", SUBSYSTEM=="pci", KERNEL=="${claim.address}", ATTR{vendor}=="0x${claim.match.vendor}", ATTR{device}=="0x${claim.match.device}", ` +
        udevIdentityMatches(claim.identity) +
        `ATTR{driver_override}="${claim.driver}", RUN{builtin}+="kmod load ${claim.driver}"`,
    );
  }
  return `${lines.join('\n')}\n`;
}
