import type { Command } from 'commander';
import { read } from '../via-daemon.js';
import { action } from '../run-action.js';
import { renderTable } from '../render.js';
import { holderCell } from '../status-view.js';
import type { DomainReport } from '../../service/hostdev-service.js';

export function registerDomains(program: Command): void {
  program
    .command('domains')
    .description('the domains that hold devices, with their devices and holders (a process or a QMP socket) and whether each holder lives')
    .action(
      action(async (globals) => {
        const domains = await read(globals, (service) => service.domains(), async (client) => client.domains<DomainReport[]>());
        const rows = domains.map((d) => [`${d.hypervisor}/${d.domain}`, [...d.devices.map((device) => device.address), ...(d.otherKeys ?? [])].join(', '), holderCell(d.holder)]);
        const text = rows.length === 0 ? 'no domain holds a device' : renderTable(['DOMAIN', 'DEVICES', 'HOLDER'], rows);
        return { json: domains, text };
      }),
    );
}
