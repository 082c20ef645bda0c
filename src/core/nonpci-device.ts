import type { PciAddress } from './address.js';
import type { DeviceKey, DeviceKind } from './device-key.js';

/*
 * Host devices that are not PCI functions, as sysfs shows them: USB devices, mediated devices (and
 * the parents that make them), NVMe namespaces and SCSI devices. Each carries its device key.
 */

/** A USB device under /sys/bus/usb/devices (not a root hub, not an interface). */
export interface UsbDevice {
  readonly kind: 'usb';
  readonly key: DeviceKey;
  /** The port path after the bus: "1.2" of usb:1-1.2. */
  readonly port: string;
  readonly bus: number;
  /** The address the kernel gave it on its bus; changes on every plug. */
  readonly devnum: number | null;
  readonly vendor: string | null;
  readonly product: string | null;
  readonly manufacturerName: string | null;
  readonly productName: string | null;
  readonly serial: string | null;
  /** bDeviceClass in hex ("09": a hub). */
  readonly deviceClass: string | null;
  readonly speed: string | null;
  /** The drivers of its interfaces (usb-storage, usbhid, hub), in interface order. */
  readonly interfaceDrivers: readonly (string | null)[];
  /** The PCI function of its host controller. */
  readonly controller: PciAddress | null;
}

/** One type a mediated-device parent offers (mdev_supported_types/TYPE). */
export interface MdevType {
  readonly id: string;
  readonly name: string | null;
  readonly description: string | null;
  readonly availableInstances: number | null;
  readonly deviceApi: string | null;
  /** UUIDs of the mdevs of this type that exist now. */
  readonly devices: readonly string[];
}

/** A device that makes mediated devices: a PCI function (a vGPU card) or a virtual one (mtty). */
export interface MdevParent {
  /** The parent's sysfs name: a PCI address, or "mtty" for a virtual parent. */
  readonly name: string;
  /** Its PCI key when the parent is a PCI function, else null. */
  readonly key: DeviceKey | null;
  readonly types: readonly MdevType[];
}

export interface MdevDevice {
  readonly kind: 'mdev';
  readonly key: DeviceKey;
  readonly uuid: string;
  /** The parent's sysfs name (a PCI address, or a virtual device's name). */
  readonly parent: string;
  readonly type: string | null;
  readonly deviceApi: string | null;
  readonly driver: string | null;
  readonly iommuGroup: number | null;
}

/** A namespace of an NVMe controller, while the controller is on the nvme driver. */
export interface NvmeNamespace {
  readonly kind: 'nvme';
  readonly key: DeviceKey;
  readonly controller: PciAddress;
  /** The controller's name (nvme0). */
  readonly instance: string;
  readonly nsid: number;
  /** The namespace's block device (nvme0n1). */
  readonly blockDevice: string;
  /** Size in 512-byte sectors, as the block device's `size`. */
  readonly sectors: number | null;
  readonly model: string | null;
  readonly serial: string | null;
}

/** SCSI peripheral types (SPC's peripheral device type, the `type` attribute) by number. */
export const SCSI_TYPES: Readonly<Record<number, string>> = {
  0: 'disk',
  1: 'tape',
  2: 'printer',
  3: 'processor',
  4: 'worm',
  5: 'cdrom',
  6: 'scanner',
  7: 'optical',
  8: 'changer',
  9: 'comm',
  12: 'raid',
  13: 'enclosure',
};

export interface ScsiDevice {
  readonly kind: 'scsi';
  readonly key: DeviceKey;
  readonly host: number;
  readonly bus: number;
  readonly target: number;
  readonly lun: number;
  readonly vendor: string | null;
  readonly model: string | null;
  readonly rev: string | null;
  /** The peripheral type's number and name (0 disk, 1 tape, 5 cdrom, 8 changer). */
  readonly type: number | null;
  readonly typeName: string | null;
  /** The generic node that gives a VM the device: /dev/sgN's name. */
  readonly sg: string | null;
  readonly blockDevice: string | null;
  readonly driver: string | null;
  /** The PCI function of its host adapter, when it is one. */
  readonly adapter: PciAddress | null;
}

export type NonPciDevice = UsbDevice | MdevDevice | NvmeNamespace | ScsiDevice;

export type NonPciKind = Exclude<DeviceKind, 'pci'>;

/** Everything of these kinds the host shows, with what could not be read. */
export interface NonPciInventory {
  readonly usb: readonly UsbDevice[];
  readonly mdevParents: readonly MdevParent[];
  readonly mdev: readonly MdevDevice[];
  readonly nvme: readonly NvmeNamespace[];
  readonly scsi: readonly ScsiDevice[];
  readonly warnings: readonly string[];
}

/** "1050:0407 Yubico YubiKey OTP+FIDO+CCID"-like description of any kind, for tables. */
export function describeNonPci(device: NonPciDevice): string {
  switch (device.kind) {
    case 'usb':
      return [device.manufacturerName, device.productName].filter((part) => part !== null).join(' ') || '-';
    case 'mdev':
      return `${device.type ?? '?'} on ${device.parent}`;
    case 'nvme':
      return `${device.blockDevice}${device.model === null ? '' : ` (${device.model})`}`;
    case 'scsi':
      return [device.typeName, device.vendor, device.model].filter((part) => part !== null).join(' ') || '-';
  }
}

/** The ID column: vendor:product for USB, the type for an mdev, the controller for NVMe, /dev/sgN for SCSI. */
export function idCell(device: NonPciDevice): string {
  switch (device.kind) {
    case 'usb':
      return `${device.vendor ?? '????'}:${device.product ?? '????'}`;
    case 'mdev':
      return device.deviceApi ?? '-';
    case 'nvme':
      return device.controller;
    case 'scsi':
      return device.sg === null ? '-' : `/dev/${device.sg}`;
  }
}

/** The driver column: the mdev's driver, a USB device's interface drivers, an SCSI device's upper driver. */
export function driverCell(device: NonPciDevice): string {
  switch (device.kind) {
    case 'usb': {
      const names = [...new Set(device.interfaceDrivers.filter((d): d is string => d !== null))];
      return names.length > 0 ? names.join(',') : '-';
    }
    case 'nvme':
      return 'nvme';
    default:
      return device.driver ?? '-';
  }
}
