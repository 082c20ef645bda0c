import type { Command } from 'commander';
import { parsePciRef } from '../../core/device-key.js';
import { HostdevError } from '../../core/errors.js';
import type { GuestPlacement, Placement } from '../../core/hotplug.js';
import { deviceRefs } from '../device-inputs.js';
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

function guestLine(placement: GuestPlacement, dryRun: boolean): string {
  const at = placement.at;
  const where =
    at === null ? 'on the root bus' : typeof at === 'string' ? `on ${at}` : `on ${at.bus} (channel ${at.channel}, scsi-id ${at.scsiId}, lun ${at.lun})`;
  const node = placement.blockdev === null ? '' : ` with block node ${String(placement.blockdev['node-name'])}`;
  return `${dryRun ? 'would hot-plug' : 'hot-plugged'} ${placement.key} as ${placement.id} (${String(placement.device['driver'])}) ${where}${node}`;
}

/** hotplug's options for the devices of other kinds than PCI. */
interface GuestOptionValues {
  usbBus?: string;
  scsiBus?: string;
  readonly?: boolean;
}

function guestOptions(opts: GuestOptionValues, inputs: readonly string[]): { usbBus?: string; scsiBus?: string; readOnly?: string[] } {
  const scsi = inputs.filter((input) => input.startsWith('scsi:'));
  if (opts.readonly === true && scsi.length === 0) {
    throw new HostdevError('HOSTDEV_USAGE', '--readonly applies to scsi: keys only', { hint: "Name the SCSI devices (scsi:HOST:BUS:TARGET:LUN) QEMU is to open read-only (libvirt's <readonly/>)." });
  }
  return {
    ...(opts.usbBus === undefined ? {} : { usbBus: opts.usbBus }),
    ...(opts.scsiBus === undefined ? {} : { scsiBus: opts.scsiBus }),
    ...(opts.readonly === true ? { readOnly: scsi } : {}),
  };
}

export function registerHotplug(program: Command): void {
  addAssignOptions(
    program
      .command('hotplug <addresses...>')
      .description(
        'assign devices to a running VM and add them to it over QMP (device_add on a free PCIe root port; mdev, USB, NVMe and SCSI keys as qemu-args gives them); rolled back if QEMU refuses',
      )
      .requiredOption('--qmp <socket>', QMP_HELP)
      .option('--usb-bus <bus>', "usb: keys: the VM's USB bus to plug onto (default: the controller hostdev-xhci, else its first xHCI or USB controller)")
      .option('--scsi-bus <bus>', "scsi: keys: the VM's SCSI bus to plug onto (default: the controller hostdev-scsi, else its first virtio-scsi controller)")
      .option('--readonly', "scsi: keys: QEMU opens the SCSI devices read-only (libvirt's <readonly/>)"),
  ).action(
    action(async (globals, command: Command, inputs: string[]) => {
      const opts = command.opts<AssignOptionValues & GuestOptionValues & { qmp: string }>();
      const request = { ...assignRequest(opts, inputs), ...guestOptions(opts, inputs), qmp: opts.qmp };
      const { usbBus, scsiBus, readOnly } = request;
      const report = await change(globals, request.dryRun ?? false, (service) => service.hotplug(request), hotplugJson, (client, options) =>
        client.hotplug(
          {
            ...assignBody(request),
            qmp: opts.qmp,
            ...(usbBus === undefined ? {} : { usbBus }),
            ...(scsiBus === undefined ? {} : { scsiBus }),
            ...(readOnly === undefined ? {} : { readOnly }),
          },
          options,
        ),
      );
      const assigned = report.assign === null ? null : assignResult(report.assign, report.domain, report.hypervisor);
      const devices = report.devices;
      const lines = [
        ...(assigned === null ? [] : [assigned.text]),
        ...(devices?.assign == null ? [] : [`${report.dryRun ? 'would assign' : 'assigned'} to domain ${report.domain} (${report.hypervisor}): ${devices.assign.assigned.join(', ')}`]),
        ...(devices?.assign?.notes ?? []),
        ...report.plugged.map((placement) => placementLine(placement, report.dryRun)),
        ...(devices?.plugged ?? []).map((placement) => guestLine(placement, report.dryRun)),
        ...[...report.present, ...(devices?.present ?? [])].map((device) => `${device} is in ${report.domain} already: left as it is`),
      ];
      return {
        json: {
          ...((assigned?.json as object | undefined) ?? {}),
          dryRun: report.dryRun,
          plugged: report.plugged,
          present: report.present,
          ...(devices === undefined ? {} : { devices }),
        },
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
        // PCI functions by address; mdev, USB, NVMe and SCSI keys as given (one kind of the two per command).
        const addresses = deviceRefs(inputs, parsePciRef);
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
        const devices = report.devices;
        const gone = releaseJson.devices?.released ?? [];
        const lines = [
          ...[...report.unplugged, ...(devices?.unplugged ?? [])].map(
            (device) => `${dryRun ? 'would ask' : 'asked'} ${domain} to give back ${device}${dryRun ? '' : ': done (DEVICE_DELETED)'}`,
          ),
          ...[...report.absent, ...(devices?.absent ?? [])].map((device) => `${device} is not in ${domain}'s QEMU: released without asking it`),
          ...(devices === undefined ? [released.text] : [`${dryRun ? 'would release' : 'released'} from domain ${domain} (${hypervisor}): ${gone.join(', ') || 'none'}`]),
        ];
        return {
          json: { ...releaseJson, unplugged: report.unplugged, absent: report.absent, ...(devices === undefined ? {} : { devices }) },
          text: lines.join('\n'),
          warnings: [...(released.warnings ?? []), ...report.release.warnings],
          ...(released.exitCode === undefined ? {} : { exitCode: released.exitCode }),
        };
      }),
    );
}
