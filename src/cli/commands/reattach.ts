import type { Command } from 'commander';
import { registerNodeCommand } from '../manager-view.js';

export function registerReattach(program: Command): void {
  registerNodeCommand(program, {
    name: 'reattach',
    description: 'give a detached device back to its original host driver',
    run: (service, address, mode) => service.reattach(address, mode),
    headline: (report, address) =>
      report.plan.groups.length > 0 ? `reattached ${address} to its host driver` : `${address}: no write needed`,
  });
}
