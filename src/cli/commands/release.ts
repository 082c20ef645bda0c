import type { Command } from 'commander';
import { parsePciRef } from '../../core/device-key.js';
import { operationJson } from '../../service/report-json.js';
import { WAIT_HELP, deviceWait, parseDomainOptions, releaseHeadline, reportResult, waitBody } from '../manager-view.js';
import { change } from '../via-daemon.js';
import { action } from '../run-action.js';
import { deviceRefs, isOtherKind } from '../device-inputs.js';
import { DOMAIN_XML_HELP, domainXmlInputs } from './assign.js';
import type { DeviceReleaseReport } from '../../manager/device-ops.js';

/** How the headline names the kinds released: mediated/USB, with NVMe and SCSI when there are such devices. */
function releasedKinds(keys: readonly string[]): string {
  return ['mediated/USB', ...(['nvme', 'scsi'] as const).filter((kind) => keys.some((key) => key.startsWith(`${kind}:`))).map((kind) => (kind === 'nvme' ? 'NVMe' : 'SCSI'))].join('/');
}

/** The lines of a release of mediated, USB, NVMe and SCSI devices. */
function devicesReleasedText(report: DeviceReleaseReport, domain: string): string[] {
  const would = report.dryRun ? 'would release' : 'released';
  return [
    `${would} ${report.released.length} ${releasedKinds(report.released)} device(s) of domain ${domain}${report.released.length === 0 ? '' : `: ${report.released.join(', ')}`}`,
    ...((report.controllers ?? []).length === 0 ? [] : [`NVMe controllers back to nvme: ${report.controllers!.join(', ')}`]),
    ...(report.dryRun ? (report.steps ?? []).map((step) => `  ${step}`) : []),
    ...(report.pruned.length === 0 ? [] : [`pruned (no longer on this host): ${report.pruned.join(', ')}`]),
    ...report.notes.map((note) => `note: ${note}`),
  ];
}

export function registerRelease(program: Command): void {
  program
    .command('release [devices...]')
    .description("take a domain's devices back (all of them unless devices are given: PCI addresses and keys of any kind); vanished devices are pruned")
    .option('--domain <name>', "the domain (VM) that holds the devices (with --domain-xml: default the XML's <name>)")
    .option('--domain-xml <file>', `${DOMAIN_XML_HELP}; releases those devices`)
    .option('--hypervisor <driver>', 'the hypervisor driver that owns the domain', 'qemu')
    .option('--dry-run', 'print the ordered sysfs writes and table changes, change nothing')
    .option('--force', 'release even a device whose card is not the one its entry was made for (HOSTDEV_HARDWARE_CHANGED)')
    .option('--wait <ms>', WAIT_HELP)
    .action(
      action(async (globals, command: Command, inputs: string[]) => {
        const opts = command.opts<{ domain?: string; domainXml?: string; hypervisor?: string; dryRun?: boolean; wait?: string; force?: boolean }>();
        const force = opts.force === true ? { force: true } : {};
        const xml = await domainXmlInputs(globals, opts, inputs);
        const { domain, hypervisor } = parseDomainOptions(xml === null ? opts : { ...opts, domain: xml.domain });
        // The command line's devices, of any mix of kinds, and a domain XML's take one path: the service's release.
        const addresses = xml !== null ? [...xml.refs, ...xml.unmanaged] : inputs.length > 0 ? deviceRefs(inputs, parsePciRef) : undefined;
        const dryRun = opts.dryRun ?? false;
        const wait = deviceWait(opts.wait);
        const report = await change(
          globals,
          dryRun,
          (service) => service.release({ domain, hypervisor, ...(addresses ? { addresses } : {}), dryRun, wait, ...force }),
          operationJson,
          (client, options) => client.release({ domain, hypervisor, ...(addresses ? { devices: addresses } : {}), ...waitBody(wait), ...force }, options),
        );
        // Devices of other kinds only: their report, as such a release has always printed it.
        if (xml === null && inputs.length > 0 && inputs.every(isOtherKind) && report.devices !== undefined) {
          return { json: report.devices, text: devicesReleasedText(report.devices, domain).join('\n'), warnings: report.warnings };
        }
        const result = reportResult(report, releaseHeadline(report, domain));
        const devices = report.devices === undefined ? [] : devicesReleasedText(report.devices, domain);
        return {
          ...result,
          ...(devices.length === 0 ? {} : { text: [result.text, ...devices].join('\n') }),
          warnings: [...(result.warnings ?? []), ...report.warnings],
        };
      }),
    );
}
