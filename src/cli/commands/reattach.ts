import type { Command } from 'commander';
import { parseAddress } from '../../core/address.js';
import { reportResult } from '../manager-view.js';
import { withManager } from '../open-manager.js';
import { action } from '../run-action.js';

export function registerReattach(program: Command): void {
  program
    .command('reattach <address>')
    .description('give a detached device back to its original host driver')
    .option('--dry-run', 'print the ordered sysfs writes and table changes, change nothing')
    .action(
      action(async (globals, command: Command, input: string) => {
        const opts = command.opts<{ dryRun?: boolean }>();
        const address = parseAddress(input);
        const report = await withManager(globals, (manager) => manager.reattach(address, { dryRun: opts.dryRun ?? false }));
        const headline = report.plan.groups.length > 0 ? `reattached ${address} to its host driver` : `${address}: no write needed`;
        return reportResult(report, headline);
      }),
    );
}
