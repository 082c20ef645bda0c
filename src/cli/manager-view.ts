import type { Command } from 'commander';
import type { PciAddress } from '../core/address.js';
import { parsePciRef } from '../core/device-key.js';
import { ExitCode, HostdevError } from '../core/errors.js';
import { formatChange } from '../core/plan-types.js';
import { operationJson, type ReportJson } from '../service/report-json.js';
import { deviceRepairOutcome, type RecoveryReport } from '../manager/recovery.js';
import type { OperationReport, ReleaseReport } from '../manager/reports.js';
import type { HostdevService, ReattachRequest, ResetRequest } from '../service/hostdev-service.js';
import type { DeviceWait } from '../manager/host-reader.js';
import type { CommandResult } from './context.js';
import { change } from './via-daemon.js';
import type { HostdevClient, MutationOptions, OperationJson } from '../client/hostdev-client.js';
import { action } from './run-action.js';
import { formatOwner } from '../core/tables.js';
import { MAX_TIMER_MS } from '../sysfs/bounded-inventory.js';

/** What the manager commands (detach, reattach, reset, assign, release) print. */

export function parseDomainOptions(opts: { domain?: string; hypervisor?: string }): { domain: string; hypervisor: string } {
  return { domain: opts.domain ?? '', hypervisor: parseHypervisor(opts.hypervisor) };
}

/** `--hypervisor`: qemu unless given; given, it names the hypervisor driver, never empty. */
export function parseHypervisor(input: string | undefined): string {
  if (input === undefined) return 'qemu';
  if (input.trim() === '') {
    throw new HostdevError('HOSTDEV_USAGE', '--hypervisor is empty', {
      hint: 'Name the hypervisor driver that owns the domain (qemu, xen, ...), or leave --hypervisor out for qemu.',
    });
  }
  return input;
}

/** `--wait MS`: how long an operation waits for device reads the kernel holds up. */
export const WAIT_HELP = 'longest wait for a device the kernel holds (a VF whose removal waits for its VM); default 15000';

function addWaitOption(command: Command): Command {
  return command.option('--wait <ms>', WAIT_HELP);
}

/**
 * `--wait MS` in digits, at most what a Node.js timer can hold (a larger one would fire at once);
 * undefined when not given. `fallback` says what leaving it out means.
 */
export function waitMs(input: string | undefined, fallback: string, option = '--wait'): number | undefined {
  if (input === undefined) return undefined;
  if (!/^\d+$/.test(input) || Number(input) > MAX_TIMER_MS) {
    throw new HostdevError('HOSTDEV_USAGE', `${option} must be a whole number of milliseconds up to ${MAX_TIMER_MS}, not "${input}"`, {
      hint: `Give it in digits, e.g. ${option} 60000, or leave it out for ${fallback}.`,
    });
  }
  return Number(input);
}

/** The wait `--wait` asks for, telling on stderr what is waited for every 2 s. */
export function deviceWait(input: string | undefined): DeviceWait {
  const timeoutMs = waitMs(input, '15000 (HOSTDEV_READ_TIMEOUT_MS)');
  return {
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
    onSlow: (pending, waitedMs) =>
      process.stderr.write(
        `waiting for ${pending.join(', ')}: the kernel holds it (a removal waiting for the VM that uses it), ${Math.round(waitedMs / 1000)} s\n`,
      ),
  };
}

/** `--wait` for the daemon: the device wait's bound (its progress lines are printed by a direct run only). */
export function waitBody(wait: DeviceWait): { waitMs?: number } {
  return wait.timeoutMs === undefined ? {} : { waitMs: wait.timeoutMs };
}

function listLine(label: string, addresses: readonly PciAddress[]): string[] {
  return addresses.length > 0 ? [`${label}: ${addresses.join(', ')}`] : [];
}

