import type { PciAddress } from './address.js';

/** What the PCI header type register says the function is. */
export type HeaderType = 'endpoint' | 'bridge' | 'cardbus';

export interface SriovInfo {
  readonly totalVfs: number;
  readonly numVfs: number;
}

/**
 * One PCI function as the host shows it. Field names are the `--json` contract of
 * `hostdev list`; add fields freely, never rename one.
 */
export interface PciDevice {
  readonly address: PciAddress;
  readonly vendor: string | null;
  readonly device: string | null;
  readonly subsystemVendor: string | null;
  readonly subsystemDevice: string | null;
  /** Base class + subclass, 4 hex digits, as `lspci -nn` prints it. */
  readonly class: string | null;
  readonly progIf: string | null;
  readonly revision: string | null;
  readonly vendorName: string | null;
  readonly deviceName: string | null;
  readonly driver: string | null;
  readonly driverOverride: string | null;
  readonly iommuGroup: number | null;
  readonly numaNode: number | null;
  readonly headerType: HeaderType | null;
  /** The upstream bridge, or null for a function on a root bus. */
  readonly parent: PciAddress | null;
  readonly physfn: PciAddress | null;
  readonly virtfns: readonly PciAddress[];
  readonly sriov: SriovInfo | null;
  readonly netdevs: readonly string[];
  readonly resetMethods: readonly string[];
  /** True when the function advertises Function Level Reset in its PCIe capability. */
  readonly flr: boolean | null;
}

/** A problem met while reading one device: the device is still listed, with nulls. */
export interface InventoryWarning {
  readonly address: string;
  readonly message: string;
}

export interface Inventory {
  readonly devices: readonly PciDevice[];
  readonly warnings: readonly InventoryWarning[];
  /** False when the host has no IOMMU groups at all (IOMMU off or absent). */
  readonly iommuEnabled: boolean;
}

/** PCI base class codes (first byte of `class`) and the names the CLI filters on. */
export const CLASS_NAMES: Readonly<Record<string, string>> = {
  '00': 'unclassified',
  '01': 'storage',
  '02': 'net',
  '03': 'display',
  '04': 'multimedia',
  '05': 'memory',
  '06': 'bridge',
  '07': 'communication',
  '08': 'system',
  '09': 'input',
  '0a': 'docking',
  '0b': 'processor',
  '0c': 'serial-bus',
  '0d': 'wireless',
  '0e': 'intelligent',
  '0f': 'satellite',
  '10': 'encryption',
  '11': 'signal-processing',
  '12': 'accelerator',
  '13': 'instrumentation',
  '40': 'coprocessor',
  ff: 'unassigned',
};

export function className(pciClass: string | null): string | null {
  if (pciClass === null) return null;
  return CLASS_NAMES[pciClass.slice(0, 2).toLowerCase()] ?? null;
}

export function isVirtualFunction(device: PciDevice): boolean {
  return device.physfn !== null;
}
