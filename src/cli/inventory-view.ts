import type { PciAddress } from '../core/address.js';
import { className as shortClassName, type Inventory, type PciDevice } from '../core/device.js';
import type { TableLookup } from '../manager/table-lookup.js';
export { deviceJson, ownersOf, ownershipJson, type DeviceWithOwnership } from '../manager/inventory-reports.js';
import { readInventoryBounded, readNeighbourhoodBounded, readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { pciIdsPath } from '../sysfs/pci-ids.js';
import { SysfsLayout } from '../sysfs/paths.js';
import type { GlobalOptions } from './context.js';
import { takePrefetched } from './inventory-prefetch.js';

/**
 * What the inventory commands (list, show, groups) share: reading the host as the global options
 * say, and the words and cells they print.
 */

/** hostdev's tables for the inventory commands; the manager wires them in, loaded lazily (see open-manager). */
type TableLookupFactory = (globals: GlobalOptions) => Promise<TableLookup | null>;

export interface InventoryCommandOptions {
  /** Without it there is no OWNER column and no owner fields. */
  readonly tableLookup?: TableLookupFactory;
}

export { pciIdsPath };

/**
 * Reads the host in a child process with a bound, so a blocked sysfs read cannot hang the command:
 * every function, or with `around` only what `show` needs of it (see readNeighbourhoodBounded).
 */
export async function readHost(
  globals: GlobalOptions,
  around?: PciAddress,
): Promise<{ layout: SysfsLayout; inventory: Inventory; warnings: string[] }> {
  const layout = new SysfsLayout(globals.root);
  const options = { pciIdsPath: pciIdsPath(), timeoutMs: readTimeoutFromEnv(), started: takePrefetched() };
  const inventory = around === undefined ? await readInventoryBounded(layout, options) : await readNeighbourhoodBounded(layout, around, options);
  const warnings = inventory.warnings.map((w) => (w.address === '' ? w.message : `${w.address}: ${w.message}`));
  return { layout, inventory, warnings };
}

/** Start it before readHost: the tables load while sysfs is read. Best-effort: a failure drops the column. */
export async function tablesFor(globals: GlobalOptions, options: InventoryCommandOptions): Promise<TableLookup | null> {
  return options.tableLookup ? options.tableLookup(globals).catch(() => null) : null;
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
