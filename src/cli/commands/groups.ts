import type { Command } from 'commander';
import { listGroups } from '../../core/iommu.js';
import type { CommandResult } from '../context.js';
import {
  classCell,
  deviceLabel,
  idPair,
  iommuOffNote,
  ownerCell,
  ownersFor,
  readHost,
  type InventoryCommandOptions,
} from '../inventory-view.js';
import { orDash, renderTable } from '../render.js';
import { action } from '../run-action.js';

export function groupsCommand(options: InventoryCommandOptions = {}): (program: Command) => void {
  return (program) => {
    program
      .command('groups')
      .description('every IOMMU group with its members, their drivers and names')
      .action(
        action(async (globals): Promise<CommandResult> => {
          const { layout, inventory, warnings } = await readHost(globals);
          const owners = await ownersFor(globals, options);
          const groups = listGroups(inventory);
          const json = groups.map((group) => ({
            group: group.id,
            members: group.members.map((m) => ({
              address: m.address,
              driver: m.driver,
              class: m.class,
              headerType: m.headerType,
              vendor: m.vendor,
              device: m.device,
              vendorName: m.vendorName,
              deviceName: m.deviceName,
              ...(owners ? { owner: owners(m.address) } : {}),
            })),
          }));
          if (globals.json) return { json, text: '', warnings };
          if (!inventory.iommuEnabled) return { json, text: iommuOffNote(layout), warnings };

          const headers = ['GROUP', 'ADDRESS', 'CLASS', 'VENDOR:DEVICE', 'NAME', 'DRIVER'];
          if (owners) headers.push('OWNER');
          const rows = groups.flatMap((group) =>
            group.members.map((m) => {
              const row = [String(group.id), m.address, classCell(m), idPair(m), deviceLabel(m), orDash(m.driver)];
              if (owners) row.push(ownerCell(owners, m.address));
              return row;
            }),
          );
          return { json, text: renderTable(headers, rows), warnings };
        }),
      );
  };
}

export const registerGroups = groupsCommand();
