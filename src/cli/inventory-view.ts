import { className as shortClassName, type Inventory, type PciDevice } from '../core/device.js';
import type { OwnerLookup } from '../core/iommu.js';
import type { Owner } from '../core/tables.js';
import type { TableLookup, TableMembership } from '../manager/table-lookup.js';
import { readInventoryBounded, readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { DEFAULT_PCI_IDS_PATH } from '../sysfs/pci-ids.js';
import { SysfsLayout } from '../sysfs/paths.js';
import type { GlobalOptions } from './context.js';
import { takePrefetched } from './inventory-prefetch.js';

/**
 * What the inventory commands (list, show, groups) share: reading the host as the global options
 * say, and the words and cells they print.
 */

/** hostdev's tables for the inventory commands; the manager wires them in, loaded lazily (see open-manager). */
export type TableLookupFactory = (globals: GlobalOptions) => Promise<TableLookup | null>;

export interface InventoryCommandOptions {
  /** Without it there is no OWNER column and no owner fields. */
  readonly tableLookup?: TableLookupFactory;
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
export async function tablesFor(globals: GlobalOptions, options: InventoryCommandOptions): Promise<TableLookup | null> {
  return options.tableLookup ? options.tableLookup(globals).catch(() => null) : null;
}

/** The active table's owners, as the IOMMU-group rules want them. */
export function ownersOf(tables: TableLookup): OwnerLookup {
  return (address) => {
    const found = tables(address);
    return found?.table === 'active' ? found.owner : null;
  };
}

/**
 * The same two fields wherever a device is printed with its tables (list, show, groups):
 * `owner` {driver, domain} or null, and `table` "active" | "inactive" | null.
 */
export function ownershipJson(membership: TableMembership | null): { owner: Owner | null; table: 'active' | 'inactive' | null } {
  if (membership === null) return { owner: null, table: null };
  return membership.table === 'active' ? { owner: membership.owner, table: 'active' } : { owner: null, table: 'inactive' };
}

/** A device with its two table fields, as `--json` prints it: PciDevice's fields in its order, then owner and table. */
export type DeviceWithOwnership = PciDevice & ReturnType<typeof ownershipJson>;

/**
 * Every field copied by name, not spread: list makes thousands of these, and a spread of 22 fields
 * into a fresh object costs four times as much in code that has not warmed up yet (its output also
 * stringifies slower). The return type makes a field PciDevice gains a compile error here.
 */
function withOwnership(d: PciDevice, membership: TableMembership | null): DeviceWithOwnership {
  const { owner, table } = ownershipJson(membership);
  return {
    address: d.address,
    vendor: d.vendor,
    device: d.device,
    subsystemVendor: d.subsystemVendor,
    subsystemDevice: d.subsystemDevice,
    class: d.class,
    progIf: d.progIf,
    revision: d.revision,
    vendorName: d.vendorName,
    deviceName: d.deviceName,
    driver: d.driver,
    driverOverride: d.driverOverride,
    iommuGroup: d.iommuGroup,
    numaNode: d.numaNode,
    headerType: d.headerType,
    parent: d.parent,
    physfn: d.physfn,
    virtfns: d.virtfns,
    sriov: d.sriov,
    netdevs: d.netdevs,
    resetMethods: d.resetMethods,
    flr: d.flr,
    owner,
    table,
  };
}

/** The device as `--json` prints it: the PciDevice fields, plus owner and table when the tables are known. */
export function deviceJson(device: PciDevice, tables: TableLookup | null): PciDevice {
  return tables ? withOwnership(device, tables(device.address)) : device;
}

/** What the OWNER column says: "qemu/vm1", "hostdev (detached)", or "-". */
export function ownerCell(membership: TableMembership | null): string {
  if (membership === null) return '-';
  return membership.table === 'active' ? `${membership.owner.driver}/${membership.owner.domain}` : 'hostdev (detached)';
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
