import type { Inventory } from '../core/device.js';
import { joinInventory, readParentInventory } from './inventory.js';
import { DEFAULT_READ_TIMEOUT_MS, ChildReader } from './child-reader.js';
import type { SysfsLayout } from './paths.js';

export { DEFAULT_READ_TIMEOUT_MS, ChildReader };

/**
 * Reads the inventory with every read the kernel can hold up in a bounded child process: the
 * child is started first (or was, as `started`, when the CLI began), the files no kernel lock
 * holds are read here meanwhile, then the two halves are joined. Gives what readInventory gives.
 */
export async function readInventoryBounded(
  layout: SysfsLayout,
  options: { readonly pciIdsPath?: string; readonly timeoutMs?: number; readonly started?: ChildReader | null } = {},
): Promise<Inventory> {
  let reader = options.started ?? null;
  if (reader !== null && reader.root !== layout.root) {
    reader.cancel();
    reader = null;
  }
  reader ??= new ChildReader(layout);
  try {
    const parentPart = readParentInventory(layout, options.pciIdsPath === undefined ? {} : { pciIdsPath: options.pciIdsPath });
    return joinInventory(parentPart, await reader.result(layout, options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS));
  } finally {
    reader.cancel();
  }
}

/** The bound from $HOSTDEV_READ_TIMEOUT_MS (milliseconds), else the default. */
export function readTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env['HOSTDEV_READ_TIMEOUT_MS']);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_READ_TIMEOUT_MS;
}
