import type { PciAddress } from '../../src/core/address.js';
import type { PciDevice } from '../../src/core/device.js';
import type { HostUse, HostView } from '../../src/core/plan-types.js';
import { EMPTY_TABLES, type Tables } from '../../src/core/tables.js';
import { hostFiles } from '../../src/sysfs/paths.js';

/** A PciDevice snapshot with plausible defaults, for pure planning tests. */
export function pciDevice(address: string, fields: Partial<PciDevice> = {}): PciDevice {
  return {
    address: address as PciAddress,
    vendor: '8086',
    device: '10ca',
    subsystemVendor: null,
    subsystemDevice: null,
    class: '0200',
    progIf: '00',
    revision: '01',
    vendorName: null,
    deviceName: null,
    driver: 'igbvf',
    driverOverride: null,
    iommuGroup: 10,
    numaNode: null,
    headerType: 'endpoint',
    parent: null,
    physfn: null,
    virtfns: [],
    sriov: null,
    netdevs: [],
    resetMethods: ['flr'],
    flr: true,
    ...fields,
  };
}

export interface ViewInput {
  readonly devices: readonly PciDevice[];
  readonly missing?: readonly string[];
  readonly tables?: Tables;
  readonly loadedDrivers?: readonly string[];
  readonly hostUse?: Readonly<Record<string, readonly HostUse[]>>;
  readonly busSiblings?: Readonly<Record<string, readonly string[]>>;
}

/** A HostView whose IOMMU groups are derived from the devices' iommuGroup fields. */
export function hostView(input: ViewInput): HostView {
  const devices = new Map<PciAddress, PciDevice | null>();
  const groups = new Map<number, PciAddress[]>();
  for (const device of input.devices) {
    devices.set(device.address, device);
    if (device.iommuGroup !== null) {
      groups.set(device.iommuGroup, [...(groups.get(device.iommuGroup) ?? []), device.address]);
    }
  }
  for (const address of input.missing ?? []) devices.set(address as PciAddress, null);
  return {
    devices,
    groups,
    loadedDrivers: new Set(input.loadedDrivers ?? ['vfio-pci', 'igbvf', 'e1000e', 'nvidia', 'snd_hda_intel']),
    hostUse: new Map(Object.entries(input.hostUse ?? {}) as Array<[PciAddress, HostUse[]]>),
    busSiblings: new Map(Object.entries(input.busSiblings ?? {}) as Array<[PciAddress, PciAddress[]]>),
    tables: input.tables ?? EMPTY_TABLES,
    files: hostFiles,
  };
}

export const addr = (text: string): PciAddress => text as PciAddress;
