import type { PciAddress } from './address.js';
import type { PciDevice } from './device.js';

/**
 * What a PCI function is, as opposed to where it sits: an address (BDF) is no identity, since after
 * a hot-swap or a firmware change the same address can hold another card. Table entries keep this,
 * read when the entry was made, and every later look compares it with the device at the address.
 */
export interface HardwareIdentity {
  readonly vendor: string | null;
  readonly device: string | null;
  readonly subsystemVendor: string | null;
  readonly subsystemDevice: string | null;
  /** Base class and subclass, 4 hex digits (as PciDevice.class). */
  readonly class: string | null;
  /** PCI Express Device Serial Number (extended capability 0x0003), as lspci prints it: "00-1b-21-ff-ff-8a-3c-12". */
  readonly serialNumber: string | null;
  /** The Vital Product Data's read-only fields, when the device has a readable `vpd` file. */
  readonly vpd: VpdFields | null;
}

export interface VpdFields {
  /** The identifier string (the product name). */
  readonly productName: string | null;
  /** PN: part number. */
  readonly partNumber: string | null;
  /** SN: serial number. */
  readonly serialNumber: string | null;
  /** EC: engineering change level. */
  readonly engineeringChange: string | null;
  /** MN: manufacturer id. */
  readonly manufacturer: string | null;
}

/** The serials of a device, read besides the inventory (config space past 0x100 and the vpd file). */
export interface DeviceSerials {
  readonly serialNumber: string | null;
  readonly vpd: VpdFields | null;
}

export const NO_SERIALS: DeviceSerials = { serialNumber: null, vpd: null };

export function identityOf(device: PciDevice, serials: DeviceSerials): HardwareIdentity {
  return {
    vendor: device.vendor,
    device: device.device,
    subsystemVendor: device.subsystemVendor,
    subsystemDevice: device.subsystemDevice,
    class: device.class,
    serialNumber: serials.serialNumber,
    vpd: serials.vpd,
  };
}

const ID_FIELDS = ['vendor', 'device', 'subsystemVendor', 'subsystemDevice', 'class'] as const;

/**
 * Whether the device now at an entry's address is another one than the entry was made for: any ID
 * differs, or a serial (DSN or VPD SN) known on both sides differs. A field unknown on either side
 * (an entry written before hostdev kept identities, a vpd file that could not be read) is not compared.
 */
export function hardwareChanged(was: HardwareIdentity, now: HardwareIdentity): boolean {
  for (const field of ID_FIELDS) if (was[field] !== null && now[field] !== null && was[field] !== now[field]) return true;
  const differs = (a: string | null | undefined, b: string | null | undefined): boolean => a != null && b != null && a !== b;
  return differs(was.serialNumber, now.serialNumber) || differs(was.vpd?.serialNumber, now.vpd?.serialNumber);
}

/** "8086:10ca SN X": the IDs and the serial a person compares cards by (VPD SN first, else the DSN). */
export function describeHardware(identity: HardwareIdentity): string {
  const ids = `${identity.vendor ?? '????'}:${identity.device ?? '????'}`;
  const serial = identity.vpd?.serialNumber ?? identity.serialNumber;
  return serial === null || serial === undefined ? ids : `${ids} SN ${serial}`;
}

/** "hardware changed at 0000:01:00.0: was 8086:10ca SN X, now 15b3:101e". */
export function hardwareChangeText(address: PciAddress, was: HardwareIdentity, now: HardwareIdentity): string {
  return `hardware changed at ${address}: was ${describeHardware(was)}, now ${describeHardware(now)}`;
}

const EXT_CAP_START = 0x100;
const EXT_CAP_ID_DSN = 0x0003;

/** Reads `length` bytes of config space at `offset`; fewer past the end (or when access is denied). */
export type ConfigBytes = (offset: number, length: number) => Uint8Array;

/**
 * The Device Serial Number from the extended capability list (config space 0x100 up, which only a
 * privileged reader sees): the 64-bit value after the header, printed most significant byte first.
 */
export function deviceSerialNumber(read: ConfigBytes): string | null {
  let at = EXT_CAP_START;
  for (let hops = 0; at >= EXT_CAP_START && hops < 480; hops++) {
    const cap = read(at, 12);
    if (cap.length < 4) return null;
    const header = (cap[0]! | (cap[1]! << 8) | (cap[2]! << 16) | (cap[3]! << 24)) >>> 0;
    if (header === 0 || header === 0xffffffff) return null;
    if ((header & 0xffff) === EXT_CAP_ID_DSN) {
      if (cap.length < 12) return null;
      return [...cap.subarray(4, 12)].reverse().map((byte) => byte.toString(16).padStart(2, '0')).join('-');
    }
    at = (header >>> 20) & 0xffc;
  }
  return null;
}

const VPD_ID_STRING = 0x82;
const VPD_READ_ONLY = 0x90;
const VPD_END = 0x78;

/**
 * The read-only fields of PCI Vital Product Data (PCI 3.0 appendix I): large resources (tag, 16-bit
 * length) for the identifier string (0x82) and the read-only keywords (0x90: two letters, a length
 * byte, the value), up to the small end tag (0x78). Null when the bytes are not VPD.
 */
export function parseVpd(bytes: Uint8Array): VpdFields | null {
  const fields: Record<string, string> = {};
  let productName: string | null = null;
  let at = 0;
  let seen = false;
  while (at < bytes.length) {
    const tag = bytes[at]!;
    if (tag === VPD_END || (tag & 0x80) === 0) break;
    if (at + 3 > bytes.length) break;
    const length = bytes[at + 1]! | (bytes[at + 2]! << 8);
    const start = at + 3;
    const end = Math.min(bytes.length, start + length);
    if (tag === VPD_ID_STRING) {
      productName = text(bytes.subarray(start, end));
      seen = true;
    } else if (tag === VPD_READ_ONLY) {
      seen = true;
      for (let k = start; k + 3 <= end; ) {
        const keyword = String.fromCharCode(bytes[k]!, bytes[k + 1]!);
        const size = bytes[k + 2]!;
        if (keyword !== 'RV') fields[keyword] = text(bytes.subarray(k + 3, Math.min(end, k + 3 + size)));
        k += 3 + size;
      }
    }
    at = start + length;
  }
  if (!seen) return null;
  const field = (name: string): string | null => (fields[name] === undefined || fields[name] === '' ? null : fields[name]!);
  return { productName, partNumber: field('PN'), serialNumber: field('SN'), engineeringChange: field('EC'), manufacturer: field('MN') };
}

function text(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes).replace(/[\0\s]+$/u, '').trim();
}
