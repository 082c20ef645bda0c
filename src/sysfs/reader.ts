// The inventory reader: one entry point for code outside src/sysfs.
export { readInventory, type ReadInventoryOptions } from './inventory.js';
export { readDevice, readVirtfnLinks, type ReadDeviceOptions, type VirtfnLink } from './read-device.js';
export { cachedPciIds, loadPciIds, PciIdsDatabase, DEFAULT_PCI_IDS_PATH, type PciNames } from './pci-ids.js';
