import type { Command } from 'commander';
import type { MdevReport, StartDefinedReport } from '../../manager/mdev-ops.js';
import type { MdevAttribute, MdevStart } from '../../state/mdev-definitions.js';
import { ownerName } from '../../core/tables.js';
import { ExitCode, HostdevError } from '../../core/errors.js';
import { withService } from '../open-manager.js';
import { change } from '../via-daemon.js';
import { renderTable } from '../render.js';
import { action } from '../run-action.js';

/** What `mdev create` and `mdev remove` print: the write (a dry run: the writes it would make). */
function mdevResult(report: MdevReport): { json: MdevReport; text: string } {
  const writes = [report.write, ...report.attributes].map((write) => `write ${write.path} ${JSON.stringify(write.value)}`);
  if (report.dryRun) return { json: report, text: writes.map((write) => `dry run: would ${write}`).join('\n') };
  const set = report.attributes.length === 0 ? '' : `, ${report.attributes.map((a) => `${a.path.slice(a.path.lastIndexOf('/') + 1)}=${a.value}`).join(' ')}`;
  const what = report.operation === 'mdev-create' ? `created ${report.key} (type ${report.type ?? '?'} on ${report.parent ?? '?'}${set})` : `removed ${report.key}`;
  return { json: report, text: what };
}

/** `--attr NAME=VALUE`, repeatable, in the order given (mdevctl's attrs). */
function collectAttr(value: string, previous: MdevAttribute[] = []): MdevAttribute[] {
  const at = value.indexOf('=');
  if (at <= 0) {
    throw new HostdevError('HOSTDEV_USAGE', `--attr ${value}: not NAME=VALUE`, {
      hint: 'Give each attribute as NAME=VALUE, e.g. --attr assign_adapter=0x05; repeat --attr for more, in the order they are to be written.',
      details: { attribute: value },
    });
  }
  return [...previous, { name: value.slice(0, at), value: value.slice(at + 1) }];
}

/** What start-defined and start print: each definition's outcome; exit 8 when one failed. */
function startResult(report: StartDefinedReport, none: string) {
  const lines = [
    ...report.started.map((started) => mdevResult(started).text),
    ...report.present.map((key) => `${key} is there already`),
    ...report.manual.map((key) => `${key} is defined with start manual: not made (\`hostdev mdev start UUID\` makes it)`),
  ];
  if (lines.length === 0 && report.failed.length === 0) lines.push(none);
  const warnings = report.failed.map((failure) => `${failure.key} not made: ${failure.message} (${failure.code})`);
  return { json: report, text: lines.join('\n'), warnings, ...(report.failed.length > 0 ? { exitCode: ExitCode.partial } : {}) };
}

function startOf(opts: { manual?: boolean }): MdevStart {
  return opts.manual === true ? 'manual' : 'auto';
}

