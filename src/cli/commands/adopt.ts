import type { Command } from 'commander';
import { parsePciRef } from '../../core/device-key.js';
import { HostdevError } from '../../core/errors.js';
import { operationJson } from '../../service/report-json.js';
import { parseDomainOptions, reportResult } from '../manager-view.js';
import { change } from '../via-daemon.js';
import { action } from '../run-action.js';
import { HOLDER_PID_HELP, holderPid } from './assign.js';

export function registerAdopt(program: Command): void {
  program
    .command('adopt <addresses...>')
    .description("mark devices a running VM already holds as its domain's, touching nothing on the host (a VM manager that restarts)")
    .requiredOption('--domain <name>', 'the domain (VM) that holds the devices')
    .option('--hypervisor <driver>', 'the hypervisor driver that owns the domain', 'qemu')
    .option('--unmanaged', 'a device in no table stays on its stub at release (default: it goes back to the host)')
    .option('--holder-pid <pid>', HOLDER_PID_HELP)
    .option('--qmp <socket>', "the running VM's QMP socket as the devices' holder")
    .option('--dry-run', 'print the table changes, change nothing')
    .action(
      action(async (globals, command: Command, inputs: string[]) => {
        const opts = command.opts<{ domain?: string; hypervisor?: string; unmanaged?: boolean; holderPid?: string; qmp?: string; dryRun?: boolean }>();
        const { domain, hypervisor } = parseDomainOptions(opts);
        if (inputs.length === 0) throw new HostdevError('HOSTDEV_USAGE', 'no device given', { hint: 'Name the PCI addresses the running VM holds.' });
        const addresses = inputs.map(parsePciRef);
        const dryRun = opts.dryRun ?? false;
        const holder = { ...holderPid(opts.holderPid), ...(opts.qmp === undefined ? {} : { qmp: opts.qmp }) };
        const managed = !(opts.unmanaged ?? false);
        const report = await change(
          globals,
          dryRun,
          (service) => service.adopt({ domain, hypervisor, addresses, managed, dryRun, ...holder }),
          operationJson,
          (client, options) => client.adopt({ domain, hypervisor, devices: addresses, managed, ...holder }, options),
        );
        const adopted = report.changes.map((c) => (c.kind === 'remove' ? c.address : c.entry.address));
        return reportResult(report, `${dryRun ? 'would adopt' : 'adopted'} for domain ${domain} (${hypervisor}): ${adopted.join(', ') || 'nothing'}`);
      }),
    );
}
