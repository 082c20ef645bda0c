import type { Command } from 'commander';
import { tryParseAddress, type PciAddress } from '../../core/address.js';
import { parsePciRef, tryParseId } from '../../core/device-key.js';
import { domainXmlRequest, needsUsbInventory } from '../../core/domain-xml.js';
import { readNonPci } from '../nonpci-view.js';
import { HostdevError } from '../../core/errors.js';
import type { AssignRequest, AssignResult } from '../../service/hostdev-service.js';
import type { DeviceAssignReport } from '../../manager/device-ops.js';
import type { AssignBodyJson } from '../../client/hostdev-client.js';
import type { CommandResult, GlobalOptions } from '../context.js';
import { deviceRefs, isOtherKind } from '../device-inputs.js';
import { WAIT_HELP, deviceWait, parseDomainOptions, reportResult, waitBody } from '../manager-view.js';
import { operationJson, type ReportJson } from '../../service/report-json.js';
import { change } from '../via-daemon.js';
import { action } from '../run-action.js';
import { addVfNetOptions, vfNetRequests, type VfNetOptionValues } from './vf.js';

export type AssignOptionValues = VfNetOptionValues & {
  domain?: string;
  domainXml?: string;
  hypervisor?: string;
  unmanaged?: boolean;
  driver?: string;
  withGroup?: boolean;
  force?: boolean;
  dryRun?: boolean;
  wait?: string;
  holderPid?: string;
  qmp?: string;
  shareable?: boolean;
};

export const HOLDER_PID_HELP = 'the process that holds the devices (its QEMU): when it ends they are released (checked by pid and start time)';

/** `--holder-pid PID`: decimal digits only. */
export function holderPid(input: string | undefined): { holderPid?: number } {
  if (input === undefined) return {};
  if (!/^[1-9][0-9]{0,9}$/.test(input)) {
    throw new HostdevError('HOSTDEV_USAGE', `--holder-pid takes a process id (decimal digits), not "${input}"`, { hint: 'Give the pid of the running QEMU.', details: { input } });
  }
  return { holderPid: Number(input) };
}

/** The options of `assign`, which `hotplug` takes too. */
export function addAssignOptions(command: Command, domain: 'required' | 'or-xml' = 'required'): Command {
  const withDomain =
    domain === 'required'
      ? command.requiredOption('--domain <name>', 'the domain (VM) that gets the devices')
      : command.option('--domain <name>', "the domain (VM) that gets the devices (with --domain-xml: default the XML's <name>)");
  return addVfNetOptions(
    withDomain
      .option('--hypervisor <driver>', 'the hypervisor driver that owns the domain', 'qemu')
      .option('--unmanaged', 'the devices are already detached by hand (hostdev detach); do not detach them')
      .option('--driver <name>', "stub driver for managed devices: vfio-pci, a variant, pci-stub or xen-pciback (default: each device's vfio-pci variant driver named in modules.alias, else vfio-pci)")
      .option('--with-group', "take every endpoint of the devices' IOMMU groups along")
      .option('--force', 'assign even if the host uses a device (IP address, route, mounted filesystem, console)')
      .option('--dry-run', 'print the ordered sysfs writes and table changes, change nothing')
      .option('--wait <ms>', WAIT_HELP)
      .option('--holder-pid <pid>', HOLDER_PID_HELP),
  );
}

/** The service's assign request from the options and devices of `assign` (or `hotplug`): PCI functions and keys of every kind. */
export function assignRequest(opts: AssignOptionValues, inputs: readonly string[], unmanaged: readonly PciAddress[] = [], shareable: readonly string[] = []): AssignRequest {
  const { domain, hypervisor } = parseDomainOptions(opts);
  if (inputs.length === 0 && unmanaged.length === 0) {
    throw new HostdevError('HOSTDEV_USAGE', 'no device given', { hint: 'Name at least one PCI address or device key (mdev:UUID, usb:BUS-PORT, nvme:ADDRESS/NSID, scsi:H:B:T:L).' });
  }
  const addresses = deviceRefs(inputs, parsePciRef);
  const vf = vfNetRequests(opts, [...addresses.filter((address) => tryParseAddress(address) !== null).map(parsePciRef), ...unmanaged]);
  return {
    domain,
    hypervisor,
    addresses,
    ...(unmanaged.length === 0 ? {} : { unmanaged }),
    ...(shareable.length === 0 ? {} : { shareable }),
    managed: !(opts.unmanaged ?? false),
    ...(opts.driver !== undefined ? { stubDriver: opts.driver } : {}),
    withGroup: opts.withGroup ?? false,
    force: opts.force ?? false,
    dryRun: opts.dryRun ?? false,
    wait: deviceWait(opts.wait),
    ...(vf === null ? {} : { vf }),
    ...holderPid(opts.holderPid),
    ...(opts.qmp === undefined ? {} : { qmp: opts.qmp }),
  };
}

