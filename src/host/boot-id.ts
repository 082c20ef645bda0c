import path from 'node:path';
import { BOOT_ID_FILE } from '../core/boot.js';
import { readHead } from '../platform/bounded-read.js';

/**
 * The boot id of the host under `root` (/proc/sys/kernel/random/boot_id, or the simulator's file at
 * the same place under its tree); null when there is none (an old simulated tree, a /proc not mounted):
 * then entries carry no boot and nothing is taken as from an earlier boot.
 */
export async function readBootId(root: string): Promise<string | null> {
  try {
    const text = (await readHead(path.join(path.resolve(root), BOOT_ID_FILE), 128)).trim();
    return /^[0-9a-f-]{8,64}$/i.test(text) ? text : null;
  } catch {
    return null;
  }
}
