import type { Command } from 'commander';
import { managerOwnerLookup } from '../open-manager.js';
import { registerAssign } from './assign.js';
import { registerDetach } from './detach.js';
import { registerGroups } from './groups.js';
import { listCommand } from './list.js';
import { registerQemuArgs } from './qemu-args.js';
import { registerReattach } from './reattach.js';
import { registerRelease } from './release.js';
import { registerReset } from './reset.js';
import { showCommand } from './show.js';
import { registerSim } from './sim.js';
import { registerStatus } from './status.js';
import { registerVf } from './vf.js';
import { registerWatch } from './watch.js';

/** Each command module registers itself on the program; main.ts only wires. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [
  listCommand({ ownerLookup: managerOwnerLookup }),
  showCommand({ ownerLookup: managerOwnerLookup }),
  registerGroups,
  registerSim,
  registerDetach,
  registerReattach,
  registerReset,
  registerAssign,
  registerRelease,
  registerStatus,
  registerVf,
  registerWatch,
  registerQemuArgs,
];