/** What `assign` prints for its report (and `hotplug` for the assign it made). */
export function assignResult(report: ReportJson<AssignResult>, domain: string, hypervisor: string): CommandResult {
  const assigned = [...report.changes.map((change) => (change.kind === 'remove' ? change.address : change.entry.address)), ...(report.devices?.assigned ?? [])];
  const result = reportResult(report, `assigned to domain ${domain} (${hypervisor}): ${assigned.join(', ')}`);
  const devices = report.devices === undefined ? [] : devicesNotes(report.devices);
  if (report.vfConfig.length === 0 && report.warnings.length === 0 && devices.length === 0) return result;
  const vfLines = report.vfConfig.map((line) => `VF config: ${line}`);
  return {
    ...result,
    // A dry run's plan lists the `ip link set` steps itself.
    text: [result.text, ...(report.dryRun ? [] : vfLines), ...devices].join('\n'),
    json: { ...(result.json as object), vfConfig: report.vfConfig },
    warnings: [...(result.warnings ?? []), ...report.warnings],
  };
}

/** The lines an assign's devices of other kinds add: NVMe controllers taken (with a dry run's steps), and notes. */
function devicesNotes(report: DeviceAssignReport): string[] {
  const controllers = report.controllers ?? [];
  return [
    ...(controllers.length === 0 ? [] : [`NVMe controllers to vfio-pci: ${controllers.join(', ')}`]),
    ...(report.dryRun ? (report.steps ?? []).map((step) => `  ${step}`) : []),
    ...report.notes.map((note) => `note: ${note}`),
  ];
}

/** The daemon's body for an assign request (`assign`, and `hotplug` with its socket). */
export function assignBody(request: AssignRequest): AssignBodyJson {
  const { vf, wait } = request;
  return {
    domain: request.domain,
    hypervisor: request.hypervisor ?? 'qemu',
    devices: request.addresses,
    ...(request.unmanaged === undefined ? {} : { unmanaged: request.unmanaged }),
    ...(request.shareable === undefined ? {} : { shareable: request.shareable }),
    managed: request.managed ?? true,
    withGroup: request.withGroup ?? false,
    force: request.force ?? false,
    ...(request.stubDriver === undefined ? {} : { driver: request.stubDriver }),
    ...(vf === undefined ? {} : { vf }),
    ...(wait === undefined ? {} : waitBody(wait)),
    ...(request.holderPid === undefined ? {} : { holderPid: request.holderPid }),
    ...(request.qmp === undefined ? {} : { qmp: request.qmp }),
  };
}

/** Options that act on PCI functions only: refused when the command line names none (mediated, USB, NVMe and SCSI devices change no driver of theirs). */
function checkPciOptions(opts: AssignOptionValues, inputs: readonly string[]): void {
  if (inputs.some((input) => !isOtherKind(input))) return;
  const pciOnly = (['unmanaged', 'driver', 'withGroup', 'force', 'mac', 'vlan', 'spoofchk', 'trust'] as const).filter(
    (name) => (opts as Record<string, unknown>)[name] !== undefined,
  );
  if (pciOnly.length > 0) {
    throw new HostdevError('HOSTDEV_USAGE', `--${pciOnly.map(kebab).join(', --')} applies to PCI functions only`, {
      hint: 'Mediated, USB, NVMe and SCSI devices change no driver of theirs when assigned: leave these options out, or name the PCI functions they are for.',
      details: { options: pciOnly },
    });
  }
}

/** `--shareable`: the scsi: keys among the devices (libvirt's <shareable/>); refused when there is none. */
function shareableInputs(inputs: readonly string[]): string[] {
  const scsi = inputs.filter((input) => tryParseId(input)?.kind === 'scsi');
  if (scsi.length > 0) return scsi;
  throw new HostdevError('HOSTDEV_USAGE', '--shareable applies to scsi: keys only', { hint: 'Name the SCSI devices (scsi:HOST:BUS:TARGET:LUN) to share, or leave --shareable out.' });
}

