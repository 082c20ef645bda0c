import type { PciAddress } from './address.js';
import type { DeviceId } from './device-key.js';

/*
 * How each kind of host device other than a PCI function is spelled to QEMU: the block node QEMU
 * opens first (NVMe, SCSI), the device it shows the guest, and what that device must sit on. The
 * one place that knows these spellings: `qemu-args` writes them as -blockdev/-device arguments and
 * `hotplug` sends them as blockdev-add/device_add, so a device started either way has the same id
 * and is unplugged the same way.
 */

export type QemuValue = string | number | boolean;
export type QemuProps = Readonly<Record<string, QemuValue>>;

/** What the device must be plugged into: a PCIe root port of its own (q35), a USB bus, a SCSI bus. */
export type GuestSeat = 'pci' | 'usb' | 'scsi';

/** Where a SCSI device sits on its controller's bus. */
export interface ScsiUnit {
  readonly bus: string;
  readonly channel: number;
  readonly scsiId: number;
  readonly lun: number;
}

type IdOf<K extends DeviceId['kind']> = Extract<DeviceId, { readonly kind: K }>;

export type GuestSource =
  | IdOf<'mdev'>
  | IdOf<'usb'>
  | IdOf<'nvme'>
  | (IdOf<'scsi'> & {
      /** The generic node QEMU opens (/dev/sgN's name). */
      readonly sg: string;
      /** libvirt's <readonly/>: QEMU opens the node read-only. */
      readonly readOnly?: boolean;
    });

export interface GuestDevice {
  /** QEMU's id for the device (device_add, device_del, DEVICE_DELETED). */
  readonly id: string;
  /** The block node added before the device and deleted after it, or null. */
  readonly blockdev: Readonly<Record<string, QemuValue>> | null;
  readonly seat: GuestSeat;
  /** device_add's arguments on the given bus (a root port, a USB bus; null: the default bus) or SCSI unit. */
  props(at: string | ScsiUnit | null): QemuProps;
}

/** The QEMU device id of a mediated device: "hostdev-mdev-UUID". */
export function mdevDeviceId(uuid: string): string {
  return `hostdev-mdev-${uuid}`;
}

/** The QEMU device id of a USB device: "hostdev-usb-1-1_2" (bus, then the port path). */
export function usbDeviceId(bus: number, ports: readonly number[]): string {
  return `hostdev-usb-${bus}-${ports.join('_')}`;
}

/** The QEMU node and device ids of a namespace: "hostdev-nvme-0000_01_00_0-1". */
export function nvmeDeviceId(controller: PciAddress, namespace: number): string {
  return `hostdev-nvme-${controller.replace(/[:.]/g, '_')}-${namespace}`;
}

/** The QEMU device id of a SCSI device: "hostdev-scsi-2_0_1_0". */
export function scsiDeviceId(device: { readonly host: number; readonly bus: number; readonly target: number; readonly lun: number }): string {
  return `hostdev-scsi-${device.host}_${device.bus}_${device.target}_${device.lun}`;
}

/** The QEMU id of a device and the node-name of the block node behind it (NVMe, SCSI; else null). */
export function guestNames(source: IdOf<'mdev'> | IdOf<'usb'> | IdOf<'nvme'> | IdOf<'scsi'>): { readonly id: string; readonly node: string | null } {
  switch (source.kind) {
    case 'mdev':
      return { id: mdevDeviceId(source.uuid), node: null };
    case 'usb':
      return { id: usbDeviceId(source.bus, source.ports), node: null };
    case 'nvme':
      return { id: nvmeDeviceId(source.controller, source.namespace), node: `hd-nvme-${source.controller.replace(/[:.]/g, '_')}-${source.namespace}` };
    case 'scsi': {
      const id = scsiDeviceId(source);
      return { id, node: fitNodeName(`${id}-backend`) };
    }
  }
}

/** QEMU keeps a block node's name in 32 bytes with its NUL: a longer one is refused ("Node name too long"). */
const MAX_NODE_NAME = 31;

/** The name itself when QEMU takes it, else "hd-" and an FNV-1a hash of it (stable across calls and processes). */
function fitNodeName(name: string): string {
  if (name.length <= MAX_NODE_NAME) return name;
  let hash = 0x811c9dc5;
  for (const char of name) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return `hd-${hash.toString(16).padStart(8, '0')}`;
}

const onBus = (props: QemuProps, at: string | ScsiUnit | null): QemuProps => (typeof at === 'string' ? { ...props, bus: at } : props);

export function guestDevice(source: GuestSource): GuestDevice {
  switch (source.kind) {
    case 'mdev': {
      const { id } = guestNames(source);
      return { id, blockdev: null, seat: 'pci', props: (at) => onBus({ driver: 'vfio-pci', sysfsdev: `/sys/bus/mdev/devices/${source.uuid}`, id }, at) };
    }
    case 'usb': {
      const { id } = guestNames(source);
      return { id, blockdev: null, seat: 'usb', props: (at) => onBus({ driver: 'usb-host', hostbus: source.bus, hostport: source.ports.join('.'), id }, at) };
    }
    case 'nvme': {
      // libvirt's <disk type='nvme'>: QEMU's own NVMe driver opens the controller (on vfio-pci), a virtio disk shows the namespace.
      const { id, node } = guestNames(source) as { id: string; node: string };
      return {
        id,
        blockdev: { driver: 'nvme', device: source.controller, namespace: source.namespace, 'node-name': node, 'auto-read-only': true, discard: 'unmap' },
        seat: 'pci',
        props: (at) => onBus({ driver: 'virtio-blk-pci', drive: node, id }, at),
      };
    }
    case 'scsi': {
      // libvirt's <hostdev type='scsi'> with -blockdev: the generic node as a host_device, a scsi-generic device on a SCSI bus.
      const { id, node } = guestNames(source) as { id: string; node: string };
      return {
        id,
        blockdev: { driver: 'host_device', filename: `/dev/${source.sg}`, 'node-name': node, 'read-only': source.readOnly === true },
        seat: 'scsi',
        props: (at) => {
          const unit = typeof at === 'object' && at !== null ? at : null;
          return {
            driver: 'scsi-generic',
            ...(unit === null ? {} : { bus: unit.bus, channel: unit.channel, 'scsi-id': unit.scsiId, lun: unit.lun }),
            drive: node,
            id,
          };
        },
      };
    }
  }
}

/** A device's arguments as QEMU's command line takes them after -device: "driver,key=value,...". */
export function deviceArgument(props: QemuProps): string {
  const { driver, ...rest } = props;
  return [String(driver), ...Object.entries(rest).map(([key, value]) => `${key}=${value === true ? 'on' : value === false ? 'off' : String(value)}`)].join(',');
}
