import type { Command } from 'commander';
import { parsePciRef } from '../../core/device-key.js';
import { operationJson } from '../../service/report-json.js';
import { WAIT_HELP, deviceWait, reportResult, waitBody } from '../manager-view.js';
import { change } from '../via-daemon.js';
import { action } from '../run-action.js';

export function registerDetach(program: Command): void {
  program
    .command('detach <address>')
    .description('take a device from its host driver and park it on a stub driver (inactive, owned by no domain)')
    .option('--driver <name>', 'stub driver: vfio-pci, a vfio-pci variant driver, pci-stub or xen-pciback (default: the variant modules.alias names for the device, else vfio-pci)')
    .option('--force', 'detach even if the host uses the device (IP address, route, mounted filesystem, console)')
    .option('--dry-run', 'print the ordered sysfs writes and table changes, change nothing')
    .option('--wait <ms>', WAIT_HELP)
    .action(
      action(async (globals, command: Command, input: string) => {
        const opts = command.opts<{ driver?: string; force?: boolean; dryRun?: boolean; wait?: string }>();
        const address = parsePciRef(input);
        const dryRun = opts.dryRun ?? false;
        const wait = deviceWait(opts.wait);
        const force = opts.force ?? false;
        const report = await change(
          globals,
          dryRun,
          (service) => service.detach({ device: address, ...(opts.driver !== undefined ? { stubDriver: opts.driver } : {}), force, dryRun, wait }),
          operationJson,
          (client, options) => client.detach(address, { ...(opts.driver !== undefined ? { driver: opts.driver } : {}), force, ...waitBody(wait) }, options),
        );
        const parked = report.changes.find((change) => change.kind === 'set-inactive');
        const stub = parked?.kind === 'set-inactive' ? parked.entry.stubDriver : (opts.driver ?? 'its stub driver');
        return reportResult(report, `detached ${address}: on ${stub}, in the inactive table`);
      }),
    );
}
