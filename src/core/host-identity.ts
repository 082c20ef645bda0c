import { HostdevError } from './errors.js';
import { hostdevCommand } from './shell.js';

/**
 * A state database belongs to one host: the tables name PCI addresses, and the same address on
 * another host (a simulated tree, a snapshot of this host) is another device. The database records
 * the identity of the host it was first opened for and refuses any other.
 */
export interface HostIdentity {
  /** /etc/machine-id of a real host, or the id `hostdev sim create` / `sim snapshot` gave a tree. */
  readonly id: string;
  /** Where it was read, for messages. */
  readonly source: string;
}

/** Where a simulated tree keeps its id, under its root. */
export const SIMULATED_HOST_ID_FILE = '.hostdev-sim/host-id';

/** The state directory `--simulate` uses when no --state-dir is given, under the tree's root. */
export const SIMULATED_STATE_DIR = '.hostdev-sim/state';

/** HOSTDEV_STATE (exit 7) when the state belongs to another host than the one under `root`. */
export function checkHostIdentity(recorded: string, current: HostIdentity, where: { root: string; stateDir: string }): void {
  if (recorded === current.id) return;
  const simulated = current.source.endsWith(SIMULATED_HOST_ID_FILE);
  throw new HostdevError(
    'HOSTDEV_STATE',
    `the hostdev state in ${where.stateDir} belongs to another host (${recorded}), not to the one under ${where.root} ` +
      `(${current.id}, from ${current.source}); its tables name that host's devices`,
    {
      hint: simulated
        ? `Leave --state-dir out with --simulate (the tree keeps its own state in ${where.root}/${SIMULATED_STATE_DIR}), or give it a state directory of its own: ${hostdevCommand('--root', where.root, '--state-dir', `${where.root}/${SIMULATED_STATE_DIR}`, '--simulate', 'status')}`
        : 'Give this host its own state directory (--state-dir DIR); the one given is another host\'s.',
      details: { path: where.stateDir, recorded, current: current.id, source: current.source },
    },
  );
}
