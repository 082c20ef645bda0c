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

export { classFilter };

export function listCommand(options: InventoryCommandOptions = {}): (program: Command) => void {
  return (program) => {
    program
      .command('list')
      .description('every PCI function of the host, with names, drivers, IOMMU groups and SR-IOV')
      .option('--class <name>', 'only this class: net, storage, display, bridge, ... or a hex code (0200)')
      .option('--driver <name>', 'only devices bound to this driver')
      .action(
        action(async (globals, command: Command): Promise<CommandResult> => {
          const opts = command.opts<{ class?: string; driver?: string }>();
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
