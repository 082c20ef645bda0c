import type { Command } from 'commander';
import { globalOptions, type CommandResult, type GlobalOptions } from './context.js';

/**
 * Wraps a handler that returns a CommandResult: prints it the way the global options ask.
 * Errors propagate to main's single top-level catch.
 */
export function action<A extends unknown[]>(
  handler: (globals: GlobalOptions, command: Command, ...args: A) => Promise<CommandResult> | CommandResult,
): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const globals = globalOptions(command);
    if (process.env['HOSTDEV_READ_TIMEOUT_MS'] !== undefined) {
      const notice = (await import('../sysfs/bounded-inventory.js')).readTimeoutNotice();
      if (notice !== null) process.stderr.write(`warning: ${notice}\n`);
    }
    const result = await handler(globals, command, ...(args.slice(0, -1) as A));
    for (const warning of result.warnings ?? []) process.stderr.write(`warning: ${warning}\n`);
    const out = globals.json ? JSON.stringify(result.json, null, 2) : result.text;
    if (out.length > 0) process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
    if (result.exitCode !== undefined) process.exitCode = result.exitCode;
  };
}
