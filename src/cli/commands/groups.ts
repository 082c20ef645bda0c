import type { Command } from 'commander';
import type { PciAddress } from '../../core/address.js';
import { listGroups } from '../../core/iommu.js';
import { groupsReport } from '../../manager/inventory-reports.js';
import type { TableMembership } from '../../manager/table-lookup.js';
import type { CommandResult } from '../context.js';
import {
  classCell,
  deviceLabel,
  idPair,
  iommuOffNote,
  readHost,
  tablesFor,
  type InventoryCommandOptions,
} from '../inventory-view.js';
import { ownerCell } from '../../core/tables.js';
import { orDash, renderTable } from '../render.js';
import { action } from '../run-action.js';

export function groupsCommand(options: InventoryCommandOptions = {}): (program: Command) => void {
  return (program) => {
    program
      .command('groups')
      .description('every IOMMU group with its members, their drivers, names and owners')
      .action(
        action(async (globals): Promise<CommandResult> => {
          // Loaded while sysfs is read; best-effort, so a failure drops the column instead of the command.
          const tablesLoading = tablesFor(globals, options);
          const { layout, inventory, warnings } = await readHost(globals);
          const tables = await tablesLoading;
          const membership = (address: PciAddress): TableMembership | null => (tables ? tables(address) : null);
          const groups = listGroups(inventory);
          const json = groupsReport(inventory, tables);
          if (globals.json) return { json, text: '', warnings };
          if (!inventory.iommuEnabled) return { json, text: iommuOffNote(layout), warnings };

          const headers = ['GROUP', 'ADDRESS', 'CLASS', 'VENDOR:DEVICE', 'NAME', 'DRIVER'];
          if (tables) headers.push('OWNER');
          const rows = groups.flatMap((group) =>
            group.members.map((m) => {
              const row = [String(group.id), m.address, classCell(m), idPair(m), deviceLabel(m), orDash(m.driver)];
              if (tables) row.push(ownerCell(membership(m.address)));
              return row;
            }),
          );
          return { json, text: renderTable(headers, rows), warnings };
        }),
      );
  };
}
