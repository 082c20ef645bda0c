import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import type { HostUse, HostView, VfNetLookup } from '../core/plan-types.js';
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
  /** VFs whose network config the request sets: where it lives (HostView.vfNet). */
  readonly vfNet?: readonly PciAddress[];
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
    const group = await reader.groupOf(address);
    if (group !== null && !members.has(group)) members.set(group, await reader.groupMembers(group));
  }
  await readAll([...scope.addresses, ...[...members.values()].flat()]);
  const requested = scope.addresses.map((address) => devices.get(address) ?? null);

  const groups = new Map<number, readonly PciAddress[]>();
  const busSiblings = new Map<PciAddress, readonly PciAddress[]>();
  const around: PciAddress[] = [];
  for (const device of requested) {
    if (device === null) continue;
    if (device.iommuGroup !== null && !groups.has(device.iommuGroup)) {
      const found = members.get(device.iommuGroup) ?? (await reader.groupMembers(device.iommuGroup));
      groups.set(device.iommuGroup, found);
      around.push(...found);
    }
    if (device.resetMethods[0] === 'bus') {
      const siblings = await reader.busFunctions(device.address);
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
  const loaded = await Promise.all([...wanted].map(async (name) => ((await reader.driverLoaded(name)) ? [name] : [])));
  const loadedDrivers = new Set(loaded.flat());

  let hostUse: ReadonlyMap<PciAddress, readonly HostUse[]> = new Map();
  if (scope.hostUse) {
    const leaving = [...devices.values()].filter(
      (device): device is PciDevice => device !== null && !isStubDriver(device.driver),
    );
    hostUse = await hostUsage.usesOf(leaving);
  }
  const vfNet = scope.vfNet === undefined || scope.vfNet.length === 0 ? undefined : await vfNetLookups(reader, scope.vfNet);
  const saved = source.vfConfigs?.() ?? [];
  return {
    ...(vfNet === undefined ? {} : { vfNet }),
    ...(saved.length === 0 ? {} : { savedVfNet: new Map(saved.map((row) => [row.address, row])) }),
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

/**
 * Each VF's PF, index and the PF's interface, from links and directory listings only: a PF whose
 * sriov_numvfs or driver_override the kernel holds (a VF removal waiting for its VM) never blocks it.
 */
async function vfNetLookups(reader: HostReader, addresses: readonly PciAddress[]): Promise<Map<PciAddress, VfNetLookup>> {
  const found = new Map<PciAddress, VfNetLookup>();
  for (const address of addresses) found.set(address, await vfNetLookup(reader, address));
  return found;
}

export async function vfNetLookup(reader: HostReader, address: PciAddress): Promise<VfNetLookup> {
  if (!(await reader.exists(address))) return { kind: 'gone' };
  const pf = await reader.physfnOf(address);
  if (pf === null) return { kind: 'not-vf', driver: await reader.driverOf(address) };
  // N of the PF's virtfnN link: the index `ip link set PF vf N` means (never a position in a list).
  const vfIndex = (await reader.virtfnLinks(pf)).find((link) => link.address === address)?.index ?? -1;
  const pfNetdev = (await reader.exists(pf)) ? (await reader.netdevsOf(pf))[0] : undefined;
  if (vfIndex < 0 || pfNetdev === undefined) return { kind: 'no-pf-netdev', pf, pfDriver: await reader.driverOf(pf) };
  return { kind: 'target', target: { address, pf, pfNetdev, vfIndex } };
}
