import { DEFAULT_HYPERVISOR } from './names.js';
import type { Owner } from './tables.js';

/**
 * Commands as a message prints them: every argument is quoted for a POSIX shell unless it is made
 * only of characters no shell treats specially, so a pasted hint runs one command with the
 * arguments it names, whatever a domain or file name holds.
 */

const SAFE = /^[\w@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  return SAFE.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** `hostdev ARGS...`, quoted. */
export function hostdevCommand(...args: readonly string[]): string {
  return shellJoin(['hostdev', ...args]);
}

/** `hostdev release` for a domain, naming the hypervisor unless it is the default. */
export function releaseCommand(owner: Owner, ...addresses: readonly string[]): string {
  return domainCommand('release', owner, addresses);
}

export function assignCommand(owner: Owner, ...addresses: readonly string[]): string {
  return domainCommand('assign', owner, addresses);
}

function domainCommand(command: string, owner: Owner, addresses: readonly string[]): string {
  const hypervisor = owner.hypervisor === DEFAULT_HYPERVISOR ? [] : ['--hypervisor', owner.hypervisor];
  return hostdevCommand(command, '--domain', owner.vm, ...hypervisor, ...addresses);
}
