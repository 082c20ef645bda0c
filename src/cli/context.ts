import type { Command } from 'commander';

/** Options accepted before or after any command name. */
export interface GlobalOptions {
  readonly root: string;
  readonly json: boolean;
  readonly stateDir: string;
  readonly simulate: boolean;
}

/**
 * What a command handler returns instead of printing: the CLI renders `json` with `--json`
 * and `text` otherwise. Warnings go to stderr in both modes.
 */
export interface CommandResult {
  readonly json: unknown;
  readonly text: string;
  readonly warnings?: readonly string[];
  readonly exitCode?: number;
}

export function globalOptions(command: Command): GlobalOptions {
  const opts = command.optsWithGlobals<{ root?: string; json?: boolean; stateDir?: string; simulate?: boolean }>();
  return {
    root: opts.root ?? '/',
    json: opts.json ?? false,
    stateDir: opts.stateDir ?? process.env['HOSTDEV_STATE_DIR'] ?? '/var/lib/hostdev',
    simulate: opts.simulate ?? false,
  };
}