/** A dry run's recovery, one line each, in the order recovery works: repairs, prunes, VF config. */
function recoveryPreviewLines(report: RecoveryReport): string[] {
  const lines: string[] = [];
  for (const device of report.repaired) {
    const verb = device.direction === 'rolled-back' ? 'roll back' : 'roll forward';
    const where = device.table === null ? 'in no table' : `in the ${device.table} table`;
    lines.push(`would ${verb} ${device.address} (an unfinished ${device.operation}) to ${device.driver ?? 'no driver'}, ${where}`);
    for (const step of device.steps ?? []) lines.push(`  ${step}`);
  }
  for (const entry of report.pruned) {
    const owner = entry.usedBy ? ` (used by ${formatOwner(entry.usedBy)})` : '';
    lines.push(`would prune ${entry.address} from the ${entry.table} table: no longer on this host${owner}`);
  }
  for (const repair of report.vfConfig) {
    const verb = repair.outcome === 'dropped' ? 'drop the saved VF network config of' : 'restore the saved VF network config of';
    lines.push(`would ${verb} ${repair.address}${repair.outcome === 'dropped' ? ' (the VF no longer exists)' : ''}`);
  }
  for (const repair of report.devices ?? []) {
    const verb = repair.direction === 'rolled-back' ? 'roll back' : 'roll forward';
    lines.push(`would ${verb} ${repair.key} (an unfinished ${repair.operation}): the mediated device ${deviceRepairOutcome(repair)}`);
    for (const step of repair.steps ?? []) lines.push(`  ${step}`);
  }
  return lines;
}

/** A dry run's 'first, recovery at open:' block, indented by `indent`; nothing when recovery would do nothing. */
export function recoveryPreview(recovery: RecoveryReport | undefined, indent: string): string[] {
  if (recovery === undefined) return [];
  return [`${indent}first, recovery at open:`, ...recoveryPreviewLines(recovery).map((line) => `${indent}  ${line}`)];
}

/** Dry run: what recovery would do first, the ordered writes (and checks, module loads), then the table changes. */
function planText(report: ReportJson): string {
  const lines = [`${report.operation} plan (dry run: nothing was changed):`];
  lines.push(...recoveryPreview(report.recovery, '  '));
  lines.push(...(report.steps.length > 0 ? report.steps.map((step) => `  ${step}`) : ['  (no sysfs write)']));
  lines.push(...report.changes.map((change) => `  ${formatChange(change)}`));
  lines.push(...listLine('  prune (vanished)', report.pruned));
  return lines.join('\n');
}

/** What a change command prints for its report's JSON (made here, or the daemon's answer). */
export function reportResult(report: ReportJson, headline: string): CommandResult {
  const warnings = report.failures.map((failure) => `${failure.address} (${failure.phase}): ${failure.message}`);
  const lines = report.dryRun ? [planText(report)] : headline === '' ? [] : [headline];
  if (!report.dryRun) {
    for (const reset of report.resets) lines.push(`reset ${reset.address} (method ${reset.method})`);
    lines.push(...listLine('pruned (no longer on this host, removed from both tables)', report.pruned));
  }
  lines.push(...report.notes.map((note) => `note: ${note}`));
  const result: CommandResult = { json: report, text: lines.join('\n'), warnings };
  return report.failures.length > 0 ? { ...result, exitCode: ExitCode.partial } : result;
}

export function releaseHeadline(report: ReportJson<ReleaseReport>, domain: string): string {
  const lines = [`released ${report.released.length} device(s) of domain ${domain}`];
  lines.push(...listLine('back on their host driver', report.reattached));
  lines.push(...listLine('left on the stub (inactive)', report.inactive));
  return lines.join('\n');
}

/** `hostdev NAME ADDRESS [--dry-run]`: the node-device commands without options of their own. */
export function registerNodeCommand(
  program: Command,
  spec: {
    readonly name: string;
    readonly description: string;
    readonly run: (service: HostdevService, request: ReattachRequest & ResetRequest & { readonly force?: boolean }) => Promise<OperationReport>;
    /** The help of a --force option, for commands that take one. */
    readonly force?: string;
    /** The same through the daemon. */
    readonly remote: (client: HostdevClient, address: PciAddress, body: { force?: boolean; waitMs?: number }, options: MutationOptions) => Promise<OperationJson>;
    readonly headline: (report: ReportJson, address: PciAddress) => string;
  },
): void {
  const command = program
    .command(`${spec.name} <address>`)
    .description(spec.description)
    .option('--dry-run', 'print the ordered sysfs writes and table changes, change nothing');
  if (spec.force !== undefined) command.option('--force', spec.force);
  addWaitOption(command).action(
      action(async (globals, command: Command, input: string) => {
        const address = parsePciRef(input);
        const opts = command.opts<{ dryRun?: boolean; wait?: string; force?: boolean }>();
        const dryRun = opts.dryRun ?? false;
        const wait = deviceWait(opts.wait);
        const force = opts.force === true ? { force: true } : {};
        const report = await change(
          globals,
          dryRun,
          (service) => spec.run(service, { device: address, dryRun, wait, ...force }),
          operationJson,
          (client, options) => spec.remote(client, address, { ...waitBody(wait), ...force }, options),
        );
        return reportResult(report, spec.headline(report, address));
      }),
    );
}
