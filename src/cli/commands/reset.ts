import type { Command } from 'commander';
import { registerNodeCommand } from '../manager-view.js';

export function registerReset(program: Command): void {
  registerNodeCommand(program, {
    name: 'reset',
    description: "reset a device through the kernel's reset file (its first reset_method); refused while a domain owns it",
    run: (service, request) => service.reset(request),
    remote: (client, address, body, options) => client.reset(address, body, options),
    // The reset line itself (with its method) is the report: one line for one reset.
    headline: (report, address) => (report.resets.length > 0 ? '' : `reset ${address}`),
  });
}
