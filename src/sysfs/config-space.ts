import type { HeaderType } from '../core/device.js';

/** What hostdev reads from a function's binary config space. */
interface ConfigFacts {
  readonly headerType: HeaderType | null;
  /** Function Level Reset: PCIe DevCap bit 28, or the Advanced Features capability's FLR bit. */
  readonly flr: boolean | null;
  /** Revision and subsystem ids of a type-0 header (null for bridges and unreadable headers). */
  readonly revision: string | null;
  readonly subsystemVendor: string | null;
  readonly subsystemDevice: string | null;
}

const UNKNOWN: ConfigFacts = { headerType: null, flr: null, revision: null, subsystemVendor: null, subsystemDevice: null };

/** Reads `length` bytes at `offset`; fewer (or none) past the end or when access is denied. */
type ConfigRead = (offset: number, length: number) => Uint8Array;

const REVISION = 0x08;
const HEADER_TYPE = 0x0e;
const SUBSYSTEM_VENDOR = 0x2c;
const SUBSYSTEM_DEVICE = 0x2e;
const STATUS = 0x06;
const STATUS_CAP_LIST = 0x10;
const CAP_PTR_NORMAL = 0x34;
const CAP_PTR_CARDBUS = 0x14;
const CAP_ID_PCIE = 0x10;
const CAP_ID_AF = 0x13;
const DEVCAP_FLR_BYTE = 7; // DevCap is at cap+4; bit 28 is bit 4 of its last byte
const DEVCAP_FLR_BIT = 0x10;
const AF_CAP_BYTE = 3;
const AF_CAP_FLR = 0x02;

const HEADER_TYPES: ReadonlyArray<HeaderType> = ['endpoint', 'bridge', 'cardbus'];

/**
 * Finds the header type, the type-0 header's revision and subsystem ids (the registers the kernel
 * fills those sysfs files from) and FLR support with as few config reads as possible: the 64-byte header,
 * then 8 bytes per capability. On a virtual machine every config dword read traps to the
 * hypervisor, so reading all 256 bytes would cost ten times more. Unprivileged readers see only
 * the header: then `flr` is null (unknown).
 */
export function parseConfigSpace(read: ConfigRead): ConfigFacts {
  const header = read(0, 64);
  if (header.length < 64) return UNKNOWN;
  const headerType = HEADER_TYPES[header[HEADER_TYPE]! & 0x7f] ?? null;
  if (headerType === null) return UNKNOWN;
  const endpoint = headerType === 'endpoint';
  // One object of one shape for every function (a few thousand of them on a large host).
  return {
    headerType,
    flr: (header[STATUS]! & STATUS_CAP_LIST) === 0 ? false : capabilityFlr(read, header[headerType === 'cardbus' ? CAP_PTR_CARDBUS : CAP_PTR_NORMAL]!),
    revision: endpoint ? hex(header[REVISION]!, 2) : null,
    subsystemVendor: endpoint ? hex(header[SUBSYSTEM_VENDOR]! | (header[SUBSYSTEM_VENDOR + 1]! << 8), 4) : null,
    subsystemDevice: endpoint ? hex(header[SUBSYSTEM_DEVICE]! | (header[SUBSYSTEM_DEVICE + 1]! << 8), 4) : null,
  };
}

/** FLR from the capability list that starts at `first`: true, false, or null when the list cannot be read. */
function capabilityFlr(read: ConfigRead, first: number): boolean | null {
  let pointer = first & 0xfc;
  // Capabilities live in 0x40..0xff; 48 hops is the most a well-formed list can take (loop guard).
  for (let hops = 0; pointer >= 0x40 && hops < 48; hops++) {
    const cap = read(pointer, 8);
    if (cap.length < 2) return null;
    const id = cap[0]!;
    if (id === CAP_ID_PCIE && cap.length > DEVCAP_FLR_BYTE && (cap[DEVCAP_FLR_BYTE]! & DEVCAP_FLR_BIT) !== 0) return true;
    if (id === CAP_ID_AF && cap.length > AF_CAP_BYTE && (cap[AF_CAP_BYTE]! & AF_CAP_FLR) !== 0) return true;
    pointer = cap[1]! & 0xfc;
  }
  return false;
}

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

/** A ConfigRead over bytes already in memory (tests, and callers that hold a config image). */
export function configFromBytes(bytes: Uint8Array): ConfigRead {
  return (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length));
}

