import type { PciAddress } from '../core/address.js';

/**
 * Parsers for the text of sysfs PCI attributes. Each returns undefined for content that is not
 * what the kernel writes (the caller turns that into a null and a warning). Hand-written instead
 * of regular expressions: they run a few times for every function of the host.
 */

function isHex(text: string, from: number, to: number = text.length): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i) | 0x20; // folds A-F to a-f
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** The hex digits after "0x", when there are between 1 and `max` of them. */
function hexDigits(text: string, max: number): string | undefined {
  if (text.length < 3 || text.length > max + 2 || text.charCodeAt(0) !== 0x30 || (text.charCodeAt(1) | 0x20) !== 0x78) {
    return undefined;
  }
  return isHex(text, 2) ? text.slice(2).toLowerCase() : undefined;
}

/** "0x8086" -> "8086" */
export function parseHexId(text: string): string | undefined {
  return hexDigits(text, 4)?.padStart(4, '0');
}

/** "0x020000" -> { class: "0200", progIf: "00" } */
export function parseClass(text: string): { class: string; progIf: string } | undefined {
  const hex = text.length === 8 ? hexDigits(text, 6) : undefined;
  return hex === undefined ? undefined : { class: hex.slice(0, 4), progIf: hex.slice(4, 6) };
}

/** "0x01" -> "01" */
export function parseHexByte(text: string): string | undefined {
  return hexDigits(text, 2)?.padStart(2, '0');
}

const DECIMAL = /^-?[0-9]+$/;

export function parseDecimal(text: string): number | undefined {
  return DECIMAL.test(text) ? Number.parseInt(text, 10) : undefined;
}

/** sriov_totalvfs, sriov_numvfs: 16-bit registers in the SR-IOV capability; anything else is malformed. */
export function parseVfCount(text: string): number | undefined {
  const value = /^[0-9]{1,5}$/.test(text) ? Number(text) : undefined;
  return value !== undefined && value <= 0xffff ? value : undefined;
}

/** numa_node: -1 means "no node" and becomes null. */
export function parseNumaNode(text: string): number | null | undefined {
  const value = parseDecimal(text);
  return value === undefined ? undefined : value < 0 ? null : value;
}

/** driver_override reads "(null)" when unset. */
export function parseDriverOverride(text: string): string | null {
  const value = text.trim();
  return value === '' || value === '(null)' ? null : value;
}

export function parseResetMethods(text: string): string[] {
  const names: string[] = [];
  let start = -1;
  for (let i = 0; i <= text.length; i++) {
    const blank = i === text.length || text.charCodeAt(i) <= 0x20;
    if (blank && start >= 0) {
      names.push(text.slice(start, i));
      start = -1;
    } else if (!blank && start < 0) start = i;
  }
  return names;
}

/** What a PCI function's uevent file says of its identity; a key that is absent or malformed is left out. */
export interface UeventIds {
  vendor?: string;
  device?: string;
  subsystemVendor?: string;
  subsystemDevice?: string;
  pciClass?: { class: string; progIf: string };
}

/** "8086:10CA": two 4-digit hex ids and a colon. */
function isIdPair(value: string): boolean {
  return value.length === 9 && value.charCodeAt(4) === 0x3a && isHex(value, 0, 4) && isHex(value, 5);
}

const CLASS_CODE = /^[0-9A-Fa-f]{1,6}$/;

/** The value of KEY=value in a uevent text, or undefined. */
function ueventValue(text: string, key: string): string | undefined {
  let at = text.startsWith(key) ? 0 : text.indexOf(`\n${key}`) + 1;
  if (at === 0 && !text.startsWith(key)) return undefined;
  at += key.length;
  const end = text.indexOf('\n', at);
  return text.slice(at, end < 0 ? text.length : end);
}

/**
 * The uevent file of a PCI function (PCI_ID=8086:10CA, PCI_CLASS=20000, PCI_SUBSYS_ID=8086:A03C):
 * the kernel fills it from the same fields as the vendor, device, class and subsystem_* files, so
 * one read stands for five.
 */
export function parseUevent(text: string): UeventIds {
  const ids: UeventIds = {};
  const id = ueventValue(text, 'PCI_ID=');
  if (id !== undefined && isIdPair(id)) {
    ids.vendor = id.slice(0, 4).toLowerCase();
    ids.device = id.slice(5).toLowerCase();
  }
  const subsystem = ueventValue(text, 'PCI_SUBSYS_ID=');
  if (subsystem !== undefined && isIdPair(subsystem)) {
    ids.subsystemVendor = subsystem.slice(0, 4).toLowerCase();
    ids.subsystemDevice = subsystem.slice(5).toLowerCase();
  }
  const pciClass = ueventValue(text, 'PCI_CLASS=');
  if (pciClass !== undefined && CLASS_CODE.test(pciClass)) {
    const hex = pciClass.toLowerCase().padStart(6, '0');
    ids.pciClass = { class: hex.slice(0, 4), progIf: hex.slice(4, 6) };
  }
  return ids;
}

/** The last component of a link target: "../../../bus/pci/drivers/igb" -> "igb". */
export function linkName(target: string): string {
  const trimmed = target.endsWith('/') ? target.slice(0, -1) : target;
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/**
 * Resolves a relative link target against a directory with string operations only (sysfs
 * links are "../../x/y"); anything else goes through `resolve`.
 */
export function resolveLink(dir: string, target: string, resolve: (dir: string, target: string) => string): string {
  if (target.startsWith('/') || target.includes('/./') || target.startsWith('./')) return resolve(dir, target);
  let base = dir;
  let rest = target;
  while (rest.startsWith('../')) {
    const cut = base.lastIndexOf('/');
    if (cut <= 0) return resolve(dir, target);
    base = base.slice(0, cut);
    rest = rest.slice(3);
  }
  return rest.includes('..') ? resolve(dir, target) : `${base}/${rest}`;
}

/** What tryParseAddress gives back unchanged: "dddd:bb:ss.f", lower-case hex, slot <= 0x1f. */
const CANONICAL_ADDRESS = /^[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]$/;

/**
 * The name as a PciAddress when it is one in the kernel's own spelling, else null: sysfs names
 * devices canonically, and a test costs a fraction of a full parse (it runs for every link).
 */
export function canonicalAddress(name: string): PciAddress | null {
  return CANONICAL_ADDRESS.test(name) ? (name as PciAddress) : null;
}
