import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { ExitCode, isHostdevError } from '../core/errors.js';
import { loadCommands } from './commands/index.js';

/** The package's version (package.json is two levels up from src/cli and from dist/cli alike). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown (no package.json beside dist/)';
  }
}

/** The program with its global options, before any command is registered. */
export function programFrame(): Command {
  return new Command('hostdev')
    .version(packageVersion(), '--version', 'print the version of hostdev')
    .description('Host PCI device manager: hand PCI devices and SR-IOV VFs to VMs and take them back, safely.')
    .addOption(new Option('--root <dir>', 'directory that stands for / (sysfs is read under DIR/sys)').default('/'))
    .option('--json', 'machine-readable output on stdout (errors as JSON on stderr)')
    .option('--state-dir <dir>', 'where the device tables live (default: ROOT/.hostdev-sim/state with --simulate, else $HOSTDEV_STATE_DIR or /var/lib/hostdev)')
    .option('--simulate', 'apply every write through the simulated kernel to the tree under --root')
    .option('--socket-dir <dir>', "the daemon's socket directory: hostdev daemon listens there, other commands go through a daemon that answers there (default: $HOSTDEV_SOCKET_DIR or /run/hostdev)")
    .option('--config-dir <dir>', 'where claims are defined, in DIR/claims.d (default: ROOT/etc/hostdev with --simulate, else $HOSTDEV_CONFIG_DIR or ROOT/etc/hostdev)')
    .option('--no-daemon', 'work directly even when a daemon answers (also HOSTDEV_NO_DAEMON=1)')
    .showHelpAfterError()
    .exitOverride();
}

/** Long names of the global options that take a value: their values are never a command name. */
export function globalOptionsWithValue(program: Command): string[] {
  return program.options.filter((option) => option.required || option.optional).flatMap((option) => option.long ?? []);
}

export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = programFrame();
  for (const register of await loadCommands(argv, globalOptionsWithValue(program))) register(program);
  return program;
}

function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = await buildProgram(argv);
  program.configureOutput({ writeErr: (text) => process.stderr.write(text) });
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return error.exitCode === 0 ? 0 : ExitCode.usage;
    }
    if (isHostdevError(error)) {
      if (wantsJson(argv)) {
        process.stderr.write(`${JSON.stringify(error.toJSON())}\n`);
      } else {
        process.stderr.write(`error: ${error.message}\n`);
        if (error.hint) process.stderr.write(`hint: ${error.hint}\n`);
      }
      return error.exitCode;
    }
    process.stderr.write(`hostdev: internal error (a bug, please report it)\n${(error as Error)?.stack ?? String(error)}\n`);
    return ExitCode.failure;
  }
}
