import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { HostdevError } from '../../core/errors.js';
import { SIMULATED_STATE_DIR } from '../../core/host-identity.js';
import { hostdevCommand } from '../../core/shell.js';
import { KernelWriteError } from '../../sysfs/kernel-port.js';
import { SysfsLayout } from '../../sysfs/paths.js';
import { DEFAULT_PRESET, presets } from '../../sim/presets.js';
import type { HostSpec } from '../../sim/spec.js';
import type { GlobalOptions } from '../context.js';
import { action } from '../run-action.js';

// The builder, the simulated kernel (SQLite) and the snapshot code load on first use, so that
// registering this command costs other commands nothing at start-up.
const requireSimulatedRoot = async (root: string, what: string) =>
  (await import('../kernel-port-for.js')).requireSimulatedRoot(root, what);

function usage(message: string, hint: string): HostdevError {
  return new HostdevError('HOSTDEV_USAGE', message, { hint });
}

async function loadSpec(options: { preset?: string; spec?: string }): Promise<{ name: string; spec: HostSpec }> {
  if (options.preset !== undefined && options.spec !== undefined) {
    throw usage('--preset and --spec cannot be used together', 'Pick one: a preset name or a JSON spec file.');
  }
  if (options.spec !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(options.spec, 'utf8'));
    } catch (error) {
      throw usage(`cannot read the spec file ${options.spec}: ${(error as Error).message}`, 'Give a JSON file shaped like a host spec: `hostdev sim spec-schema` prints its JSON Schema.');
    }
    const { parseHostSpec, SpecError } = await import('../../sim/spec.js');
    try {
      return { name: options.spec, spec: parseHostSpec(raw) };
    } catch (error) {
      const field = error instanceof SpecError ? ` ${error.field}` : '';
      throw usage(`the spec file ${options.spec} is not a valid host spec: ${(error as Error).message}`, `Fix the field${field}; \`hostdev sim spec-schema\` prints the JSON Schema of a spec.`);
    }
  }
  const name = options.preset ?? DEFAULT_PRESET;
  const spec = presets[name];
  if (!spec) {
    throw usage(`unknown preset "${name}"`, `Presets: ${Object.keys(presets).join(', ')}.`);
  }
  return { name, spec };
}

