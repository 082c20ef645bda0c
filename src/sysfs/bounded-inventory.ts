import type { PciAddress } from '../core/address.js';
import type { Inventory, PciDevice } from '../core/device.js';
import { BatchReader, DEFAULT_READ_TIMEOUT_MS } from './batch-reader.js';
import { DEVICE_OP_LIST } from './device-ops.js';
import { planInventory } from './inventory.js';
import type { SysfsLayout } from './paths.js';
import { DeviceReadContext, interpretDevice } from './read-device.js';

export { DEFAULT_READ_TIMEOUT_MS, BatchReader };

/** The bounded reader of the inventory: DEVICE_OP_LIST for every function. */
export function inventoryReader(layout: SysfsLayout): BatchReader {
  return new BatchReader(layout, DEVICE_OP_LIST);
}

/**
 * Reads the inventory with every read the kernel can hold up in bounded reader processes: they
 * are started first (or were, as `started`, when the CLI began); their results are made sense of
 * here as they come. Gives what readInventory gives.
 */
export async function readInventoryBounded(
  layout: SysfsLayout,
  options: { readonly pciIdsPath?: string; readonly timeoutMs?: number; readonly started?: BatchReader | null } = {},
): Promise<Inventory> {
  let reader = options.started ?? null;
  if (reader !== null && reader.root !== layout.root) {
    reader.cancel();
    reader = null;
  }
  reader ??= inventoryReader(layout);
  try {
    const plan = planInventory(layout, options.pciIdsPath === undefined ? {} : { pciIdsPath: options.pciIdsPath }, reader.listing);
    const context = new DeviceReadContext(layout, plan.names, (warning) => plan.warnings.push(warning), plan.iommuEnabled);
    const devices: PciDevice[] = [];
    await reader.forEach(layout, options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS, (entry, results, base) => {
      const device = interpretDevice(context, entry as PciAddress, results, base);
      if (device !== null) devices.push(device);
    });
    plan.warnings.unshift(...reader.notes.map((message) => ({ address: '', message })));
    return { devices, warnings: plan.warnings, iommuEnabled: plan.iommuEnabled };
  } finally {
    reader.cancel();
  }
}

/** The bound from $HOSTDEV_READ_TIMEOUT_MS (milliseconds), else the default. */
export function readTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env['HOSTDEV_READ_TIMEOUT_MS']);
  return Number.isFinite(value) && value > 0 ? value : DEFAULT_READ_TIMEOUT_MS;
}
