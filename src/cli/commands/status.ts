import type { Command } from 'commander';
import type { StatusReport } from '../../manager/status.js';
import { read } from '../via-daemon.js';
import { action } from '../run-action.js';
import { statusText } from '../status-view.js';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('the device tables: active (owned by a domain) and inactive (detached, owned by nobody)')
    .action(
      action(async (globals) => {
        const status = await read(globals, (service) => service.status(), async (client) => (await client.status<StatusReport>()).report);
        const warnings: string[] = [];
        for (const address of status.missing) warnings.push(`${address} is active but no longer on this host; release its domain to prune it`);
        if (status.journal.unfinished > 0) warnings.push(`${status.journal.unfinished} unfinished journal step(s): the next command recovers them`);
        return { json: status, text: statusText(status), warnings };
      }),
    );
}
