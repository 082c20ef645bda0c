import path from 'node:path';
import type { Command } from 'commander';
import { SIMULATED_STATE_DIR } from '../core/host-identity.js';

/** Options accepted before or after any command name. */
export interface GlobalOptions {
  readonly root: string;
  readonly json: boolean;
  readonly stateDir: string;
  readonly simulate: boolean;
  /** The command run, as typed after the program name (`vf set-count`): recovery at open is recorded under it. */
  readonly command: string;
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

/**
 * --state-dir; else, with --simulate, the tree's own (ROOT/.hostdev-sim/state: a rehearsal never
 * touches this host's tables); else $HOSTDEV_STATE_DIR; else /var/lib/hostdev.
 */
function stateDirOf(opts: { root?: string; stateDir?: string; simulate?: boolean }): string {
  if (opts.stateDir !== undefined) return opts.stateDir;
  if (opts.simulate) return path.join(opts.root ?? '/', SIMULATED_STATE_DIR);
  return process.env['HOSTDEV_STATE_DIR'] ?? '/var/lib/hostdev';
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

export function globalOptions(command: Command): GlobalOptions {
  const opts = command.optsWithGlobals<{ root?: string; json?: boolean; stateDir?: string; simulate?: boolean }>();
  return {
    root: opts.root ?? '/',
    json: opts.json ?? false,
    stateDir: stateDirOf(opts),
    simulate: opts.simulate ?? false,
    command: commandPath(command),
  };
}
