import { BatchReader } from '../sysfs/batch-reader.js';
import { DEVICE_OP_LIST } from '../sysfs/device-ops.js';
import { SysfsLayout } from '../sysfs/paths.js';

/**
 * The bounded readers of list and groups, started before the rest of the CLI is even loaded: they
 * read while the CLI loads. Only a head start: readHost checks that they read the root the parsed
 * options name, and starts others when not.
 */

// Not show: it reads only its device's neighbourhood, which it learns from links first.
const INVENTORY_COMMANDS = new Set(['list', 'groups']);
/**
 * The global options that take a value: their values are never a command name. main.ts's program
 * says the same (a test keeps them equal); this module runs before commander is loaded.
 */
export const VALUE_OPTIONS: ReadonlySet<string> = new Set(['--root', '--state-dir', '--socket-dir', '--config-dir', '--detached-after-reboot']);

let started: BatchReader | null = null;

/** The command and --root as argv gives them, or null when argv is anything unusual. */
export function scanArgv(argv: readonly string[]): { command: string; root: string } | null {
  let command: string | null = null;
  let root = '/';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return null;
    if (arg.startsWith('--root=')) root = arg.slice('--root='.length);
    else if (VALUE_OPTIONS.has(arg)) {
      const value = argv[++i];
      if (value === undefined) return null;
      if (arg === '--root') root = value;
    } else if (command === null && !arg.startsWith('-')) command = arg;
  }
  return command === null ? null : { command, root };
}

export function prefetchInventory(argv: readonly string[]): void {
  const scan = scanArgv(argv);
  if (scan !== null && INVENTORY_COMMANDS.has(scan.command)) started = new BatchReader(new SysfsLayout(scan.root), DEVICE_OP_LIST);
}

/** The head-start reader, handed over once. */
export function takePrefetched(): BatchReader | null {
  const reader = started;
  started = null;
  return reader;
}

/** Stops a head-start reader nobody took (the command failed before reading). */
export function cancelPrefetch(): void {
  takePrefetched()?.cancel();
}
