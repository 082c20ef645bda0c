import type { Command } from 'commander';
import { parsePciRef } from '../../core/device-key.js';
import { ExitCode } from '../../core/errors.js';
import { operationJson } from '../../service/report-json.js';
import { WAIT_HELP, deviceWait, reportResult } from '../manager-view.js';
import { withService } from '../open-manager.js';
import { renderTable } from '../render.js';
import { action } from '../run-action.js';

// Claims work directly (never through a daemon): their definitions are files of this host's
// config directory, and `claims apply` runs at boot, before any daemon.

export function registerClaim(program: Command): void {
  program
    .command('claim <address>')
    .description('claim a device from boot: define it (CONFIG/claims.d) and detach it now onto its stub (owner hostdev/claim)')
    .option('--driver <name>', 'stub driver: vfio-pci, a vfio-pci variant driver, pci-stub or xen-pciback (default: as detach picks it)')
    .option('--match <vendor:device>', 'claim only this card: refuse (now and at boot) a device with other IDs (default: the IDs there now)')
    .option('--force', 'detach even if the host uses the device (IP address, route, mounted filesystem, console)')
    .option('--dry-run', 'print the detach plan and the files that would be written, change nothing')
    .option('--wait <ms>', WAIT_HELP)
    .action(
      action(async (globals, command: Command, input: string) => {
        const opts = command.opts<{ driver?: string; match?: string; force?: boolean; dryRun?: boolean; wait?: string }>();
        const address = parsePciRef(input);
        const dryRun = opts.dryRun ?? false;
        const report = await withService(
          globals,
          (service) =>
            service.claims.claim(address, {
              ...(opts.driver === undefined ? {} : { driver: opts.driver }),
              ...(opts.match === undefined ? {} : { match: opts.match }),
              force: opts.force ?? false,
              dryRun,
              wait: deviceWait(opts.wait),
            }),
          { dryRun },
        );
        const detached = reportResult(
          operationJson(report.detach),
          `claimed ${address} (${report.claim.match.vendor}:${report.claim.match.device}) for ${report.claim.driver}: on ${report.claim.driver}, in the inactive table, owner ${report.owner}`,
        );
        const files = dryRun ? `would write ${report.file} and ${report.udevRules}` : `wrote ${report.file} and ${report.udevRules}`;
        return { ...detached, json: { ...report, detach: operationJson(report.detach) }, text: `${detached.text}\n${files}` };
      }),
    );
}

export function registerUnclaim(program: Command): void {
  program
    .command('unclaim <address>')
    .description('remove a claim and give the device back to its host driver (reattach)')
    .option('--dry-run', 'print the reattach plan and the files that would change, change nothing')
    .option('--wait <ms>', WAIT_HELP)
    .action(
      action(async (globals, command: Command, input: string) => {
        const opts = command.opts<{ dryRun?: boolean; wait?: string }>();
        const address = parsePciRef(input);
        const dryRun = opts.dryRun ?? false;
        const report = await withService(globals, (service) => service.claims.unclaim(address, { dryRun, wait: deviceWait(opts.wait) }), { dryRun });
        const given = report.reattach === null ? null : reportResult(operationJson(report.reattach), `unclaimed ${address}: given back to the host`);
        const lines = [
          ...(given === null ? [`unclaimed ${address}`] : [given.text]),
          ...report.notes.map((note) => `note: ${note}`),
          dryRun ? `would remove ${report.file} and write ${report.udevRules}` : `removed ${report.file}; wrote ${report.udevRules}`,
        ];
        return {
          json: { ...report, reattach: report.reattach === null ? null : operationJson(report.reattach) },
          text: lines.join('\n'),
          warnings: given?.warnings ?? [],
          ...(given?.exitCode === undefined ? {} : { exitCode: given.exitCode }),
        };
      }),
    );
}

export function registerClaims(program: Command): void {
  const claims = program
    .command('claims')
    .description('the claims from boot and where each device stands (subcommands: apply, write-udev)')
    .action(
      action(async (globals) => {
        const report = await withService(globals, (service) => service.claims.list(), { reader: true });
        const rows = report.claims.map((c) => [c.address, c.match, c.driver, c.state, c.found === null ? '-' : `${c.found.ids} on ${c.found.driver ?? '(none)'}`]);
        const text = rows.length === 0 ? 'no claims' : renderTable(['ADDRESS', 'MATCH', 'DRIVER', 'STATE', 'NOW'], rows);
        return { json: report.claims, text, warnings: report.warnings };
      }),
    );
  claims
    .command('apply')
    .description('put every claimed device that is there (and is the claimed card) on its stub: what the boot units run; idempotent')
    .option('--dry-run', 'print what each claim would do, change nothing')
    .option('--wait <ms>', WAIT_HELP)
    .action(
      action(async (globals, command: Command) => {
        const opts = command.opts<{ dryRun?: boolean; wait?: string }>();
        const dryRun = opts.dryRun ?? false;
        const report = await withService(globals, (service) => service.claims.apply({ dryRun, wait: deviceWait(opts.wait) }), { dryRun });
        const lines = report.claims.map((item) => `${item.address}: ${item.outcome}: ${item.detail}`);
        const failed = report.claims.filter((item) => item.outcome === 'mismatch' || item.outcome === 'failed');
        return {
          json: report,
          text: lines.length === 0 ? 'no claims' : lines.join('\n'),
          warnings: [...report.warnings, ...failed.flatMap((item) => (item.error?.hint ? [`${item.address}: ${item.error.hint}`] : []))],
          ...(failed.length > 0 ? { exitCode: ExitCode.partial } : {}),
        };
      }),
    );
  claims
    .command('write-udev')
    .description('write the udev rules of the claims (default ROOT/etc/udev/rules.d/70-hostdev-claims.rules)')
    .option('--output <file>', 'write them there instead')
    .action(
      action(async (globals, command: Command) => {
        const opts = command.opts<{ output?: string }>();
        const written = await withService(globals, (service) => service.claims.writeUdev(opts.output), { reader: true });
        return { json: written, text: `wrote ${written.path} (${written.claims} claim${written.claims === 1 ? '' : 's'})` };
      }),
    );
}
