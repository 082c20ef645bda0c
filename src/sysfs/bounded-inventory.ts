import type { PciAddress } from '../core/address.js';
import type { Inventory, PciDevice } from '../core/device.js';
import { HostdevError } from '../core/errors.js';
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

/** What a caller hears while bounded device reads are slow: which functions have not come yet. */
export type SlowReadListener = (pending: readonly PciAddress[], waitedMs: number) => void;

/**
 * Reads some functions (each as readDevice does, without names) in a bounded reader process, so
 * that a read the kernel holds up never blocks this process: null for one that is not on the host.
 * `onSlow` hears every `slowEveryMs` which functions are still pending; at `timeoutMs` the reader
 * is killed and HOSTDEV_TIMEOUT names them and the files the kernel can hold.
 */
export async function readDevicesBounded(
  layout: SysfsLayout,
  addresses: readonly PciAddress[],
  options: { readonly timeoutMs?: number; readonly onSlow?: SlowReadListener; readonly slowEveryMs?: number } = {},
): Promise<Map<PciAddress, PciDevice | null>> {
  const found = new Map<PciAddress, PciDevice | null>();
  const wanted = [...new Set(addresses)];
  if (wanted.length === 0) return found;
  const reader = new BatchReader(layout, DEVICE_OP_LIST, { only: wanted });
  const context = new DeviceReadContext(layout, null, () => {}, true);
  const started = Date.now();
  const pending = (): PciAddress[] => wanted.filter((address) => !found.has(address));
  const ticker =
    options.onSlow === undefined ? null : setInterval(() => options.onSlow?.(pending(), Date.now() - started), options.slowEveryMs ?? 2_000);
  const timeoutMs = options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  try {
    await reader.forEach(layout, timeoutMs, (entry, results, base) => {
      found.set(entry as PciAddress, interpretDevice(context, entry as PciAddress, results, base));
    });
  } catch (error) {
    if (!(error instanceof HostdevError) || error.code !== 'HOSTDEV_TIMEOUT') throw error;
    throw blockedRead(layout, pending(), timeoutMs, error);
  } finally {
    if (ticker !== null) clearInterval(ticker);
    reader.cancel();
  }
  for (const address of wanted) if (!found.has(address)) found.set(address, null);
  return found;
}

function blockedRead(layout: SysfsLayout, pending: readonly PciAddress[], timeoutMs: number, cause: HostdevError): HostdevError {
  const first = pending[0];
  const files = first === undefined ? layout.sys : `${layout.device(first, 'driver_override')} (or its sriov_numvfs, config)`;
  return new HostdevError(
    'HOSTDEV_TIMEOUT',
    `reading ${pending.join(', ')} did not finish in ${timeoutMs} ms: the kernel holds ${files}, ` +
      'which it does while the device is being removed and waits for the VM that holds it to let go',
    {
      hint:
        'A VF removal (`echo N > sriov_numvfs`) is pending: stop the VM that uses the VF or unplug it from the VM ' +
        '(`dmesg` shows "Relaying device request to user"), then try again; --wait (or HOSTDEV_READ_TIMEOUT_MS) sets how long to wait.',
      details: { pending, path: first === undefined ? layout.sys : layout.device(first, 'driver_override'), timeoutMs },
      cause,
    },
  );
}
