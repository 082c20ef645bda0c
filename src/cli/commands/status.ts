import type { Command } from 'commander';
import type { StatusReport } from '../../manager/status.js';
import { read } from '../via-daemon.js';
import { action } from '../run-action.js';
import { statusText } from '../status-view.js';
import { readClaims } from '../../state/claim-files.js';

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
        // Claims are this host's definitions (CONFIG/claims.d), read here whether or not a daemon answered.
        const { claims, warnings: notClaims } = await readClaims(globals.configDir);
        warnings.push(...notClaims);
        const claimed = new Set<string>(claims.map((claim) => claim.address));
        // `claims` only where claims are defined: the daemon's /v1/status does not read them.
        return { json: claims.length === 0 ? status : { ...status, claims }, text: statusText(status, claimed), warnings };
      }),
    );
}
