import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import type { HostUse, HostView } from '../core/plan-types.js';
import { isStubDriver } from '../core/stub-driver.js';
import { vfioStubFor } from '../core/vfio-variant.js';
import type { HostUsagePort } from '../host/host-usage-port.js';
import { hostFiles } from '../sysfs/paths.js';
import type { DeviceWait, HostReader } from './host-reader.js';
import type { TableSource } from './table-source.js';

export interface ViewScope {
  /** The devices of the request (and, for reattach/status, the inactive entries to check). */
  readonly addresses: readonly PciAddress[];
  /** Drivers whose presence the plan needs to know (the requested stub driver). */
  readonly drivers: readonly string[];
  /** Ask the host-usage port about devices that would leave their host driver. */
  readonly hostUse: boolean;
  /** The request names no stub driver: find each device's own in modules.alias (HostView.vfioStubs). */
  readonly vfioStubs?: boolean;
}

/**
 * Reads what a plan needs: the devices, the members of their IOMMU groups, the functions that
 * share a bus with a device whose reset is bus-level, which drivers are loaded, host usage.
 */
export async function buildHostView(
  reader: HostReader,
  hostUsage: HostUsagePort,
  source: TableSource,
  scope: ViewScope,
  wait: DeviceWait = {},
): Promise<HostView> {
  const devices = new Map<PciAddress, PciDevice | null>();
  const readAll = async (addresses: readonly PciAddress[]): Promise<void> => {
    const unread = [...new Set(addresses.filter((address) => !devices.has(address)))];
    const read = await reader.devices(unread, wait);
    for (const address of unread) devices.set(address, read.get(address) ?? null);
  };
  // The group members are found from the iommu_group links first, so that one bounded read takes
  // the requested devices and their companions together.
  const members = new Map<number, readonly PciAddress[]>();
  for (const address of scope.addresses) {
    const group = reader.groupOf(address);
    if (group !== null && !members.has(group)) members.set(group, reader.groupMembers(group));
  }
  await readAll([...scope.addresses, ...[...members.values()].flat()]);
  const requested = scope.addresses.map((address) => devices.get(address) ?? null);

  const groups = new Map<number, readonly PciAddress[]>();
  const busSiblings = new Map<PciAddress, readonly PciAddress[]>();
  const around: PciAddress[] = [];
  for (const device of requested) {
    if (device === null) continue;
    if (device.iommuGroup !== null && !groups.has(device.iommuGroup)) {
      const found = members.get(device.iommuGroup) ?? reader.groupMembers(device.iommuGroup);
      groups.set(device.iommuGroup, found);
      around.push(...found);
    }
    if (device.resetMethods[0] === 'bus') {
      const siblings = reader.busFunctions(device.address);
      busSiblings.set(device.address, siblings);
      around.push(...siblings);
    }
  }
  await readAll(around);

  // The entries of every device read, and only those: the plan looks nothing else up.
  const tables = source.lookup([...scope.addresses, ...devices.keys()]);
  const wanted = new Set(scope.drivers);
  let vfioStubs: Map<PciAddress, string> | undefined;
  if (scope.vfioStubs === true) {
    const aliases = reader.vfioAliases()?.aliases ?? [];
    vfioStubs = new Map();
    for (const [address, device] of devices) if (device !== null) vfioStubs.set(address, vfioStubFor(device, aliases));
    for (const stub of vfioStubs.values()) wanted.add(stub);
  }
  for (const entry of [...tables.active, ...tables.inactive]) {
    wanted.add(entry.stubDriver);
    if (entry.originalDriver !== null) wanted.add(entry.originalDriver);
  }
  for (const device of devices.values()) if (device?.driver) wanted.add(device.driver);
  const loadedDrivers = new Set([...wanted].filter((name) => reader.driverLoaded(name)));

  let hostUse: ReadonlyMap<PciAddress, readonly HostUse[]> = new Map();
  if (scope.hostUse) {
    const leaving = [...devices.values()].filter(
      (device): device is PciDevice => device !== null && !isStubDriver(device.driver),
    );
    hostUse = await hostUsage.usesOf(leaving);
  }
  return {
    devices,
    groups,
    loadedDrivers,
    hostUse,
    busSiblings,
    tables,
    ...(vfioStubs !== undefined ? { vfioStubs } : {}),
    files: hostFiles,
  };
}
