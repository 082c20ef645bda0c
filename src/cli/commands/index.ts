import type { Command } from 'commander';
import { managerTableLookup } from '../open-manager.js';

/** Each command module registers itself on the program; main.ts only wires. */
type RegisterCommand = (program: Command) => void;

/**
 * The commands by name, each loaded on demand: a run loads only the module of the command it
 * names (startup time is most of a `hostdev list` on a small host), `--help` loads them all.
 */
export const commandLoaders: Readonly<Record<string, () => Promise<RegisterCommand>>> = {
  list: async () => (await import('./list.js')).listCommand({ tableLookup: managerTableLookup }),
  show: async () => (await import('./show.js')).showCommand({ tableLookup: managerTableLookup }),
  groups: async () => (await import('./groups.js')).groupsCommand({ tableLookup: managerTableLookup }),
  sim: async () => (await import('./sim.js')).registerSim,
  detach: async () => (await import('./detach.js')).registerDetach,
  reattach: async () => (await import('./reattach.js')).registerReattach,
  reset: async () => (await import('./reset.js')).registerReset,
  assign: async () => (await import('./assign.js')).registerAssign,
  release: async () => (await import('./release.js')).registerRelease,
  status: async () => (await import('./status.js')).registerStatus,
  domains: async () => (await import('./domains.js')).registerDomains,
  adopt: async () => (await import('./adopt.js')).registerAdopt,
  vf: async () => (await import('./vf.js')).registerVf,
  watch: async () => (await import('./watch.js')).registerWatch,
  mdev: async () => (await import('./mdev.js')).registerMdev,
  'qemu-args': async () => (await import('./qemu-args.js')).registerQemuArgs,
  hotplug: async () => (await import('./hotplug.js')).registerHotplug,
  unplug: async () => (await import('./hotplug.js')).registerUnplug,
  'kubelet-plugin': async () => (await import('./kubelet-plugin.js')).registerKubeletPlugin,
  daemon: async () => (await import('./daemon.js')).registerDaemon,
  claim: async () => (await import('./claims.js')).registerClaim,
  unclaim: async () => (await import('./claims.js')).registerUnclaim,
  claims: async () => (await import('./claims.js')).registerClaims,
};

/**
 * The command named in argv, or null (no command, `help`, or an unknown word). `optionsWithValue`
 * are the global options that take a value (main.ts reads them off the program).
 */
export function commandNameIn(argv: readonly string[], optionsWithValue: readonly string[]): string | null {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (optionsWithValue.includes(arg)) {
      i++;
      continue;
    }
    if (arg.startsWith('-')) continue;
    return Object.hasOwn(commandLoaders, arg) ? arg : null;
  }
  return null;
}

/** The registrations a run needs: its own command's, or every command's for help and errors. */
export async function loadCommands(argv: readonly string[], optionsWithValue: readonly string[]): Promise<RegisterCommand[]> {
  const name = commandNameIn(argv, optionsWithValue);
  const loaders = name === null ? Object.values(commandLoaders) : [commandLoaders[name]!];
  return Promise.all(loaders.map((load) => load()));
}
