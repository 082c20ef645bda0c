import type { PciAddress } from './address.js';
import type { Inventory, PciDevice } from './device.js';

/**
 * The functions whose inventory entries a change of `touched` can alter: each one, its PF (its VF
 * list and counts) and the members of its IOMMU group, as the inventory knew them.
 */
export function affectedFunctions(inventory: Inventory, touched: readonly PciAddress[]): PciAddress[] {
  const byAddress = new Map(inventory.devices.map((device) => [device.address, device]));
  const affected = new Set<PciAddress>(touched);
  for (const address of touched) {
    const device = byAddress.get(address);
    if (device === undefined) continue;
    if (device.physfn !== null) affected.add(device.physfn);
    if (device.iommuGroup !== null) {
      for (const other of inventory.devices) if (other.iommuGroup === device.iommuGroup) affected.add(other.address);
    }
  }
  return [...affected];
}

/**
 * The inventory with the functions read again put in place: a new one inserted in address order,
 * one read as gone (null) left out; every other entry (and warning) is the one already read.
 */
export function patchInventory(inventory: Inventory, fresh: ReadonlyMap<PciAddress, PciDevice | null>): Inventory {
  const devices: PciDevice[] = [];
  for (const device of inventory.devices) {
    if (!fresh.has(device.address)) devices.push(device);
    else {
      const now = fresh.get(device.address);
      if (now != null) devices.push(now);
    }
  }
  const known = new Set(inventory.devices.map((device) => device.address));
  for (const [address, device] of fresh) if (device !== null && !known.has(address)) devices.push(device);
  devices.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  // Warnings about a function read again were about its old read.
  return { ...inventory, devices, warnings: inventory.warnings.filter((warning) => !fresh.has(warning.address as PciAddress)) };
}
