import type { PciAddress } from './address.js';
import { HostdevError } from './errors.js';
import { hostdevDeviceId } from './qemu-args.js';

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
  // QOM lists children in no fixed order: take free ports by name (rp2 before rp10), so the same VM gets the same placement.
  const free = slots.rootPorts
    .filter((port) => !port.occupied)
    .map((port) => port.id)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  if (free.length < missing.length) {
    throw new HostdevError(
      'HOSTDEV_NO_FREE_SLOT',
      `${vm} has ${free.length} free PCIe root port(s) and ${missing.length} device(s) to plug (${missing.join(', ')})`,
      {
        hint: 'Start the VM with one spare -device pcie-root-port,id=NAME,chassis=N per device it may get at run time (hostdev qemu-args adds one per assigned device); nothing was changed.',
        details: { domain: vm, free, devices: missing },
      },
    );
  }
  return { place: missing.map((address, index) => ({ address, id: hostdevDeviceId(address), bus: free[index]! })), present };
}

/** The `device_add` arguments for a placed device: vfio-pci with the host address, as `qemu-args` writes it. */
export function deviceAddArguments(placement: Placement): Readonly<Record<string, string>> {
  return { driver: 'vfio-pci', host: placement.address, id: placement.id, ...(placement.bus === null ? {} : { bus: placement.bus }) };
}
