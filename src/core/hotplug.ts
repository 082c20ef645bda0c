import type { PciAddress } from './address.js';
import type { DeviceKey } from './device-key.js';
import { HostdevError } from './errors.js';
import type { GuestDevice, QemuProps, QemuValue, ScsiUnit } from './guest-device.js';
import { HOSTDEV_XHCI_ID, hostdevDeviceId } from './qemu-args.js';
import { HOSTDEV_SCSI_CONTROLLER_ID } from './scsi.js';

/**
 * Where devices go in a running VM. On q35 a hot-plugged device needs a PCI Express root port of
 * its own that nothing occupies yet (QEMU cannot add root ports to a running machine, and a device
 * on the root complex could never be unplugged); on pc (i440fx) it goes on the root bus. The ids
 * are those `qemu-args` gives, so a device started either way is unplugged the same way.
 */

export interface VmSlots {
  readonly machine: 'q35' | 'pc';
  /** Root ports with an id (their bus is named after it). */
  readonly rootPorts: readonly { readonly id: string; readonly occupied: boolean }[];
  /** Ids of the devices the VM has now (QEMU's /machine/peripheral). */
  readonly deviceIds: ReadonlySet<string>;
}

export interface Placement {
  readonly address: PciAddress;
  readonly id: string;
  /** The root port's bus; null on pc (the root bus). */
  readonly bus: string | null;
}

interface HotplugLayout {
  readonly place: readonly Placement[];
  /** Devices whose id the VM already has: not plugged again. */
  readonly present: readonly PciAddress[];
}

/** One free root port per device not already in the VM, in address order; refuses when ports run short. */
export function placeDevices(addresses: readonly PciAddress[], slots: VmSlots, vm: string): HotplugLayout {
  const wanted = [...new Set(addresses)].sort();
  const present = wanted.filter((address) => slots.deviceIds.has(hostdevDeviceId(address)));
  const missing = wanted.filter((address) => !slots.deviceIds.has(hostdevDeviceId(address)));
  if (slots.machine === 'pc') return { place: missing.map((address) => ({ address, id: hostdevDeviceId(address), bus: null })), present };
  const ports = freePorts(slots, missing, vm);
  return { place: missing.map((address, index) => ({ address, id: hostdevDeviceId(address), bus: ports[index]! })), present };
}

/** The free root ports, by name (rp2 before rp10), one per device; refuses when ports run short. */
function freePorts(slots: VmSlots, devices: readonly string[], vm: string): string[] {
  // QOM lists children in no fixed order: take free ports by name, so the same VM gets the same placement.
  const free = slots.rootPorts
    .filter((port) => !port.occupied)
    .map((port) => port.id)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (free.length < devices.length) {
    throw new HostdevError(
      'HOSTDEV_NO_FREE_SLOT',
      `${vm} has ${free.length} free PCIe root port(s) and ${devices.length} device(s) to plug (${devices.join(', ')})`,
      {
        hint: 'Start the VM with one spare -device pcie-root-port,id=NAME,chassis=N per device it may get at run time (hostdev qemu-args adds one per assigned device); nothing was changed.',
        details: { domain: vm, free, devices },
      },
    );
  }
  return free.slice(0, devices.length);
}

/** The `device_add` arguments for a placed device: vfio-pci with the host address, as `qemu-args` writes it. */
export function deviceAddArguments(placement: Placement): Readonly<Record<string, string>> {
  return { driver: 'vfio-pci', host: placement.address, id: placement.id, ...(placement.bus === null ? {} : { bus: placement.bus }) };
}

/** The VM's USB and SCSI controllers (those with an id: their buses are named after it) and the SCSI units in use. */
export interface VmBuses {
  readonly usb: readonly { readonly id: string; readonly type: string }[];
  readonly scsi: readonly { readonly id: string; readonly type: string }[];
  readonly scsiUnits: readonly ScsiUnit[];
}

/** Which controller's bus a kind's devices go on, when the caller names one ("xhci.0"). */
export interface BusChoice {
  readonly usbBus?: string;
  readonly scsiBus?: string;
}

export interface GuestPlacement {
  readonly key: DeviceKey;
  readonly id: string;
  /** A root port's bus, a USB bus, a SCSI unit, or null (pc's root bus). */
  readonly at: string | ScsiUnit | null;
  /** The blockdev-add arguments (NVMe, SCSI), else null. */
  readonly blockdev: Readonly<Record<string, QemuValue>> | null;
  /** The device_add arguments. */
  readonly device: QemuProps;
}

