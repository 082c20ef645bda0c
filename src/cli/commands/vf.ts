import type { Command } from 'commander';
import { parsePciRef } from '../../core/device-key.js';
import { HostdevError } from '../../core/errors.js';
import type { PciAddress } from '../../core/address.js';
import { formatOwner, ownerCell } from '../../core/tables.js';
import { describeDeparted } from '../../manager/departed.js';
import type { VfNetRequests } from '../../service/hostdev-service.js';
import type { SetCountReport, VfListReport } from '../../manager/vf-lifecycle.js';
import type { VfNetRequest } from '../../core/vf-net-config.js';
import { isEmptyRequest, parseMac, parseOnOff, parseVlan } from '../../net/vf-net-config.js';
import { recoveryPreview } from '../manager-view.js';
import { withService } from '../open-manager.js';
import { change } from '../via-daemon.js';
import { orDash, renderTable } from '../render.js';
import { action } from '../run-action.js';

function listText(report: VfListReport): string {
  const head = `PF ${report.pf} (${report.pfNetdev ?? 'no netdev'}, driver ${report.pfDriver ?? 'none'}): ${report.numVfs} of ${report.totalVfs} VFs`;
  if (report.vfs.length === 0) return head;
  const rows = report.vfs.map((vf) => [
    String(vf.index),
    vf.address,
    orDash(vf.driver),
    orDash(vf.netdev),
    ownerCell(vf.table === null ? null : { table: vf.table, owner: vf.owner }),
    orDash(vf.mac),
    vf.vlan === null || vf.vlan === 0 ? '-' : String(vf.vlan),
  ]);
  return `${head}\n${renderTable(['VF', 'ADDRESS', 'DRIVER', 'NETDEV', 'OWNER', 'MAC', 'VLAN'], rows)}`;
}

function setCountText(report: SetCountReport): string {
  const lines: string[] = [];
  const verb = report.dryRun ? 'would change' : 'changed';
  lines.push(
    report.steps.length === 0
      ? `PF ${report.pf} already has ${report.to} VFs; nothing to do`
      : `${verb} the VF count of ${report.pf}: ${report.from} -> ${report.to}${report.from > 0 && report.to !== report.from ? ' (through 0)' : ''}`,
  );
  for (const step of report.steps) lines.push(`  ${step}`);
  for (const vf of report.pruned) {
    lines.push(`  ${report.dryRun ? 'would prune' : 'pruned'} VF ${vf.vfIndex} ${vf.address} from the ${vf.table} table (${formatOwner(vf.owner)})`);
  }
  for (const address of report.stubbed) lines.push(`  ${report.dryRun ? 'would pull' : 'pulled'} ${address} away from its stub driver`);
  if (!report.dryRun && report.vfs.length > 0) {
    lines.push(`  VFs now: ${report.vfs.map((vf) => `${vf.address} (${vf.driver ?? 'no driver'})`).join(', ')}`);
  }
  return lines.join('\n');
}

function parseCount(input: string): number {
  const count = Number(input);
  if (!/^\d+$/.test(input) || !Number.isSafeInteger(count)) {
    throw new HostdevError('HOSTDEV_USAGE', `the VF count must be a whole number of 0 or more, not "${input}"`, {
      hint: 'Give the count in digits (0 removes every VF); `hostdev vf list PF` shows how many the PF supports.',
    });
  }
  return count;
}

