import type { Command } from 'commander';
import { parseAddress } from '../../core/address.js';
import { reportResult } from '../manager-view.js';
import { withManager } from '../open-manager.js';
import { action } from '../run-action.js';

export function registerReset(program: Command): void {
  program
    .command('reset <address>')
    .description("reset a device through the kernel's reset file (its first reset_method); refused while a domain owns it")
    .option('--dry-run', 'print the sysfs write, change nothing')
    .action(
      action(async (globals, command: Command, input: string) => {
        const opts = command.opts<{ dryRun?: boolean }>();
        const address = parseAddress(input);
        const report = await withManager(globals, (manager) => manager.reset(address, { dryRun: opts.dryRun ?? false }));
        return reportResult(report, `reset ${address}`);
      }),
    );
}