/**
 * The config reads parseConfigSpace needs, done ahead and kept as chunks (offset byte, length
 * byte, bytes): the 64-byte header, then 8 bytes at each capability of the list. The bounded
 * reader (native/sysfs-batch.c walks the list the same way) hands them over; configFromChunks
 * answers parseConfigSpace's reads from them.
 */
export function collectConfig(read: ConfigRead): Uint8Array {
  // The header and at most 48 capabilities of 8 bytes, each with its 2-byte chunk head.
  const out = new Uint8Array(66 + 48 * 10);
  let used = 0;
  const take = (offset: number, length: number): Uint8Array => {
    const bytes = read(offset, length);
    out[used] = offset;
    out[used + 1] = bytes.length;
    out.set(bytes, used + 2);
    used += 2 + bytes.length;
    return bytes;
  };
  const header = Uint8Array.from(take(0, 64));
  if (header.length === 64) {
    const type = header[HEADER_TYPE]! & 0x7f;
    if (type <= 2 && (header[STATUS]! & STATUS_CAP_LIST) !== 0) {
      let pointer = header[type === 2 ? CAP_PTR_CARDBUS : CAP_PTR_NORMAL]! & 0xfc;
      for (let hops = 0; pointer >= 0x40 && hops < 48; hops++) {
        const cap = take(pointer, 8);
        if (cap.length < 2) break;
        pointer = cap[1]! & 0xfc;
      }
    }
  }
  return out.slice(0, used);
}

/** A ConfigRead over collectConfig's chunks: a read no chunk starts at gets no bytes. */
export function configFromChunks(data: Uint8Array): ConfigRead {
  return (offset, length) => {
    // A handful of chunks: a scan costs less than an index.
    for (let at = 0; at + 2 <= data.length; at += 2 + data[at + 1]!) {
      if (data[at] === offset) {
        const end = Math.min(at + 2 + data[at + 1]!, data.length);
        return data.subarray(at + 2, Math.min(end, at + 2 + length));
      }
    }
    return data.subarray(0, 0);
  };
}

/** A PCI Express link as libvirt's node device XML gives it (<pci-express><link validity='cap|sta'/>). */
export interface PcieLink {
  readonly validity: 'cap' | 'sta';
  /** Link Capabilities' port number (cap only). */
  readonly port: number | null;
  /** GT/s as libvirt spells it ("2.5", "5", "8", ...); null for a speed code it does not name. */
  readonly speed: string | null;
  readonly width: number;
}

const LINK_SPEEDS: ReadonlyArray<string | null> = [null, '2.5', '5', '8', '16', '32', '64'];
const LNKCAP = 0x0c;
const LNKSTA = 0x12;
/** Express capability types without a link: root complex integrated endpoint and event collector. */
const NO_LINK_TYPES = new Set([0x9, 0xa]);

/**
 * The link's capabilities and status from the PCI Express capability (Link Capabilities at cap+0x0c,
 * Link Status at cap+0x12), as libvirt's virPCIDeviceGetLinkCapSta reads them; empty for a function
 * that is not PCI Express, has no link, or whose capability cannot be read.
 */
export function pcieLinks(read: ConfigRead): PcieLink[] {
  const header = read(0, 64);
  if (header.length < 64 || (header[STATUS]! & STATUS_CAP_LIST) === 0) return [];
  let pointer = header[(header[HEADER_TYPE]! & 0x7f) === 2 ? CAP_PTR_CARDBUS : CAP_PTR_NORMAL]! & 0xfc;
  for (let hops = 0; pointer >= 0x40 && hops < 48; hops++) {
    const cap = read(pointer, LNKSTA + 2);
    if (cap.length < 2) return [];
    if (cap[0] === CAP_ID_PCIE) {
      if (cap.length < LNKSTA + 2 || NO_LINK_TYPES.has((cap[2]! >> 4) & 0xf)) return [];
      const linkCap = (cap[LNKCAP]! | (cap[LNKCAP + 1]! << 8) | (cap[LNKCAP + 2]! << 16) | (cap[LNKCAP + 3]! << 24)) >>> 0;
      const linkSta = cap[LNKSTA]! | (cap[LNKSTA + 1]! << 8);
      return [
        { validity: 'cap', port: linkCap >>> 24, speed: LINK_SPEEDS[linkCap & 0xf] ?? null, width: (linkCap >> 4) & 0x3f },
        { validity: 'sta', port: null, speed: LINK_SPEEDS[linkSta & 0xf] ?? null, width: (linkSta >> 4) & 0x3f },
      ];
    }
    pointer = cap[1]! & 0xfc;
  }
  return [];
}

