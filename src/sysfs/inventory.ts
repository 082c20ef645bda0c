import { tryParseAddress, type PciAddress } from '../core/address.js';
import type { Inventory, InventoryWarning, PciDevice } from '../core/device.js';
import { FileReader } from './file-reader.js';
import { cachedPciIds, DEFAULT_PCI_IDS_PATH, type PciNames } from './pci-ids.js';
import type { SysfsLayout } from './paths.js';
import { DeviceReadContext, readDeviceIn } from './read-device.js';

export interface ReadInventoryOptions {
  /** Names source; null for no names (and no warning). Default: pci.ids at `pciIdsPath`. */
  readonly names?: PciNames | null;
  /** Default /usr/share/misc/pci.ids; never under --root. */
  readonly pciIdsPath?: string;
}

/**
 * Every PCI function under ROOT/sys/bus/pci/devices, in address order. A device whose files are
 * missing or malformed is listed with nulls and a warning; nothing here throws for a bad tree.
 */
export function readInventory(layout: SysfsLayout, options: ReadInventoryOptions = {}): Inventory {
  const warnings: InventoryWarning[] = [];
  const warn = (warning: InventoryWarning): void => {
    warnings.push(warning);
  };
  const reader = new FileReader();

  const listing = reader.names(layout.pciDevicesDir);
  if (listing === null) {
    warn({ address: '', message: `cannot list ${layout.pciDevicesDir}: ${reader.errno}` });
    return { devices: [], warnings, iommuEnabled: false };
  }
  const addresses: PciAddress[] = [];
  for (const name of listing) {
    const address = tryParseAddress(name);
    if (address !== null && address === name) addresses.push(address);
    else warn({ address: name, message: 'not a PCI address; skipped' });
  }
  addresses.sort();

  let names: PciNames | null = null;
  if (options.names !== undefined) {
    names = options.names;
  } else if (addresses.length > 0) {
    const idsPath = options.pciIdsPath ?? DEFAULT_PCI_IDS_PATH;
    names = cachedPciIds(idsPath);
    if (names === null) warn({ address: '', message: `no PCI ID database at ${idsPath}: vendor and device names are null` });
  }

  const groups = reader.names(layout.iommuGroupsDir);
  const iommuEnabled = groups !== null && groups.length > 0;
  const context = new DeviceReadContext(layout, names, warn, iommuEnabled);
  const devices: PciDevice[] = [];
  for (const address of addresses) {
    const device = readDeviceIn(context, address);
    if (device !== null) devices.push(device);
  }
  return { devices, warnings, iommuEnabled };
}