/** `hostdev mdev create|remove|list`: mdevctl's start, stop and list (and its types) on hostdev's journal and tables. */
export function registerMdev(program: Command): void {
  const mdev = program.command('mdev').description('mediated devices: create, remove and list them (mdevctl start/stop/list/types)');
  mdev
    .command('create <parent> <type>')
    .description("make a mediated device of TYPE on PARENT (a PCI address or a virtual parent's name) through the type's create file")
    .option('--uuid <uuid>', 'the UUID to give it (default: a random one)')
    .option('--attr <name=value>', "write VALUE to the mdev's attribute NAME once it is made (repeatable, in order; one refused removes the mdev again)", collectAttr)
    .option('--persist', 'also write its definition (ROOT/etc/hostdev/mdev.d/UUID.json): `mdev start-defined` makes it again at boot')
    .option('--manual', 'with --persist: the definition is not made at boot, only by `mdev start UUID` (mdevctl\'s start "manual")')
    .option('--dry-run', 'print the sysfs writes, change nothing')
    .action(
      action(async (globals, command: Command, parent: string, type: string) => {
        const opts = command.opts<{ uuid?: string; dryRun?: boolean; persist?: boolean; manual?: boolean; attr?: MdevAttribute[] }>();
        if (opts.manual === true && opts.persist !== true) {
          throw new HostdevError('HOSTDEV_USAGE', '--manual says how a definition starts: it needs --persist', {
            hint: 'Add --persist to write a definition that boot leaves alone, or drop --manual.',
          });
        }
        const request = {
          parent,
          type,
          dryRun: opts.dryRun ?? false,
          persist: opts.persist ?? false,
          start: startOf(opts),
          attrs: opts.attr ?? [],
          ...(opts.uuid === undefined ? {} : { uuid: opts.uuid }),
        };
        const { dryRun: _dryRun, ...body } = request;
        return mdevResult(await change(globals, request.dryRun, (service) => service.mdevCreate(request), (report) => report, (client, options) => client.mdevCreate(body, options)));
      }),
    );
  mdev
    .command('define <parent> <type>')
    .description('write a definition of a mediated device without making it (mdevctl define); the parent need not be there yet')
    .option('--uuid <uuid>', 'the UUID to give it (default: a random one)')
    .option('--attr <name=value>', 'an attribute to write once it is made (repeatable, in order)', collectAttr)
    .option('--manual', 'boot leaves it alone: only `mdev start UUID` makes it (default: `mdev start-defined` makes it at boot)')
    .option('--dry-run', 'print the definition, write nothing')
    .action(
      action(async (globals, command: Command, parent: string, type: string) => {
        const opts = command.opts<{ uuid?: string; dryRun?: boolean; manual?: boolean; attr?: MdevAttribute[] }>();
        const dryRun = opts.dryRun ?? false;
        const request = { parent, type, dryRun, start: startOf(opts), attrs: opts.attr ?? [], ...(opts.uuid === undefined ? {} : { uuid: opts.uuid }) };
        const report = await withService(globals, (service) => service.mdevDefine(request), { dryRun });
        const text = `${dryRun ? 'dry run: would define' : 'defined'} ${report.key} (type ${report.type} on ${report.parent}, start ${report.start}) in ${report.definition}`;
        return { json: report, text };
      }),
    );
  mdev
    .command('start <uuid>')
    .description('make one defined mediated device, whatever its start mode (mdevctl start -u UUID)')
    .option('--dry-run', 'print the sysfs writes, change nothing')
    .action(
      action(async (globals, command: Command, uuid: string) => {
        const dryRun = command.opts<{ dryRun?: boolean }>().dryRun ?? false;
        const report = await withService(globals, (service) => service.mdevStart({ uuid, dryRun }), { dryRun });
        return startResult(report, `mdev:${uuid} is defined`);
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
        const undefine = opts.undefine ?? false;
        return mdevResult(await change(globals, dryRun, (service) => service.mdevRemove({ uuid, dryRun, undefine }), (report) => report, (client, options) => client.mdevRemove(uuid, { undefine }, options)));
      }),
    );
  mdev
    .command('start-defined')
    .description('make every defined mediated device (mdev create --persist) that is not there; run at boot by hostdev-mdev.service')
    .option('--parent <parent>', "only the definitions on this parent (what udev/60-hostdev-mdev.rules runs when a parent registers)")
    .option('--dry-run', 'print the sysfs writes, change nothing')
    .action(
      action(async (globals, command: Command) => {
        const opts = command.opts<{ dryRun?: boolean; parent?: string }>();
        const dryRun = opts.dryRun ?? false;
        const report = await withService(globals, (service) => service.mdevStartDefined({ dryRun, ...(opts.parent === undefined ? {} : { parent: opts.parent }) }), { dryRun });
        return startResult(report, opts.parent === undefined ? 'no mediated device is defined' : `no mediated device is defined on ${opts.parent}`);
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
        const defined =
          listed.definitions.length === 0
            ? []
            : [
                '',
                renderTable(
                  ['DEFINED', 'PARENT', 'TYPE', 'START', 'ATTRS', 'MADE'],
                  listed.definitions.map((d) => [`mdev:${d.uuid}`, d.parent, d.type, d.start, d.attrs.map((a) => `${a.name}=${a.value}`).join(' ') || '-', d.present ? 'yes' : 'no']),
                ),
              ];
        return { json: { devices: listed.devices, parents: listed.parents, definitions: listed.definitions }, text: [devices, '', types, ...defined].join('\n'), warnings: listed.warnings };
      }),
    );
}
