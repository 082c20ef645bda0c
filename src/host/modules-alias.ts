import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readHeadSync } from '../platform/bounded-read.js';
import { parseVfioAliases, type VfioAlias } from '../core/vfio-variant.js';

/** modules.alias is 1-2 MiB on a distribution kernel; libvirt reads at most 8 MiB of it too. */
const MAX_BYTES = 8 * 1024 * 1024;

export interface VfioAliasTable {
  /** Where they were read from: ROOT/lib/modules/RELEASE/modules.alias. */
  readonly file: string;
  readonly aliases: readonly VfioAlias[];
}

/**
 * The running kernel's release: uname for the real root, ROOT/proc/sys/kernel/osrelease for any
 * other (a simulated or copied host says which kernel it stands for; none: no modules).
 */
function kernelRelease(root: string): string | null {
  if (root === '/') return os.release();
  try {
    const release = readHeadSync(path.join(root, 'proc/sys/kernel/osrelease'), 256).trim();
    return /^[A-Za-z0-9._+-]+$/.test(release) ? release : null;
  } catch {
    return null;
  }
}

/**
 * The `vfio_pci:` aliases of the kernel's modules, or null when the host has no modules.alias (no
 * modules installed for this kernel, or a tree that does not stand for one): then vfio-pci it is.
 * A regular file under /lib/modules, not sysfs: a plain bounded read cannot block on a kernel lock.
 */
export function readVfioAliases(root: string): VfioAliasTable | null {
  const release = kernelRelease(root);
  if (release === null) return null;
  const file = path.join(root, 'lib/modules', release, 'modules.alias');
  try {
    if (statSync(file).size > MAX_BYTES) return null;
    return { file, aliases: parseVfioAliases(readFileSync(file, 'utf8')) };
  } catch {
    return null;
  }
}
