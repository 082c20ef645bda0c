import { HostdevError } from './errors.js';
import { makeOwner, type Owner } from './tables.js';

/** The hypervisor driver a domain belongs to unless one is named (libvirt's QEMU driver). */
export const DEFAULT_HYPERVISOR = 'qemu';

/** Longest domain or hypervisor name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 255;

export const NAME_RULE = `printable characters, no "/", at most ${MAX_NAME_BYTES} bytes`;

// C0 controls (newline included), DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function nameProblem(name: string): string | null {
  if (name.trim() === '') return 'is empty';
  if (CONTROL.test(name)) return 'holds a control character (a newline, a tab, an escape)';
  if (name.includes('/')) return 'holds a "/"';
  const bytes = new TextEncoder().encode(name).length;
  if (bytes > MAX_NAME_BYTES) return `is ${bytes} bytes long`;
  return null;
}

function checkedName(what: '--domain' | '--hypervisor', name: string): string {
  const problem = nameProblem(name);
  if (problem === null) return name;
  throw new HostdevError('HOSTDEV_USAGE', `the ${what.slice(2)} name ${JSON.stringify(name)} ${problem}; a name is ${NAME_RULE}`, {
    hint: `Give ${what} a name of ${NAME_RULE}, as libvirt names the domain.`,
    details: { [what.slice(2)]: name },
  });
}

/** The owner a request names, its domain and hypervisor names checked (HOSTDEV_USAGE names the rule). */
export function ownerOf(request: { readonly domain: string; readonly hypervisor?: string | undefined }): Owner {
  return makeOwner(checkedName('--hypervisor', request.hypervisor ?? DEFAULT_HYPERVISOR), checkedName('--domain', request.domain));
}