/** An assign that names devices of other kinds only prints (and --json gives) the report of those devices, as it always has. */
function devicesAssignedResult(report: DeviceAssignReport, domain: string, hypervisor: string, warnings: readonly string[]): CommandResult {
  const controllers = report.controllers ?? [];
  const how = controllers.length > 0 ? `NVMe controllers to vfio-pci: ${controllers.join(', ')}` : 'ownership only: no sysfs write';
  const lines = [
    report.dryRun
      ? `dry run: would assign to domain ${domain} (${hypervisor}): ${report.assigned.join(', ')} (${how})`
      : `assigned to domain ${domain} (${hypervisor}): ${report.assigned.join(', ')}${controllers.length > 0 ? ` (${how})` : ''}`,
    ...(report.dryRun ? (report.steps ?? []).map((step) => `  ${step}`) : []),
    ...report.notes.map((note) => `note: ${note}`),
  ];
  return { json: report, text: lines.join('\n'), warnings };
}

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const DOMAIN_XML_HELP =
  "a libvirt domain XML (virsh dumpxml) or one <hostdev>/<disk> element: its <hostdev> (pci, usb, mdev, scsi) and <disk type='nvme'> devices, managed attribute and <shareable/> included";

/** `--domain-xml FILE`: the domain (--domain, else the XML's <name>) and what its device elements name. */
export async function domainXmlInputs(
  globals: GlobalOptions,
  opts: { domain?: string; domainXml?: string },
  inputs: readonly string[],
): Promise<{ domain: string; refs: readonly string[]; unmanaged: readonly PciAddress[]; shareable: readonly string[] } | null> {
  if (opts.domainXml === undefined) {
    if (opts.domain === undefined) throw new HostdevError('HOSTDEV_USAGE', "required option '--domain <name>' not specified", { hint: 'Name the domain with --domain, or give its XML with --domain-xml.' });
    return null;
  }
  if (inputs.length > 0) {
    throw new HostdevError('HOSTDEV_USAGE', `--domain-xml names the devices; ${inputs.join(' ')} given too`, { hint: 'Give the devices either in the XML file or on the command line.', details: { inputs } });
  }
  const { readDomainXml } = await import('../domain-xml.js'); // its XML library only for --domain-xml
  const parsed = await readDomainXml(opts.domainXml);
  const domain = opts.domain ?? parsed.name;
  if (domain === null) {
    throw new HostdevError('HOSTDEV_USAGE', `${opts.domainXml} has no <name> and --domain is not given`, { hint: 'Name the domain with --domain.', details: { path: opts.domainXml } });
  }
  const usb = needsUsbInventory(parsed.devices) ? (await readNonPci(globals, ['usb'])).usb : [];
  return { domain, ...domainXmlRequest(parsed.devices, usb) };
}

export function registerAssign(program: Command): void {
  addAssignOptions(program.command('assign [devices...]').description('give devices to a domain, all or nothing (detach managed ones, check IOMMU groups, reset)'), 'or-xml')
    .option('--domain-xml <file>', DOMAIN_XML_HELP)
    .option('--qmp <socket>', "the running VM's QMP socket as the devices' holder: when QEMU stops answering there they are released")
    .option('--shareable', "scsi: keys: take the SCSI devices shareable (libvirt's <shareable/>): other domains may hold them shareable too")
    .action(
    action(async (globals, command: Command, inputs: string[]) => {
      const opts = command.opts<AssignOptionValues>();
      const xml = await domainXmlInputs(globals, opts, inputs);
      if (xml !== null && opts.shareable === true) {
        throw new HostdevError('HOSTDEV_USAGE', "--shareable does not apply to --domain-xml: each <hostdev type='scsi'> says it with <shareable/>", {
          hint: 'Write <shareable/> in the SCSI <hostdev> elements to share.',
        });
      }
      if (xml === null) checkPciOptions(opts, inputs);
      // The command line's devices and a domain XML's take one path: the service's assign, all or nothing.
      const request =
        xml === null
          ? assignRequest(opts, inputs, [], opts.shareable === true ? shareableInputs(inputs) : [])
          : assignRequest({ ...opts, domain: xml.domain }, xml.refs, xml.unmanaged, xml.shareable);
      const report = await change(globals, request.dryRun ?? false, (service) => service.assign(request), operationJson, (client, options) =>
        client.assign(assignBody(request), options),
      );
      const hypervisor = request.hypervisor ?? 'qemu';
      if (xml === null && report.devices !== undefined && inputs.every(isOtherKind)) return devicesAssignedResult(report.devices, request.domain, hypervisor, report.warnings);
      return assignResult(report, request.domain, hypervisor);
    }),
  );
}
