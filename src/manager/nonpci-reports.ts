import { keyKind, type DeviceKey } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';
import type { MdevType, NonPciDevice, NonPciInventory, NonPciKind } from '../core/nonpci-device.js';
import { ownershipJson } from './inventory-reports.js';
import type { TableLookup } from './table-lookup.js';

/**
 * A device of another kind than PCI as `--json` prints it: its fields (kind and key first), then owner
 * and table, as for a PCI function: without hostdev's tables (no state database) there are none.
 */
export type NonPciJson = NonPciDevice & Partial<ReturnType<typeof ownershipJson>>;

export function nonPciJson(device: NonPciDevice, tables: TableLookup | null): NonPciJson {
  return tables === null ? device : { ...device, ...ownershipJson(tables(device.key)) };
}

/** `show KEY` of a mediated device also says what its type is and how many more its parent can make. */
export interface NonPciShowReport {
  readonly device: NonPciJson;
  readonly mdevType: MdevType | null;
}

export function nonPciShowReport(inventory: NonPciInventory, key: DeviceKey, tables: TableLookup | null): NonPciShowReport {
  const kind = keyKind(key) as NonPciKind;
  const device = inventory[kind].find((candidate) => candidate.key === key);
  if (device === undefined) {
    throw new HostdevError('HOSTDEV_DEVICE_NOT_FOUND', `${kind} device ${key} not found on this host`, {
      hint: `\`hostdev list --kind ${kind}\` lists the ${kind} devices this host has and their keys.`,
      details: { key },
    });
  }
  const mdevType =
    device.kind === 'mdev'
      ? (inventory.mdevParents.find((parent) => parent.name === device.parent)?.types.find((type) => type.id === device.type) ?? null)
      : null;
  return { device: nonPciJson(device, tables), mdevType };
}
