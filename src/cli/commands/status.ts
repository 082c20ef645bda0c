import type { Command } from 'commander';
import { orDash, renderTable } from '../render.js';
import { withManager } from '../open-manager.js';
import { action } from '../run-action.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('the device tables: active (owned by a domain) and inactive (detached, owned by nobody)')
    .action(
      action(async (globals) => {
        const status = await withManager(globals, (manager) => manager.status());
        const active = status.active.map((entry) => [
          entry.address,
          `${entry.usedBy.driver}/${entry.usedBy.domain}`,
          entry.managed ? 'managed' : 'unmanaged',
          entry.stubDriver,
          orDash(entry.originalDriver),
        ]);
        const inactive = status.inactive.map((entry) => [
          entry.address,
          entry.managed ? 'managed' : 'unmanaged',
          entry.stubDriver,
          orDash(entry.originalDriver),
        ]);
        const lines = [
          `IOMMU: ${status.iommu.enabled ? 'on' : 'off'}; vfio-pci: ${status.vfio.loaded ? 'loaded' : 'not loaded'}`,
          '',
          `Active (${active.length}):`,
          active.length > 0 ? renderTable(['ADDRESS', 'OWNER', 'MODE', 'STUB', 'ORIGINAL'], active) : '  none',
          '',
          `Inactive (${inactive.length}):`,
          inactive.length > 0 ? renderTable(['ADDRESS', 'MODE', 'STUB', 'ORIGINAL'], inactive) : '  none',
        ];
        const warnings: string[] = [];
        if (status.pruned.length > 0) lines.push('', `pruned (no longer on this host): ${status.pruned.join(', ')}`);
        for (const address of status.missing) warnings.push(`${address} is active but no longer on this host; release its domain to prune it`);
        if (status.journal.unfinished > 0) warnings.push(`${status.journal.unfinished} unfinished journal step(s): the next command recovers them`);
        return { json: status, text: lines.join('\n'), warnings };
      }),
    );
}
