import { compareAddresses, tryParseAddress, type PciAddress } from './address.js';
import { pciKey, type DeviceKey } from './device-key.js';
import { HostdevError } from './errors.js';
import { hostdevCommand } from './shell.js';
import { CLAIM_OWNER, ownerName } from './tables.js';

/**
 * Claims from boot: a definition that a PCI function belongs on a stub driver from the moment the
 * host finds it (driverctl's saved overrides). A claim names its device by address and by what is
 * there (vendor:device), so a card swapped in at the same address is never bound by it.
 * Definitions are files of `key=value` lines (CONFIG/claims.d/pci-ADDRESS), which the initramfs
 * script reads with a POSIX shell.
 */

export interface ClaimMatch {
  readonly vendor: string;
  readonly device: string;
}

export interface Claim {
  readonly key: DeviceKey;
  readonly address: PciAddress;
  /** The stub driver the device is claimed for. */
  readonly driver: string;
  readonly match: ClaimMatch;
}

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
  return { key: pciKey(address), address, driver, match: { vendor, device } };
}

export function sortClaims(claims: readonly Claim[]): Claim[] {
  return [...claims].sort((a, b) => compareAddresses(a.address, b.address));
}

/** What is at a claimed address now. */
export interface FoundDevice {
  readonly vendor: string | null;
  readonly device: string | null;
  readonly driver: string | null;
}

export function matchesClaim(match: ClaimMatch, found: FoundDevice): boolean {
  return found.vendor === match.vendor && found.device === match.device;
}

/** A claim does not bind a device it was not made for. */
export function claimMismatch(address: PciAddress, match: ClaimMatch, found: FoundDevice, defined = true): HostdevError {
  const now = `${found.vendor ?? '????'}:${found.device ?? '????'}`;
  const hint = defined
    ? `Check the card at ${address}; if this one is to be claimed, \`${hostdevCommand('unclaim', address)}\` then claim it again.`
    : `Check the card with \`lspci -nn -s ${address}\`; to claim the one that is there, give its IDs (--match ${now}) or leave --match out.`;
  return new HostdevError(
    'HOSTDEV_CLAIM_MISMATCH',
    `${address} is ${now} on driver ${found.driver ?? '(none)'}, not the ${formatMatch(match)} the claim is for: not bound`,
    {
      hint,
      details: { address, key: pciKey(address), expected: formatMatch(match), found: now, driver: found.driver },
    },
  );
}

export function notClaimed(address: PciAddress): HostdevError {
  return new HostdevError('HOSTDEV_NOT_CLAIMED', `no claim is defined for ${address}`, {
    hint: '`hostdev claims` lists the claims; `hostdev reattach ADDRESS` gives back a device detached without a claim.',
    details: { address, key: pciKey(address) },
  });
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
        `ATTR{driver_override}="${claim.driver}", RUN{builtin}+="kmod load ${claim.driver}"`,
    );
  }
  return `${lines.join('\n')}\n`;
}