export function registerSim(program: Command): void {
  const sim = program.command('sim').description('simulated hosts: build, write to and snapshot sysfs-shaped trees');
  sim
    .command('create <dir>')
    .description(`write a simulated host under DIR (preset "${DEFAULT_PRESET}" unless --preset or --spec)`)
    .option('--preset <name>', `one of: ${Object.keys(presets).join(', ')}`)
    .option('--spec <file>', 'a JSON host spec')
    .action(
      action(async (_globals, command: Command, dir: string) => {
        const { name, spec } = await loadSpec(command.opts<{ preset?: string; spec?: string }>());
        if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
          throw usage(`${dir} is not empty`, 'Give a new or empty directory.');
        }
        const { buildHost } = await import('../../sim/builder.js');
        const { SpecError } = await import('../../sim/spec.js');
        try {
          buildHost(dir, spec);
        } catch (error) {
          if (!(error instanceof SpecError)) throw error;
          throw usage(`the spec ${name} cannot be built: ${error.message}`, `Fix the field ${error.field}; see src/sim/spec.ts.`);
        }
        return {
          json: { root: dir, preset: name, description: spec.description ?? null },
          text: `simulated host "${name}" written to ${dir}${spec.description ? `\n  ${spec.description}` : ''}\n  try: ${hostdevCommand('--root', dir, '--simulate', 'list')}\n  (its tables live in ${path.join(dir, SIMULATED_STATE_DIR)}, apart from this host's)`,
        };
      }),
    );

  sim
    .command('write <path> <value>')
    .description('one raw sysfs write as the simulated kernel applies it (echo VALUE > PATH); PATH as on the host, under --root')
    .option('-n, --no-newline', 'write VALUE without the trailing newline echo adds')
    .action(
      action(async (globals, command: Command, hostPath: string, value: string) => {
        if (!SysfsLayout.isSysfsPath(hostPath)) {
          throw usage(`sim write takes a path under /sys, not ${JSON.stringify(hostPath)}`, 'Name a sysfs attribute as on the host: /sys/bus/pci/devices/ADDRESS/FILE.');
        }
        await requireSimulatedRoot(globals.root, '`hostdev sim write`');
        const { newline } = command.opts<{ newline: boolean }>();
        const { SimKernel } = await import('../../sim/kernel.js');
        const kernel = new SimKernel(globals.root);
        try {
          await kernel.write(hostPath, newline ? `${value}\n` : value);
        } catch (error) {
          if (!(error instanceof KernelWriteError)) throw error;
          if (error.outside !== null) throw (await import('../../manager/kernel-errors.js')).outsideRootRefused(error, null);
          throw new HostdevError('HOSTDEV_KERNEL_WRITE', error.message, {
            hint: 'The simulated kernel refused the write as Linux would; the errno says why.',
            details: { path: hostPath, errno: error.errno },
            cause: error,
          });
        } finally {
          kernel.close();
        }
        return { json: { path: hostPath, value, errno: null }, text: '' };
      }),
    );
  /** The source host's use of its devices, for the tree's simulated host-use guard; how many devices it names. */
  async function copyHostUse(globals: GlobalOptions, dir: string): Promise<number> {
    const [{ readHost }, { ProcHostUsage }, { simHostUsageFile }] = await Promise.all([
      import('../inventory-view.js'),
      import('../../host/proc-host-usage.js'),
      import('../../host/sim-host-usage.js'),
    ]);
    const { inventory } = await readHost(globals);
    const uses = await new ProcHostUsage(globals.root).usesOf(inventory.devices);
    if (uses.size > 0) fs.writeFileSync(simHostUsageFile(dir), `${JSON.stringify({ devices: Object.fromEntries(uses) }, null, 1)}\n`);
    return uses.size;
  }
  sim
    .command('spec-schema')
    .description('print the JSON Schema of a --spec file (generated from the schema that checks it)')
    .action(
      action(async () => {
        const schema = (await import('../../sim/spec.js')).hostSpecJsonSchema();
        return { json: schema, text: JSON.stringify(schema, null, 2) };
      }),
    );
  sim
    .command('snapshot <dir>')
    .description("copy this host's PCI topology (read-only, from --root, default /) into a new simulated tree DIR")
    .action(
      action(async (globals, _command: Command, dir: string) => {
        if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
          throw usage(`${dir} is not empty`, 'Give a new or empty directory.');
        }
        const { snapshotHost } = await import('../../sim/snapshot.js');
        const result = snapshotHost(globals.root, dir);
        const hostUse = await copyHostUse(globals, dir);
        return {
          json: { root: dir, ...result, hostUse },
          text: `snapshot of ${globals.root}: ${result.devices} devices, ${result.drivers} drivers, IOMMU ${result.iommu ? 'on' : 'off'}, written to ${dir}\n  rehearse with: ${hostdevCommand('--root', dir, '--simulate')} COMMAND...\n  (its tables live in ${path.join(dir, SIMULATED_STATE_DIR)}, apart from this host's)`,
        };
      }),
    );
  sim
    .command('reboot <dir>')
    .description('reboot the simulated host in DIR: a new boot id, devices back on their host drivers, driver_override cleared, VFs gone (sriov_numvfs 0)')
    .action(
      action(async (_globals, _command: Command, dir: string) => {
        await requireSimulatedRoot(dir, '`hostdev sim reboot`');
        const [{ SimKernel }, { rebootSimulatedHost }] = await Promise.all([import('../../sim/kernel.js'), import('../../sim/reboot.js')]);
        const kernel = new SimKernel(dir);
        try {
          const result = await rebootSimulatedHost(kernel);
          const lines = [
            `rebooted ${dir}: boot id ${result.bootId}`,
            `  off their stub: ${result.leftStub.join(' ') || '-'}`,
            `  VFs removed under: ${result.vfsRemoved.join(' ') || '-'}`,
            `  bound by the probe at boot: ${result.probed.join(' ') || '-'}`,
          ];
          return { json: { root: dir, ...result }, text: lines.join('\n') };
        } finally {
          kernel.close();
        }
      }),
    );
  sim
    .command('release <id>')
    .description('release a simulated write blocked by a `block` fault with this id (see src/sim/faults.ts)')
    .action(
      action(async (globals, _command: Command, id: string) => {
        await requireSimulatedRoot(globals.root, '`hostdev sim release`');
        const { isBlocked, releaseBlocked } = await import('../../sim/faults.js');
        const wasBlocked = isBlocked(globals.root, id);
        releaseBlocked(globals.root, id);
        return {
          json: { id, wasBlocked },
          text: wasBlocked ? `released ${id}` : `released ${id} (no write is blocked on it now; the release waits for one)`,
        };
      }),
    );
}
