import type { Command } from 'commander';

/** Each command module registers itself on the program; main.ts only wires. */
export type RegisterCommand = (program: Command) => void;

export const commands: RegisterCommand[] = [];
