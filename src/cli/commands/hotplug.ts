import type { Command } from 'commander';
import { parsePciRef } from '../../core/device-key.js';
import type { Placement } from '../../core/hotplug.js';
import { hotplugJson, unplugJson } from '../../service/report-json.js';
import { deviceWait, parseDomainOptions, releaseHeadline, reportResult, waitMs } from '../manager-view.js';
import { change } from '../via-daemon.js';
import { action } from '../run-action.js';
import { addAssignOptions, assignBody, assignRequest, assignResult, type AssignOptionValues } from './assign.js';

const QMP_HELP = "the running VM's QMP socket (QEMU's -qmp unix:PATH,server=on,wait=off)";

function placementLine(placement: Placement, dryRun: boolean): string {
  const where = placement.bus === null ? 'on the root bus' : `on root port ${placement.bus}`;
  return `${dryRun ? 'would hot-plug' : 'hot-plugged'} ${placement.address} as ${placement.id} ${where}`;
}

export function registerHotplug(program: Command): void {
  addAssignOptions(
    program
      .command('hotplug <addresses...>')
      .description('assign devices to a running VM and add them to it over QMP (device_add on a free PCIe root port); rolled back if QEMU refuses')
      .requiredOption('--qmp <socket>', QMP_HELP),
  ).action(
    action(async (globals, command: Command, inputs: string[]) => {
      const opts = command.opts<AssignOptionValues & { qmp: string }>();
      const request = assignRequest(opts, inputs);
      const report = await change(globals, request.dryRun ?? false, (service) => service.hotplug({ ...request, qmp: opts.qmp }), hotplugJson, (client, options) =>
        client.hotplug({ ...assignBody(request), qmp: opts.qmp }, options),
      );
      const assigned = report.assign === null ? null : assignResult(report.assign, report.domain, report.hypervisor);
      const lines = [
        ...(assigned === null ? [] : [assigned.text]),
        ...report.plugged.map((placement) => placementLine(placement, report.dryRun)),
        ...report.present.map((address) => `${address} is in ${report.domain} already: left as it is`),
      ];
      return {
        json: { ...((assigned?.json as object | undefined) ?? {}), dryRun: report.dryRun, plugged: report.plugged, present: report.present },
        text: lines.join('\n'),
        warnings: assigned?.warnings ?? [],
        ...(assigned?.exitCode === undefined ? {} : { exitCode: assigned.exitCode }),
      };
    }),
  );
}

export function registerUnplug(program: Command): void {
  program
    .command('unplug <addresses...>')
    .description('take devices out of a running VM over QMP (device_del, then QEMU\'s DEVICE_DELETED) and release them')
    .requiredOption('--qmp <socket>', QMP_HELP)
    .requiredOption('--domain <name>', 'the domain (VM) that holds the devices')
    .option('--hypervisor <driver>', 'the hypervisor driver that owns the domain', 'qemu')
    .option('--wait <ms>', 'how long the guest has to give the devices back (default 10000)')
    .option('--dry-run', 'print what would be asked of the VM and the release plan, change nothing')
    .action(
      action(async (globals, command: Command, inputs: string[]) => {
        const opts = command.opts<{ qmp: string; domain?: string; hypervisor?: string; wait?: string; dryRun?: boolean }>();
        const { domain, hypervisor } = parseDomainOptions(opts);
        const timeoutMs = waitMs(opts.wait, '10000');
        const dryRun = opts.dryRun ?? false;
        const addresses = inputs.map(parsePciRef);
        const report = await change(
          globals,
          dryRun,
          (service) =>
            service.unplug({ qmp: opts.qmp, domain, hypervisor, addresses, dryRun, wait: deviceWait(undefined), ...(timeoutMs === undefined ? {} : { timeoutMs }) }),
          unplugJson,
          (client, options) => client.unplug({ qmp: opts.qmp, domain, hypervisor, devices: addresses, ...(timeoutMs === undefined ? {} : { timeoutMs }) }, options),
        );
        const releaseJson = report.release;
        const released = reportResult(releaseJson, releaseHeadline(releaseJson, domain));
        const lines = [
          ...report.unplugged.map((address) => `${dryRun ? 'would ask' : 'asked'} ${domain} to give back ${address}${dryRun ? '' : ': done (DEVICE_DELETED)'}`),
          ...report.absent.map((address) => `${address} is not in ${domain}'s QEMU: released without asking it`),
          released.text,
        ];
        return {
          json: { ...releaseJson, unplugged: report.unplugged, absent: report.absent },
          text: lines.join('\n'),
          warnings: [...(released.warnings ?? []), ...report.release.warnings],
          ...(released.exitCode === undefined ? {} : { exitCode: released.exitCode }),
        };
      }),
    );
}
