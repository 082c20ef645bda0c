import type { Command } from 'commander';
import { registerGroups } from './groups.js';
import { registerList } from './list.js';
import { registerShow } from './show.js';

/** Each command module registers itself on the program; main.ts only wires. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [registerList, registerShow, registerGroups];
