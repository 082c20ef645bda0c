import { DEVICE_KINDS, type DeviceKey, type DeviceKind } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';
import { describeNonPci, driverCell, idCell, type NonPciDevice, type NonPciInventory, type NonPciKind } from '../core/nonpci-device.js';
import { ownerCell } from '../core/tables.js';
import type { TableLookup } from '../manager/table-lookup.js';
import type { NonPciShowReport } from '../manager/nonpci-reports.js';
import { readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { readNonPciInventory } from '../sysfs/nonpci-inventory.js';
import { SysfsLayout } from '../sysfs/paths.js';
import { orDash, renderTable, terminalWidth } from './render.js';
import type { GlobalOptions } from './context.js';

/** What `list --kind` takes: one kind, or all of them. */
export type ListKind = DeviceKind | 'all';

export const NON_PCI_KINDS: readonly NonPciKind[] = DEVICE_KINDS.filter((kind): kind is NonPciKind => kind !== 'pci');

export function parseListKind(text: string): ListKind {
  if (text === 'all' || (DEVICE_KINDS as readonly string[]).includes(text)) return text as ListKind;
  throw new HostdevError('HOSTDEV_USAGE', `--kind ${JSON.stringify(text)} is not a device kind`, {
    hint: `Give one of ${[...DEVICE_KINDS, 'all'].join(', ')}.`,
    details: { kind: text },
  });
}

export async function readNonPci(globals: GlobalOptions, kinds: readonly NonPciKind[]): Promise<NonPciInventory> {
  return readNonPciInventory(new SysfsLayout(globals.root), kinds, readTimeoutFromEnv());
}

/** One row per device: KEY, ID, DESCRIPTION, DRIVER (and OWNER when hostdev has tables). */
export function nonPciRows(devices: readonly NonPciDevice[], tables: TableLookup | null): string[][] {
  return devices.map((device) => {
    const row = [device.key, idCell(device), describeNonPci(device), driverCell(device)];
    if (tables) row.push(ownerCell(tables(device.key)));
    return row;
  });
}

const ID_HEADER: Readonly<Record<NonPciKind, string>> = { usb: 'VENDOR:PRODUCT', mdev: 'API', nvme: 'CONTROLLER', scsi: 'GENERIC' };

/** `list --kind KIND` as text: the devices, and for mdev the types each parent offers (what `mdevctl types` lists). */
export function nonPciListText(kind: NonPciKind, inventory: NonPciInventory, tables: TableLookup | null): string {
  const devices = inventory[kind];
  const headers = ['KEY', ID_HEADER[kind], 'DESCRIPTION', 'DRIVER'];
  if (tables) headers.push('OWNER');
  const lines = [devices.length > 0 ? renderTable(headers, nonPciRows(devices, tables), { width: terminalWidth(), shrink: 2 }) : `No ${kind} devices.`];
  if (kind === 'mdev') {
    const rows = inventory.mdevParents.flatMap((parent) =>
      parent.types.map((type) => [parent.name, type.id, orDash(type.name), orDash(type.availableInstances), orDash(type.deviceApi)]),
    );
    lines.push('', rows.length > 0 ? renderTable(['PARENT', 'TYPE', 'NAME', 'AVAILABLE', 'API'], rows) : 'No mediated-device parents.');
  }
  return lines.join('\n');
}

/** `show KEY` of a USB, mdev, NVMe or SCSI device as text. */
export function nonPciShowText(report: NonPciShowReport, tables: TableLookup | null): string {
  const device = report.device;
  const facts: Array<[string, string]> = [];
  switch (device.kind) {
    case 'usb':
      facts.push(
        ['Vendor:product', idCell(device)],
        ['Bus, port', `${device.bus}, ${device.port} (device ${orDash(device.devnum)})`],
        ['Serial', orDash(device.serial)],
        ['Speed', device.speed === null ? '-' : `${device.speed} Mb/s`],
        ['Interfaces', device.interfaceDrivers.map((driver) => orDash(driver)).join(' ') || '-'],
        ['Controller', orDash(device.controller)],
      );
      break;
    case 'mdev':
      facts.push(['Parent', device.parent], ['Type', orDash(device.type)], ['Device API', orDash(device.deviceApi)], ['Driver', orDash(device.driver)], ['IOMMU group', orDash(device.iommuGroup)]);
      if (report.mdevType !== null) facts.push(['Type name', orDash(report.mdevType.name)], ['Available', `${orDash(report.mdevType.availableInstances)} more of this type`]);
      break;
    case 'nvme':
      facts.push(['Controller', `${device.controller} (${device.instance})`], ['Namespace', `${device.nsid} (/dev/${device.blockDevice})`], ['Size', device.sectors === null ? '-' : `${device.sectors} sectors`], ['Serial', orDash(device.serial)]);
      break;
    case 'scsi':
      facts.push(['Type', orDash(device.typeName)], ['Rev', orDash(device.rev)], ['Generic', device.sg === null ? '-' : `/dev/${device.sg}`], ['Block', device.blockDevice === null ? '-' : `/dev/${device.blockDevice}`], ['Driver', orDash(device.driver)], ['Adapter', orDash(device.adapter)]);
      break;
  }
  if (tables) facts.push(['Owner', ownerCell(tables(device.key as DeviceKey))]);
  const width = Math.max(...facts.map(([label]) => label.length));
  return [`${device.key}: ${describeNonPci(device)}`, ...facts.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}
