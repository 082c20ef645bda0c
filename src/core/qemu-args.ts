import type { PciAddress } from './address.js';
import { HostdevError } from './errors.js';
import { deviceArgument, guestDevice } from './guest-device.js';

/**
 * QEMU command-line arguments for the devices a domain was given: one `-device vfio-pci` per
 * device, each with an id derived from its address (stable across calls and processes, so QMP
 * commands and events can name it). On q35 each device sits behind its own pcie-root-port: a
 * device placed directly on the root complex (pcie.0) cannot be hot-unplugged, so the VM could
 * never honour the kernel's request to give a VF back (the seed's "blocked" outcome).
 */
export type QemuMachine = 'q35' | 'pc';

interface QemuArgsOptions {
  /** q35 (PCI Express, the default) or pc (i440fx: devices go on the conventional PCI root bus). */
  readonly machine?: QemuMachine;
  /** Chassis number of the first root port; pick one the VM's own root ports do not use. Default 1. */
  readonly firstChassis?: number;
  /** Mediated devices (UUIDs): vfio-pci by their sysfs path, each behind a root port after the PCI functions' (q35). */
  readonly mdevs?: readonly string[];
  /** USB devices by where they are plugged: usb-host on an xHCI controller hostdev adds (id hostdev-xhci). */
  readonly usb?: readonly { readonly bus: number; readonly ports: readonly number[] }[];
}

/** The id of the xHCI controller the USB devices go on. */
export const HOSTDEV_XHCI_ID = 'hostdev-xhci';

/** The QEMU device id hostdev gives a device: "hostdev-0000_03_10_2" (libvirt nodedev style). */
export function hostdevDeviceId(address: PciAddress): string {
  return `hostdev-${address.replace(/[:.]/g, '_')}`;
}

/** The PCI address a hostdev device id names (`hostdev-0000_01_10_0`), or null for any other id. */
export function addressOfDeviceId(id: string): PciAddress | null {
  const match = /^hostdev-([0-9a-f]{4})_([0-9a-f]{2})_([0-9a-f]{2})_([0-7])$/.exec(id);
  return match === null ? null : (`${match[1]}:${match[2]}:${match[3]}.${match[4]}` as PciAddress);
}

const MAX_CHASSIS = 255;

/** Devices in address order, so the same set always yields the same arguments. */
export function qemuArgs(devices: readonly { readonly address: PciAddress }[], options: QemuArgsOptions = {}): string[] {
  const machine = options.machine ?? 'q35';
  const firstChassis = options.firstChassis ?? 1;
  const addresses = [...new Set(devices.map((d) => d.address))].sort();
  const vfio = [
    ...addresses.map((address) => {
      const id = hostdevDeviceId(address);
      return { id, props: (bus: string | null) => ({ driver: 'vfio-pci', host: address, id, ...(bus === null ? {} : { bus }) }) };
    }),
    ...[...new Set(options.mdevs ?? [])].sort().map((uuid) => {
      const mdev = guestDevice({ kind: 'mdev', uuid });
      return { id: mdev.id, props: (bus: string | null) => mdev.props(bus) };
    }),
  ];
  if (machine === 'q35' && (firstChassis < 1 || firstChassis + vfio.length - 1 > MAX_CHASSIS)) {
    throw new HostdevError(
      'HOSTDEV_USAGE',
      `${vfio.length} root ports from chassis ${firstChassis} do not fit in chassis numbers 1-${MAX_CHASSIS}`,
      { hint: 'Choose a smaller --first-chassis.' },
    );
  }
  const args: string[] = [];
  vfio.forEach(({ id, props }, index) => {
    if (machine === 'q35') {
      const port = `${id}-rp`;
      args.push('-device', `pcie-root-port,id=${port},chassis=${firstChassis + index},slot=0`);
      args.push('-device', deviceArgument(props(port)));
    } else {
      args.push('-device', deviceArgument(props(null)));
    }
  });
  const usb = [...(options.usb ?? [])].sort((a, b) => a.bus - b.bus || a.ports.join('.').localeCompare(b.ports.join('.')));
  if (usb.length > 0) args.push('-device', `qemu-xhci,id=${HOSTDEV_XHCI_ID}`);
  for (const device of usb) args.push('-device', deviceArgument(guestDevice({ kind: 'usb', ...device }).props(`${HOSTDEV_XHCI_ID}.0`)));
  return args;
}
