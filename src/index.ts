// Public library entry: re-exports only. Each module below is one concern.
// The service is the way in; the simulator has its own entry (hostdev/sim).
export * from './core/address.js';
export * from './core/device-key.js';
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
export { FsKernelPort, KernelWriteError, ModuleLoadError, type KernelPort } from './sysfs/kernel-port.js';
export * from './core/vfio-variant.js';
export { readVfioAliases, type VfioAliasTable } from './host/modules-alias.js';
export {
  HostdevService,
  DEFAULT_STATE_DIR,
  type HostdevServiceOptions,
  type AssignRequest,
  type ReleaseRequest,
  type DetachRequest,
  type ReattachRequest,
  type ResetRequest,
  type HandOverRequest,
  type VfSetCountRequest,
  type VfListRequest,
  type VfForgetRequest,
  type AdoptRequest,
  type DomainReport,
  type DomainRef,
  type HotplugRequest,
  type HotplugReport,
  type UnplugRequest,
  type UnplugReport,
  type AssignResult,
  type ReleaseResult,
  type QemuArgsRequest,
  type QemuArgsReport,
  type ForgetReport,
  type VfNetRequests,
  type ListFilter,
  type InventoryResult,
  type WatchRequest,
  type WatchNotice,
} from './service/hostdev-service.js';
export {
  HostdevClient,
  DEFAULT_SOCKET,
  type HostdevClientOptions,
  type ClientResult,
  type ApiIndexJson,
  type OperationJson,
  type MutationOptions,
  type AssignBodyJson,
} from './client/hostdev-client.js';
export type { LiveEvent } from './manager/watch-live.js';
export type { WatchSourceChoice } from './events/sources.js';
export type { ShowReport, GroupReport, DeviceJson, DeviceWithOwnership, VfioStubJson } from './manager/inventory-reports.js';
export type { OperationReport, ReleaseReport, FailureReport } from './manager/reports.js';
export type { StatusReport } from './manager/status.js';
export type { ReconcileScope, RecoveryReport, RepairedDevice, PrunedEntry, DriftEntry, VfConfigRepair } from './manager/recovery.js';
export type { InFlightOperation } from './manager/in-flight.js';
export type { VfListReport, VfListEntry, SetCountReport } from './manager/vf-lifecycle.js';
export type { DetachOptions, OperationMode } from './manager/hostdev-manager.js';
export type { DeviceWait } from './manager/host-reader.js';
export type { VfNetRequest } from './core/vf-net-config.js';
export type { ActiveEntry, InactiveEntry, Owner, Tables } from './core/tables.js';
export type { HostUsagePort } from './host/host-usage-port.js';
export type { NetPort } from './net/net-port.js';
