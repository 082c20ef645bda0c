import type { Command } from 'commander';
import { classFilter } from '../../core/device-filter.js';
import type { CommandResult } from '../context.js';
import {
  classCell,
  deviceJson,
  deviceLabel,
  idPair,
  iommuOffNote,
  tablesFor,
  readHost,
  sriovCell,
  type InventoryCommandOptions,
} from '../inventory-view.js';
import { ownerCell } from '../../core/tables.js';
import { orDash, renderTable, terminalWidth } from '../render.js';
import { hostUsageFor } from '../host-usage-for.js';
import { action } from '../run-action.js';
import { HostdevError } from '../../core/errors.js';
import { nonPciJson } from '../../manager/nonpci-reports.js';
import { NON_PCI_KINDS, nonPciListText, nonPciRows, parseListKind, readNonPci } from '../nonpci-view.js';

export { classFilter };

export function listCommand(options: InventoryCommandOptions = {}): (program: Command) => void {
  return (program) => {
    program
      .command('list')
      .description('every PCI function of the host, with names, drivers, IOMMU groups and SR-IOV (--kind: USB, mdev, NVMe, SCSI)')
      .option('--class <name>', 'only this class: net, storage, display, bridge, ... or a hex code (0200)')
      .option('--driver <name>', 'only devices bound to this driver')
      .option('--kind <kind>', 'pci (the default), mdev, usb, nvme, scsi or all')
      .action(
        action(async (globals, command: Command): Promise<CommandResult> => {
          const opts = command.opts<{ class?: string; driver?: string; kind?: string }>();
          const kind = parseListKind(opts.kind ?? 'pci');
          if (kind !== 'pci') {
            if (opts.class !== undefined || opts.driver !== undefined) {
              throw new HostdevError('HOSTDEV_USAGE', `--class and --driver filter PCI functions; --kind ${kind} takes neither`, {
                hint: 'Leave --class and --driver out, or list PCI functions (--kind pci).',
              });
            }
            const tablesLoading = tablesFor(globals, options);
            const nonPci = await readNonPci(globals, kind === 'all' ? NON_PCI_KINDS : [kind]);
            const tables = await tablesLoading;
            if (kind !== 'all') {
              return { json: nonPci[kind].map((device) => nonPciJson(device, tables)), text: nonPciListText(kind, nonPci, tables), warnings: nonPci.warnings };
            }
            const { inventory, warnings } = await readHost(globals);
            const json: unknown[] = [
              ...inventory.devices.map((device) => {
                const { key, ...rest } = deviceJson(device, tables);
                return { key, kind: 'pci' as const, ...rest };
              }),
              ...NON_PCI_KINDS.flatMap((other) => nonPci[other].map((device) => nonPciJson(device, tables))),
            ];
            if (globals.json) return { json, text: '', warnings: [...warnings, ...nonPci.warnings] };
            const headers = ['KEY', 'KIND', 'ID', 'DESCRIPTION', 'DRIVER', ...(tables ? ['OWNER'] : [])];
            const rows = [
              ...inventory.devices.map((device) => [
                `pci:${device.address}`,
                'pci',
                idPair(device),
                deviceLabel(device),
                orDash(device.driver),
                ...(tables ? [ownerCell(tables(device.address))] : []),
              ]),
              ...NON_PCI_KINDS.flatMap((other) => nonPciRows(nonPci[other], tables).map(([key, ...rest]) => [key!, other, ...rest])),
            ];
            return { json: null, text: renderTable(headers, rows, { width: terminalWidth(), shrink: 3 }), warnings: [...warnings, ...nonPci.warnings] };
          }
          const byClass = opts.class === undefined ? null : classFilter(opts.class);
          const tablesLoading = tablesFor(globals, options);
          const { layout, inventory, warnings } = await readHost(globals);
          const tables = await tablesLoading;
          const devices = inventory.devices.filter(
            (device) => (byClass === null || byClass(device)) && (opts.driver === undefined || device.driver === opts.driver),
          );
          if (globals.json) return { json: devices.map((device) => deviceJson(device, tables)), text: '', warnings };

          // dpdk-devbind's *Active*: the host uses it (an address or route, a mount, the console).
          const used = await (await hostUsageFor(globals)).usesOf(devices);
          const headers = ['ADDRESS', 'CLASS', 'VENDOR:DEVICE', 'NAME', 'DRIVER', 'IOMMU', 'SR-IOV'];
          if (tables) headers.push('OWNER');
          const rows = devices.map((device) => {
            const row = [
              device.address,
              classCell(device),
              idPair(device),
              deviceLabel(device),
              used.has(device.address) ? `${orDash(device.driver)} *Active*` : orDash(device.driver),
              orDash(device.iommuGroup),
              sriovCell(device),
            ];
            if (tables) row.push(ownerCell(tables(device.address)));
            return row;
          });
          const lines = [devices.length > 0 ? renderTable(headers, rows, { width: terminalWidth(), shrink: headers.indexOf('NAME') }) : 'No PCI devices match.'];
          if (!inventory.iommuEnabled) lines.push('', iommuOffNote(layout));
          return { json: null, text: lines.join('\n'), warnings };
        }),
      );
  };
}
