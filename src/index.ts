// Public library entry: re-exports only. Each module below is one concern.
export * from './core/address.js';
export * from './core/device.js';
export * from './core/errors.js';
export * from './core/iommu.js';
export { SysfsLayout } from './sysfs/paths.js';
export {
  readInventory,
  readDevice,
  loadPciIds,
  type ReadInventoryOptions,
  type ReadDeviceOptions,
  type PciNames,
} from './sysfs/reader.js';
export { FsKernelPort, KernelWriteError, type KernelPort } from './sysfs/kernel-port.js';
export * from './core/vfio-variant.js';
export { readVfioAliases, type VfioAliasTable } from './host/modules-alias.js';
