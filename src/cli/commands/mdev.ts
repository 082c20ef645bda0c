import type { Command } from 'commander';
import type { MdevReport } from '../../manager/device-ops.js';
import { ownerName } from '../../core/tables.js';
import { ExitCode } from '../../core/errors.js';
import { withService } from '../open-manager.js';
import { renderTable } from '../render.js';
import { action } from '../run-action.js';

/** What `mdev create` and `mdev remove` print: the write (a dry run: the write it would make). */
function mdevResult(report: MdevReport): { json: MdevReport; text: string } {
  const write = `write ${report.write.path} ${JSON.stringify(report.write.value)}`;
  if (report.dryRun) return { json: report, text: `dry run: would ${write}` };
  const what = report.operation === 'mdev-create' ? `created ${report.key} (type ${report.type ?? '?'} on ${report.parent ?? '?'})` : `removed ${report.key}`;
  return { json: report, text: what };
}

/** `hostdev mdev create|remove|list`: mdevctl's start, stop and list (and its types) on hostdev's journal and tables. */
export function registerMdev(program: Command): void {
  const mdev = program.command('mdev').description('mediated devices: create, remove and list them (mdevctl start/stop/list/types)');
  mdev
    .command('create <parent> <type>')
    .description("make a mediated device of TYPE on PARENT (a PCI address or a virtual parent's name) through the type's create file")
    .option('--uuid <uuid>', 'the UUID to give it (default: a random one)')
    .option('--persist', 'also write its definition (ROOT/etc/hostdev/mdev.d/UUID.json): `mdev start-defined` makes it again at boot')
    .option('--dry-run', 'print the sysfs write, change nothing')
    .action(
      action(async (globals, command: Command, parent: string, type: string) => {
        const opts = command.opts<{ uuid?: string; dryRun?: boolean; persist?: boolean }>();
        const request = { parent, type, dryRun: opts.dryRun ?? false, persist: opts.persist ?? false, ...(opts.uuid === undefined ? {} : { uuid: opts.uuid }) };
        return mdevResult(await withService(globals, (service) => service.mdevCreate(request), { dryRun: request.dryRun }));
      }),
    );
  mdev
    .command('remove <uuid>')
    .description('remove a mediated device through its remove file (refused while a domain holds it)')
    .option('--undefine', 'also drop its definition, so that `mdev start-defined` no longer makes it')
    .option('--dry-run', 'print the sysfs write, change nothing')
    .action(
      action(async (globals, command: Command, uuid: string) => {
        const opts = command.opts<{ dryRun?: boolean; undefine?: boolean }>();
        const dryRun = opts.dryRun ?? false;
        return mdevResult(await withService(globals, (service) => service.mdevRemove({ uuid, dryRun, undefine: opts.undefine ?? false }), { dryRun }));
      }),
    );
  mdev
    .command('start-defined')
    .description('make every defined mediated device (mdev create --persist) that is not there; run at boot by hostdev-mdev.service')
    .option('--dry-run', 'print the sysfs writes, change nothing')
    .action(
      action(async (globals, command: Command) => {
        const dryRun = command.opts<{ dryRun?: boolean }>().dryRun ?? false;
        const report = await withService(globals, (service) => service.mdevStartDefined({ dryRun }), { dryRun });
        const lines = [
          ...report.started.map((started) => mdevResult(started).text),
          ...report.present.map((key) => `${key} is there already`),
        ];
        if (lines.length === 0 && report.failed.length === 0) lines.push('no mediated device is defined');
        const warnings = report.failed.map((failure) => `${failure.key} not made: ${failure.message} (${failure.code})`);
        return { json: report, text: lines.join('\n'), warnings, ...(report.failed.length > 0 ? { exitCode: ExitCode.partial } : {}) };
      }),
    );
  mdev
    .command('list')
    .description('the mediated devices with their owners, and the types each parent offers')
    .action(
      action(async (globals) => {
        const listed = await withService(globals, (service) => service.mdevList(), { reader: true });
        const devices = renderTable(
          ['KEY', 'PARENT', 'TYPE', 'OWNER'],
          listed.devices.map((d) => {
            const device = d as typeof d & { parent: string; type: string | null };
            return [device.key, device.parent, device.type ?? '-', device.owner ? ownerName(device.owner) : '-'];
          }),
        );
        const types = renderTable(
          ['PARENT', 'TYPE', 'NAME', 'AVAILABLE', 'API'],
          listed.parents.flatMap((parent) =>
            parent.types.map((type) => [parent.name, type.id, type.name ?? '-', String(type.availableInstances ?? '-'), type.deviceApi ?? '-']),
          ),
        );
        return { json: { devices: listed.devices, parents: listed.parents }, text: [devices, '', types].join('\n'), warnings: listed.warnings };
      }),
    );
}
