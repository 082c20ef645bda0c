import { HostdevError } from './errors.js';

/**
 * A PCI address in its canonical sysfs spelling, "dddd:bb:ss.f" in lower-case hex.
 * The brand keeps raw user input from reaching a path before it was parsed.
 */
export type PciAddress = string & { readonly __pciAddress: unique symbol };

export interface PciAddressParts {
  readonly domain: number;
  readonly bus: number;
  readonly slot: number;
  readonly function: number;
}

const FULL = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;
const SHORT = /^([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;
const NODEDEV = /^pci_([0-9a-fA-F]{4})_([0-9a-fA-F]{2})_([0-9a-fA-F]{2})_([0-7])$/;

function hex(value: number, width: number): string {
  return value.toString(16).padStart(width, '0');
}

export function formatAddress(parts: PciAddressParts): PciAddress {
  return `${hex(parts.domain, 4)}:${hex(parts.bus, 2)}:${hex(parts.slot, 2)}.${parts.function}` as PciAddress;
}

function partsFrom(domain: string, bus: string, slot: string, fn: string): PciAddressParts | null {
  const parts = {
    domain: Number.parseInt(domain, 16),
    bus: Number.parseInt(bus, 16),
    slot: Number.parseInt(slot, 16),
    function: Number.parseInt(fn, 10),
  };
  return parts.slot > 0x1f ? null : parts;
}

/** Parses without throwing; null for anything that is not a PCI address. */
export function tryParseAddress(input: string): PciAddress | null {
  const full = FULL.exec(input) ?? NODEDEV.exec(input);
  if (full) {
    const parts = partsFrom(full[1]!, full[2]!, full[3]!, full[4]!);
    return parts && formatAddress(parts);
  }
  const short = SHORT.exec(input);
  if (short) {
    const parts = partsFrom('0000', short[1]!, short[2]!, short[3]!);
    return parts && formatAddress(parts);
  }
  return null;
}

/**
 * Accepts "0000:01:00.2", "01:00.2" (domain 0) and libvirt's nodedev name "pci_0000_01_00_2".
 * Anything else is refused before it can get near a path.
 */
export function parseAddress(input: string): PciAddress {
  const address = tryParseAddress(input);
  if (address === null) {
    throw new HostdevError('HOSTDEV_BAD_ADDRESS', `"${input}" is not a PCI address`, {
      hint: 'Write it as 0000:01:00.2, 01:00.2 or pci_0000_01_00_2 (see `hostdev list`).',
      details: { input },
    });
  }
  return address;
}

export function addressParts(address: PciAddress): PciAddressParts {
  const match = FULL.exec(address);
  if (!match) throw new Error(`not a canonical PCI address: ${address}`);
  return partsFrom(match[1]!, match[2]!, match[3]!, match[4]!)!;
}

export function compareAddresses(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** libvirt's node device name for an address: pci_0000_01_00_2. */
export function nodedevName(address: PciAddress): string {
  return `pci_${address.replace(/[:.]/g, '_')}`;
}
