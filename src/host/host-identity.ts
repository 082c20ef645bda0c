import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SIMULATED_HOST_ID_FILE, type HostIdentity } from '../core/host-identity.js';

function firstLine(file: string): string | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return /^[A-Za-z0-9-]{8,64}$/.test(text) ? text : null;
  } catch {
    return null;
  }
}

/**
 * Which host `root` stands for: this machine's /etc/machine-id for "/"; under any other root the id
 * `hostdev sim create`/`sim snapshot` wrote, else the tree's own etc/machine-id; null when it has
 * neither (then nothing ties the state to it). Small regular files, not sysfs.
 */
export function readHostIdentity(root: string): HostIdentity | null {
  const resolved = path.resolve(root);
  const candidates =
    resolved === '/' ? ['/etc/machine-id'] : [path.join(resolved, SIMULATED_HOST_ID_FILE), path.join(resolved, 'etc/machine-id')];
  for (const source of candidates) {
    const id = firstLine(source);
    if (id !== null) return { id, source };
  }
  return null;
}
