import { type Command, Option } from 'commander';
import { HostdevError } from '../../core/errors.js';
import type { QemuMachine } from '../../core/qemu-args.js';
import { shellJoin } from '../../core/shell.js';
import { read } from '../via-daemon.js';
import { parseHypervisor } from '../manager-view.js';
import { action } from '../run-action.js';

export function registerQemuArgs(program: Command): void {
  program
    .command('qemu-args')
    .description("QEMU arguments for a domain's active devices (one -device vfio-pci each, with a stable id)")
    .requiredOption('--domain <name>', 'the domain (VM) that holds the devices')
    .option('--hypervisor <driver>', 'the hypervisor driver that owns the domain', 'qemu')
    .addOption(new Option('--machine <type>', 'q35: each device behind its own pcie-root-port; pc: on the root bus').choices(['q35', 'pc']).default('q35'))
    .option('--first-chassis <n>', 'chassis number of the first root port (q35)', '1')
    .action(
      action(async (globals, command: Command) => {
        const opts = command.opts<{ domain: string; hypervisor: string; machine: QemuMachine; firstChassis: string }>();
        const firstChassis = Number(opts.firstChassis);
        if (!Number.isInteger(firstChassis)) {
          throw new HostdevError('HOSTDEV_USAGE', `--first-chassis must be a whole number, not "${opts.firstChassis}"`, {
            hint: 'Give --first-chassis a whole number of 1 or more, or leave it out for 1.',
          });
        }
        const request = { domain: opts.domain, hypervisor: parseHypervisor(opts.hypervisor), machine: opts.machine, firstChassis };
        const { argv, warnings } = await read<{ argv: readonly string[]; warnings: readonly string[] }>(
          globals,
          (service) => service.qemuArgs(request),
          async (client) => {
            const { report, warnings: sent } = await client.qemuArgs(request);
            return { argv: report, warnings: sent };
          },
        );
        return { json: argv, text: shellJoin(argv), warnings };
      }),
    );
}
