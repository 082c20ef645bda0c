import { tryParseAddress, type PciAddress } from './address.js';
import { HostdevError } from './errors.js';
import { pciKeyText } from './key-spelling.js';

/**
 * A device key names one host device of any kind, in one canonical spelling "KIND:ID":
 *   pci:0000:01:10.0          a PCI function (the domain:bus:slot.function of sysfs)
 *   mdev:UUID                 a mediated device (lower-case UUID)
 *   usb:BUS-PORT              a USB device by where it is plugged: bus, then the port path (1-1.4)
 *   nvme:ADDRESS/NSID         a namespace of the NVMe controller at the PCI address
 *   scsi:HOST:BUS:TARGET:LUN  a SCSI device as the kernel numbers it
 * The tables and the state database key entries by it. Code that works on PCI functions keeps
 * using PciAddress, taken from a pci: key with `pciAddressOf`.
 * The brand keeps unparsed input from being used as a key.
 */
export type DeviceKey = string & { readonly __deviceKey: unique symbol };

export const DEVICE_KINDS = ['pci', 'mdev', 'usb', 'nvme', 'scsi'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

export type DeviceId =
  | { readonly kind: 'pci'; readonly address: PciAddress }
  | { readonly kind: 'mdev'; readonly uuid: string }
  | { readonly kind: 'usb'; readonly bus: number; readonly ports: readonly number[] }
  | { readonly kind: 'nvme'; readonly controller: PciAddress; readonly namespace: number }
  | {
      readonly kind: 'scsi';
      readonly host: number;
      readonly bus: number;
      readonly target: number;
      readonly lun: number;
    };

/** Limits the kernel puts on the numbers (USB: 127 buses, up to 31 ports per hub, 7 tiers; NVMe NSID 32 bits). */
const USB_MAX_BUS = 127;
const USB_MAX_PORT = 31;
const USB_MAX_DEPTH = 7;
const NVME_MAX_NSID = 0xfffffffe;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Leading zeros are taken (sysfs prints USB bus numbers as 001); the key drops them. */
const DECIMAL = /^[0-9]{1,16}$/;

/** Whether the text is a UUID as the kernel takes it (8-4-4-4-12 hex digits, either case). */
export function isUuid(text: string): boolean {
  return UUID.test(text.toLowerCase());
}

export function formatKey(id: DeviceId): DeviceKey {
  switch (id.kind) {
    case 'pci':
      return `pci:${id.address}` as DeviceKey;
    case 'mdev':
      return `mdev:${id.uuid}` as DeviceKey;
    case 'usb':
      return `usb:${id.bus}-${id.ports.join('.')}` as DeviceKey;
    case 'nvme':
      return `nvme:${id.controller}/${id.namespace}` as DeviceKey;
    case 'scsi':
      return `scsi:${id.host}:${id.bus}:${id.target}:${id.lun}` as DeviceKey;
  }
}

/** The key of a PCI function; the one spelling the tables use for it. */
export function pciKey(address: PciAddress): DeviceKey {
  return pciKeyText(address) as DeviceKey;
}

function number(text: string, min: number, max: number): number | null {
  if (!DECIMAL.test(text)) return null;
  const value = Number(text);
  return value >= min && value <= max ? value : null;
}

function parseUsb(rest: string): DeviceId | null {
  const match = /^([0-9]+)-([0-9]+(?:\.[0-9]+)*)$/.exec(rest);
  if (!match) return null;
  const bus = number(match[1]!, 1, USB_MAX_BUS);
  const ports = match[2]!.split('.').map((port) => number(port, 1, USB_MAX_PORT));
  if (bus === null || ports.length > USB_MAX_DEPTH || ports.some((port) => port === null)) return null;
  return { kind: 'usb', bus, ports: ports as number[] };
}

function parseNvme(rest: string): DeviceId | null {
  const slash = rest.lastIndexOf('/');
  if (slash < 0) return null;
  const controller = tryParseAddress(rest.slice(0, slash));
  const namespace = number(rest.slice(slash + 1), 1, NVME_MAX_NSID);
  return controller === null || namespace === null ? null : { kind: 'nvme', controller, namespace };
}

function parseScsi(rest: string): DeviceId | null {
  const parts = rest.split(':');
  if (parts.length !== 4) return null;
  const [host, bus, target, lun] = parts.map((part) => number(part, 0, Number.MAX_SAFE_INTEGER));
  if (host == null || bus == null || target == null || lun == null) return null;
  return { kind: 'scsi', host, bus, target, lun };
}

/**
 * Parses without throwing; null for anything that is neither a key nor a PCI address. A bare PCI
 * address in any spelling `parseAddress` takes (0000:01:00.2, 01:00.2, pci_0000_01_00_2) is a pci: key;
 * hex digits and UUIDs may be upper-case, decimal numbers may have leading zeros: the key is canonical.
 */
export function tryParseId(input: string): DeviceId | null {
  const bare = tryParseAddress(input);
  if (bare !== null) return { kind: 'pci', address: bare };
  const colon = input.indexOf(':');
  if (colon < 0) return null;
  const rest = input.slice(colon + 1);
  switch (input.slice(0, colon)) {
    case 'pci': {
      const address = tryParseAddress(rest);
      return address === null ? null : { kind: 'pci', address };
    }
    case 'mdev': {
      const uuid = rest.toLowerCase();
      return UUID.test(uuid) ? { kind: 'mdev', uuid } : null;
    }
    case 'usb':
      return parseUsb(rest);
    case 'nvme':
      return parseNvme(rest);
    case 'scsi':
      return parseScsi(rest);
    default:
      return null;
  }
}

export function tryParseKey(input: string): DeviceKey | null {
  const id = tryParseId(input);
  return id === null ? null : formatKey(id);
}

const KEY_HINT =
  'Write a PCI address as 0000:01:00.2, 01:00.2 or pci_0000_01_00_2, or a device key as pci:0000:01:00.2, ' +
  'mdev:UUID, usb:BUS-PORT, nvme:ADDRESS/NSID or scsi:HOST:BUS:TARGET:LUN (see `hostdev list`).';

export function parseId(input: string): DeviceId {
  const id = tryParseId(input);
  if (id === null) {
    const kind = DEVICE_KINDS.find((name) => input.startsWith(`${name}:`));
    const problem = kind === undefined ? 'is not a PCI address or a device key' : `is not a valid ${kind}: key`;
    throw new HostdevError('HOSTDEV_BAD_ADDRESS', `"${input}" ${problem}`, { hint: KEY_HINT, details: { input } });
  }
  return id;
}

export function parseKey(input: string): DeviceKey {
  return formatKey(parseId(input));
}

/** The kind of a key (the text before its first colon). */
export function keyKind(key: DeviceKey): DeviceKind {
  return key.slice(0, key.indexOf(':')) as DeviceKind;
}

/** The PCI address a pci: key names; null for any other kind. */
export function pciAddressOf(key: DeviceKey): PciAddress | null {
  return keyKind(key) === 'pci' ? (key.slice(4) as PciAddress) : null;
}

/** Structured parts of a canonical key (what `formatKey` was given). */
export function idOf(key: DeviceKey): DeviceId {
  const id = tryParseId(key);
  if (id === null) throw new Error(`not a canonical device key: ${key}`);
  return id;
}

/** What the service takes where it names a device: a device key or a bare PCI address, in any spelling. */
export type DeviceRef = DeviceKey | PciAddress | string;

/**
 * What every operation that works on PCI functions takes: a pci: key or a bare PCI address in any
 * spelling. A key of another kind is refused by name: hostdev hands only PCI functions to VMs today.
 */
export function parsePciRef(input: string): PciAddress {
  const id = parseId(input);
  if (id.kind === 'pci') return id.address;
  throw new HostdevError('HOSTDEV_BAD_ADDRESS', `"${input}" names a ${id.kind} device; this operation takes PCI devices only`, {
    hint: 'Give the PCI function as pci:0000:01:00.2 or 0000:01:00.2 (see `hostdev list`).',
    details: { input, kind: id.kind },
  });
}