/** Progress on a terminal only: one line rewritten in place. */
function progressPrinter(): { print: (line: string) => void; end: () => void } {
  if (!process.stderr.isTTY) return { print: () => undefined, end: () => undefined };
  let shown = false;
  return {
    print: (line) => {
      process.stderr.write(`\r\x1b[K${line}`);
      shown = true;
    },
    end: () => {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}

export function registerVf(program: Command): void {
  const vf = program.command('vf').description('SR-IOV virtual functions of a PF: list them, change their count');
  vf.command('list <pf>')
    .description('the VFs of PF in index order (virtfnN links) with address, driver, netdev, owner, MAC and VLAN')
    .action(
      action(async (globals, _command: Command, input: string) => {
        const pf = parsePciRef(input);
        const report = await withService(globals, (service) => service.vf.list({ pf }), { reader: true });
        return { json: report, text: listText(report), warnings: report.warnings };
      }),
    );
  vf.command('set-count <pf> <count>')
    .description('change the number of VFs (the kernel needs N -> 0 -> M: hostdev does it); refuses while a VF is assigned or on a stub')
    .option('--force', 'prune assigned/detached VFs from the tables first (owners are reported)')
    .option('--dry-run', 'print the ordered sysfs writes and what would be pruned, change nothing')
    .option('--autoprobe <on|off>', 'set sriov_drivers_autoprobe first; off leaves new VFs unbound, ready for vfio-pci')
    .option('--wait <ms>', 'longest wait for the VFs to appear and bind', '30000')
    .action(
      action(async (globals, command: Command, input: string, countInput: string) => {
        const opts = command.opts<{ force?: boolean; dryRun?: boolean; autoprobe?: string; wait: string }>();
        const pf = parsePciRef(input);
        const count = parseCount(countInput);
        const waitMs = parseCount(opts.wait);
        const autoprobe = opts.autoprobe === undefined ? null : parseOnOff(opts.autoprobe, '--autoprobe');
        const progress = progressPrinter();
        try {
          const dryRun = opts.dryRun ?? false;
          const force = opts.force ?? false;
          const report = await change(
            globals,
            dryRun,
            (service) => service.vf.setCount({ pf, count, force, dryRun, autoprobe, waitMs, onProgress: progress.print }),
            (direct: SetCountReport) => direct,
            (client, options) => client.setVfCount(pf, { numVfs: count, force, autoprobe, waitMs }, options),
          );
          return { json: report, text: [...recoveryPreview(report.recovery, ''), setCountText(report)].join('\n') };
        } finally {
          progress.end();
        }
      }),
    );
  vf.command('forget [addresses...]')
    .description(
      'forget departed VFs (pruned when they left the host while held): a watch no longer reports or reclaims their return',
    )
    .option('--all', 'every departed VF (`hostdev status` lists them)')
    .option('--dry-run', 'print the records that would be forgotten, change nothing')
    .action(
      action(async (globals, command: Command, inputs: string[]) => {
        const all = command.opts<{ all?: boolean }>().all ?? false;
        const dryRun = command.opts<{ dryRun?: boolean }>().dryRun ?? false;
        if (all === inputs.length > 0) {
          throw new HostdevError('HOSTDEV_USAGE', 'name the departed VFs to forget, or pass --all (not both)', {
            hint: '`hostdev status` lists the departed VFs still awaited.',
          });
        }
        const addresses = all ? null : inputs.map(parsePciRef);
        const { forgotten, warnings } = await withService(globals, (service) => service.vf.forget({ vfs: addresses, dryRun }), { dryRun });
        const verb = dryRun ? 'would forget' : 'forgot';
        const lines = forgotten.length === 0 ? [`no departed VF ${dryRun ? 'would be ' : ''}forgotten`] : forgotten.map((record) => `${verb} ${describeDeparted(record)}`);
        return { json: { forgotten, dryRun }, text: lines.join('\n'), warnings };
      }),
    );
}

// ---- VF network options of `assign` (and the restore of `release`) ----

export interface VfNetOptionValues {
  mac?: string;
  vlan?: string;
  spoofchk?: string;
  trust?: string;
}

export function addVfNetOptions(command: Command): Command {
  return command
    .option('--mac <mac>', "VF only: the VF's MAC while assigned (saved first, restored at release)")
    .option('--vlan <id>', 'VF only: the VLAN the PF tags the VF\'s traffic with (0 = none)')
    .option('--spoofchk <on|off>', 'VF only: MAC spoof checking')
    .option('--trust <on|off>', 'VF only: trusted mode (promiscuous, MAC changes from the guest)');
}

/** The VF config asked for each address; null when no VF option was given. */
export function vfNetRequests(opts: VfNetOptionValues, addresses: readonly PciAddress[]): VfNetRequests | null {
  const request: VfNetRequest = {
    ...(opts.vlan === undefined ? {} : { vlan: parseVlan(opts.vlan) }),
    ...(opts.trust === undefined ? {} : { trust: parseOnOff(opts.trust, '--trust') }),
    ...(opts.mac === undefined ? {} : { mac: parseMac(opts.mac) }),
    ...(opts.spoofchk === undefined ? {} : { spoofchk: parseOnOff(opts.spoofchk, '--spoofchk') }),
  };
  if (isEmptyRequest(request)) return null;
  if (request.mac !== undefined && addresses.length !== 1) {
    throw new HostdevError('HOSTDEV_USAGE', '--mac names one VF: give exactly one address with it', {
      hint: 'Assign VFs that need different MACs one by one.',
    });
  }
  return Object.fromEntries(addresses.map((address) => [address, request]));
}
