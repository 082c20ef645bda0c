import type { PciAddress } from '../core/address.js';
import { className as shortClassName, type Inventory, type PciDevice } from '../core/device.js';
import type { OwnerLookup } from '../core/iommu.js';
import { readInventoryBounded, readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { DEFAULT_PCI_IDS_PATH } from '../sysfs/pci-ids.js';
import { SysfsLayout } from '../sysfs/paths.js';
import type { GlobalOptions } from './context.js';
import { takePrefetched } from './inventory-prefetch.js';

/**
 * What the inventory commands (list, show, groups) share: reading the host as the global options
 * say, and the words and cells they print.
 */

/**
 * Gives the owner of each device (the active table). The manager wires one in through the command
 * factories (listCommand({ ownerLookup })); it is loaded lazily, so `list` without it never opens
 * the state database.
 */
export type OwnerLookupFactory = (globals: GlobalOptions) => Promise<OwnerLookup | null>;

export interface InventoryCommandOptions {
  readonly ownerLookup?: OwnerLookupFactory;
}

/** pci.ids location: $HOSTDEV_PCI_IDS, else Debian's. Never under --root. */
export function pciIdsPath(): string {
  return process.env['HOSTDEV_PCI_IDS'] ?? DEFAULT_PCI_IDS_PATH;
}

/** Reads the host in a child process with a bound, so a blocked sysfs read cannot hang the command. */
export async function readHost(globals: GlobalOptions): Promise<{ layout: SysfsLayout; inventory: Inventory; warnings: string[] }> {
  const layout = new SysfsLayout(globals.root);
  const inventory = await readInventoryBounded(layout, {
    pciIdsPath: pciIdsPath(),
    timeoutMs: readTimeoutFromEnv(),
    started: takePrefetched(),
  });
  const warnings = inventory.warnings.map((w) => (w.address === '' ? w.message : `${w.address}: ${w.message}`));
  return { layout, inventory, warnings };
}

/** Start it before readHost: the tables load while sysfs is read. Best-effort: a failure drops the column. */
export async function ownersFor(globals: GlobalOptions, options: InventoryCommandOptions): Promise<OwnerLookup | null> {
  return options.ownerLookup ? options.ownerLookup(globals).catch(() => null) : null;
}

/** The device as `--json` prints it: the PciDevice fields, plus `owner` when owners are known. */
export function deviceJson(device: PciDevice, owners: OwnerLookup | null): Record<string, unknown> {
  return owners ? { ...device, owner: owners(device.address) } : { ...device };
}

export function ownerCell(owners: OwnerLookup, address: PciAddress): string {
  const owner = owners(address);
  return owner ? `${owner.driver}/${owner.domain}` : '-';
}

export function iommuOffNote(layout: SysfsLayout): string {
  return (
    `IOMMU is off: there are no IOMMU groups under ${layout.iommuGroupsDir}, so no device can be given ` +
    'to a VM through VFIO (boot with intel_iommu=on or amd_iommu=on).'
  );
}

/** "Intel Corporation 82576 Virtual Function", like lspci; "-" when nothing is known. */
export function deviceLabel(device: PciDevice): string {
  if (device.vendorName === null) return '-';
  return `${device.vendorName} ${device.deviceName ?? `Device ${device.device ?? '????'}`}`;
}

export function idPair(device: PciDevice): string {
  return `${device.vendor ?? '????'}:${device.device ?? '????'}`;
}

export function classCell(device: PciDevice): string {
  return shortClassName(device.class) ?? device.class ?? '-';
}

/** "PF 2/7", "VF of 0000:01:00.0" or "-". */
export function sriovCell(device: PciDevice): string {
  if (device.sriov) return `PF ${device.sriov.numVfs}/${device.sriov.totalVfs} VFs`;
  if (device.physfn) return `VF of ${device.physfn}`;
  return '-';
}
