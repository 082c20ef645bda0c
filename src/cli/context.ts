import path from 'node:path';
import type { Command } from 'commander';
import { HostdevError } from '../core/errors.js';
import { SIMULATED_STATE_DIR } from '../core/host-identity.js';

/** Options accepted before or after any command name. */
export interface GlobalOptions {
  readonly root: string;
  readonly json: boolean;
  readonly stateDir: string;
  readonly simulate: boolean;
  /** Where the daemon's sockets are: --socket-dir, else $HOSTDEV_SOCKET_DIR, else /run/hostdev. */
  readonly socketDir: string;
  /** False with --no-daemon or HOSTDEV_NO_DAEMON=1: never go through a daemon. */
  readonly useDaemon: boolean;
  /** The command run, as typed after the program name (`vf set-count`): recovery at open is recorded under it. */
  readonly command: string;
  /** Where claims are defined (DIR/claims.d): --config-dir, else ROOT/etc/hostdev with --simulate, else $HOSTDEV_CONFIG_DIR, else ROOT/etc/hostdev. */
  readonly configDir: string;
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
  refuseEmpty(opts.stateDir, '--state-dir', 'out');
  if (opts.stateDir !== undefined) return opts.stateDir;
  if (opts.simulate) return path.join(opts.root ?? '/', SIMULATED_STATE_DIR);
  refuseEmpty(process.env['HOSTDEV_STATE_DIR'], 'HOSTDEV_STATE_DIR', 'unset');
  return process.env['HOSTDEV_STATE_DIR'] ?? '/var/lib/hostdev';
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

export const DEFAULT_SOCKET_DIR = '/run/hostdev';

function socketDirOf(opts: { socketDir?: string }): string {
  refuseEmpty(opts.socketDir, '--socket-dir', 'out');
  if (opts.socketDir !== undefined) return opts.socketDir;
  refuseEmpty(process.env['HOSTDEV_SOCKET_DIR'], 'HOSTDEV_SOCKET_DIR', 'unset');
  return process.env['HOSTDEV_SOCKET_DIR'] ?? DEFAULT_SOCKET_DIR;
}

function configDirOf(opts: { root?: string; configDir?: string; simulate?: boolean }): string {
  refuseEmpty(opts.configDir, '--config-dir', 'out');
  if (opts.configDir !== undefined) return opts.configDir;
  const underRoot = path.join(opts.root ?? '/', 'etc/hostdev');
  if (opts.simulate) return underRoot;
  refuseEmpty(process.env['HOSTDEV_CONFIG_DIR'], 'HOSTDEV_CONFIG_DIR', 'unset');
  return process.env['HOSTDEV_CONFIG_DIR'] ?? underRoot;
}

export function globalOptions(command: Command): GlobalOptions {
  const opts = command.optsWithGlobals<{
    root?: string;
    json?: boolean;
    stateDir?: string;
    simulate?: boolean;
    socketDir?: string;
    daemon?: boolean;
    configDir?: string;
  }>();
  return {
    root: opts.root ?? '/',
    json: opts.json ?? false,
    stateDir: stateDirOf(opts),
    simulate: opts.simulate ?? false,
    socketDir: socketDirOf(opts),
    useDaemon: opts.daemon !== false && process.env['HOSTDEV_NO_DAEMON'] !== '1',
    command: commandPath(command),
    configDir: configDirOf(opts),
  };
}

/**
 * An empty --state-dir or $HOSTDEV_STATE_DIR is refused: it would be the current directory, which
 * hostdev would make 0700.
 */
function refuseEmpty(value: string | undefined, from: string, leave: string): void {
  if (value !== undefined && value.trim() === '') {
    throw new HostdevError('HOSTDEV_USAGE', `${from} is empty`, {
      hint: `Give ${from} a directory (it is created 0700), or leave it ${leave} for the default.`,
    });
  }
}
