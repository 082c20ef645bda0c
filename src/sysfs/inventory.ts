import type { PciAddress } from '../core/address.js';
import type { Inventory, InventoryWarning, PciDevice } from '../core/device.js';
import { opendirSync, type Dir } from 'node:fs';
import { canonicalAddress } from './attributes.js';
import { cachedPciIds, DEFAULT_PCI_IDS_PATH, type PciNames } from './pci-ids.js';
import { SysfsLayout } from './paths.js';
import { listFunctionNames, type FunctionListing } from './device-ops.js';
import { DeviceReadContext, readDeviceIn } from './read-device.js';

export interface ReadInventoryOptions {
  /** Names source; null for no names (and no warning). Default: pci.ids at `pciIdsPath`. */
  readonly names?: PciNames | null;
  /** Default /usr/share/misc/pci.ids; never under --root. */
  readonly pciIdsPath?: string;
}

/** What is known before the devices are read: their addresses, names source and the IOMMU state. */
interface InventoryPlan {
  readonly addresses: readonly PciAddress[];
  readonly names: PciNames | null;
  readonly iommuEnabled: boolean;
  readonly warnings: InventoryWarning[];
}

/**
 * `listing`: the names under ROOT/sys/bus/pci/devices as the bounded reader saw them (its functions
 * are then exactly the plan's); listed here when not given.
 */
export function planInventory(layout: SysfsLayout, options: ReadInventoryOptions = {}, listing?: FunctionListing): InventoryPlan {
  const warnings: InventoryWarning[] = [];
  const listed = listing ?? listFunctionNames(layout.pciDevicesDir);
  if ('errno' in listed) {
    warnings.push({ address: '', message: `cannot list ${layout.pciDevicesDir}: ${listed.errno}` });
    return { addresses: [], names: null, iommuEnabled: false, warnings };
  }
  const addresses: PciAddress[] = [];
  for (const name of listed.names) {
    const address = canonicalAddress(name);
    if (address !== null) addresses.push(address);
    else warnings.push({ address: name, message: 'not a PCI address; skipped' });
  }
  addresses.sort();

  let names: PciNames | null = null;
  if (options.names !== undefined) {
    names = options.names;
  } else if (addresses.length > 0) {
    const idsPath = options.pciIdsPath ?? DEFAULT_PCI_IDS_PATH;
    names = cachedPciIds(idsPath);
    if (names === null) {
      warnings.push({ address: '', message: `no PCI ID database at ${idsPath}: vendor and device names are null` });
    }
  }
  return { addresses, names, iommuEnabled: hasEntries(layout.iommuGroupsDir), warnings };
}

/** Reads the given functions in order, in-process; a function that vanished meanwhile is left out. */
function readFunctions(
  layout: SysfsLayout,
  addresses: readonly PciAddress[],
  names: PciNames | null,
  iommuEnabled: boolean,
  warnings: InventoryWarning[],
): PciDevice[] {
  const context = new DeviceReadContext(layout, names, (warning) => warnings.push(warning), iommuEnabled);
  const devices: PciDevice[] = [];
  for (const address of addresses) {
    const device = readDeviceIn(context, address);
    if (device !== null) devices.push(device);
  }
  return devices;
}

/**
 * Every PCI function under ROOT/sys/bus/pci/devices, in address order, read in-process. A device
 * whose files are missing or malformed is listed with nulls and a warning; nothing here throws for
 * a bad tree.
 */
export function readInventory(layout: SysfsLayout, options: ReadInventoryOptions = {}): Inventory {
  const plan = planInventory(layout, options);
  const devices = readFunctions(layout, plan.addresses, plan.names, plan.iommuEnabled, plan.warnings);
  return { devices, warnings: plan.warnings, iommuEnabled: plan.iommuEnabled };
}

/** Whether a directory exists and holds anything (without listing a few thousand IOMMU groups). */
function hasEntries(dir: string): boolean {
  let handle: Dir | null = null;
  try {
    handle = opendirSync(dir);
    return handle.readSync() !== null;
  } catch {
    return false;
  } finally {
    handle?.closeSync();
  }
}
