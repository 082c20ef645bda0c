import type { Command } from 'commander';
import { registerNodeCommand } from '../manager-view.js';

export function registerReattach(program: Command): void {
  registerNodeCommand(program, {
    name: 'reattach',
    description: 'give a detached device back to its original host driver',
    run: (service, request) => service.reattach(request),
    remote: (client, address, body, options) => client.reattach(address, body, options),
    headline: (report, address) => {
      const check = report.checks[0];
      if (check === undefined) return `${address}: no write needed`;
      if (check.kind === 'verify-driver') {
        return check.expected === null ? `reattached ${address}: off the stub, on no driver (it had none)` : `reattached ${address} to its host driver ${check.expected}`;
      }
      return check.bound
        ? `reattached ${address} to the host driver the kernel probed for it`
        : `reattached ${address}: off the stub and probed (it had no driver before; one loaded since may have taken it)`;
    },
  });
}