interface GuestLayout {
  readonly place: readonly GuestPlacement[];
  /** Devices whose id the VM already has: not plugged again. */
  readonly present: readonly DeviceKey[];
}

const XHCI_FIRST = (type: string): number => (type.includes('xhci') ? 0 : 1);

function controllerBus(kind: 'usb' | 'scsi', controllers: VmBuses['usb'], preferred: string, named: string | undefined, vm: string, keys: readonly DeviceKey[]): string {
  if (named !== undefined) return named;
  const chosen =
    controllers.find((c) => c.id === preferred) ??
    [...controllers].sort((a, b) => (kind === 'usb' ? XHCI_FIRST(a.type) - XHCI_FIRST(b.type) : 0) || a.id.localeCompare(b.id, 'en', { numeric: true }))[0];
  if (chosen !== undefined) return `${chosen.id}.0`;
  const what = kind === 'usb' ? 'USB controller' : 'virtio-scsi controller';
  const start = kind === 'usb' ? `-device qemu-xhci,id=${preferred}` : `-device virtio-scsi-pci,id=${preferred}`;
  throw new HostdevError('HOSTDEV_NO_CONTROLLER', `${vm} has no ${what} with an id for ${keys.join(', ')} to be plugged onto`, {
    hint: `Start the VM with ${start} (as hostdev qemu-args does), or name the bus with --${kind}-bus; nothing was changed.`,
    details: { domain: vm, devices: keys, kind },
  });
}

const LUNS_PER_TARGET = 256;

/**
 * Each device not already in the VM gets its seat: a free root port (q35) or the root bus (pc) for
 * an mdev and an NVMe namespace's virtio disk, the USB controller's bus for a USB device, the next
 * free LUN of target 0 on the SCSI controller for a SCSI device. Refuses, before anything changes,
 * when ports or a controller are missing.
 */
export function placeGuestDevices(
  wanted: readonly { readonly key: DeviceKey; readonly guest: GuestDevice }[],
  slots: VmSlots,
  buses: VmBuses,
  vm: string,
  choice: BusChoice = {},
): GuestLayout {
  const unique = [...new Map(wanted.map((w) => [w.key, w])).values()].sort((a, b) => a.key.localeCompare(b.key, 'en', { numeric: true }));
  const present = unique.filter((w) => slots.deviceIds.has(w.guest.id)).map((w) => w.key);
  const missing = unique.filter((w) => !slots.deviceIds.has(w.guest.id));
  const onPci = missing.filter((w) => w.guest.seat === 'pci');
  const ports = slots.machine === 'pc' ? onPci.map(() => null) : freePorts(slots, onPci.map((w) => w.key), vm);
  const onUsb = missing.filter((w) => w.guest.seat === 'usb');
  const onScsi = missing.filter((w) => w.guest.seat === 'scsi');
  const usbBus = onUsb.length === 0 ? null : controllerBus('usb', buses.usb, HOSTDEV_XHCI_ID, choice.usbBus, vm, onUsb.map((w) => w.key));
  const scsiBus = onScsi.length === 0 ? null : controllerBus('scsi', buses.scsi, HOSTDEV_SCSI_CONTROLLER_ID, choice.scsiBus, vm, onScsi.map((w) => w.key));
  const taken = new Set(buses.scsiUnits.filter((u) => u.bus === scsiBus && u.channel === 0 && u.scsiId === 0).map((u) => u.lun));
  const luns = [...Array(LUNS_PER_TARGET).keys()].filter((lun) => !taken.has(lun)).slice(0, onScsi.length);
  if (luns.length < onScsi.length) {
    throw new HostdevError('HOSTDEV_NO_CONTROLLER', `${scsiBus} of ${vm} has no free LUN of target 0 left for ${onScsi.map((w) => w.key).join(', ')}`, {
      hint: 'Start the VM with a second -device virtio-scsi-pci,id=NAME and name its bus with --scsi-bus NAME.0; nothing was changed.',
      details: { domain: vm, devices: onScsi.map((w) => w.key), kind: 'scsi' },
    });
  }
  const seatOf = new Map<DeviceKey, string | ScsiUnit | null>([
    ...onPci.map((w, index) => [w.key, ports[index] ?? null] as const),
    ...onUsb.map((w) => [w.key, usbBus] as const),
    ...onScsi.map((w, index) => [w.key, { bus: scsiBus!, channel: 0, scsiId: 0, lun: luns[index]! }] as const),
  ]);
  const place = missing.map(({ key, guest }) => {
    const at = seatOf.get(key) ?? null;
    return { key, id: guest.id, at, blockdev: guest.blockdev, device: guest.props(at) };
  });
  return { place, present };
}
