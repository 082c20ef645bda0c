import { readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import { canonicalAddress } from './attributes.js';
import type { Inventory, PciDevice } from '../core/device.js';
import { HostdevError } from '../core/errors.js';
import { OpExecutor, ResultList } from './batch-ops.js';
import { BatchReader, DEFAULT_READ_TIMEOUT_MS, ReaderStall } from './batch-reader.js';
import { DEVICE_OP_LIST } from './device-ops.js';
import { planInventory } from './inventory.js';
import type { SysfsLayout } from './paths.js';
import type { PciNames } from './pci-ids.js';
import { DeviceReadContext, interpretDevice } from './read-device.js';
import { describeReading } from './read-progress.js';
import type { ServingReader } from './serving-reader.js';

export { DEFAULT_READ_TIMEOUT_MS, BatchReader };

/** The bounded reader of the inventory: DEVICE_OP_LIST for every function. */
function inventoryReader(layout: SysfsLayout): BatchReader {
  return new BatchReader(layout, DEVICE_OP_LIST);
}

/**
 * Reads the inventory with every read the kernel can hold up in bounded reader processes: they
 * are started first (or were, as `started`, when the CLI began); their results are made sense of
 * here as they come. Gives what readInventory gives.
 */
export async function readInventoryBounded(
  layout: SysfsLayout,
  options: {
    readonly pciIdsPath?: string;
    /** Vendor and device names to use instead of loading the PCI ID database (null: none). */
    readonly names?: PciNames | null;
    readonly timeoutMs?: number;
    readonly started?: BatchReader | null;
    /** How long without new results marks a function as held by the kernel (default 500 ms, $HOSTDEV_STALL_MS). */
    readonly stallMs?: number;
    /** Read just these functions instead of every listed one (the inventory then holds those of them that exist). */
    readonly only?: readonly PciAddress[];
  } = {},
): Promise<Inventory> {
  let reader = options.started ?? null;
  if (reader !== null && options.only !== undefined) {
    reader.cancel();
    reader = null;
  }
  if (reader !== null && reader.root !== layout.root) {
    reader.cancel();
    reader = null;
  }
  reader ??= options.only === undefined ? inventoryReader(layout) : new BatchReader(layout, DEVICE_OP_LIST, { only: options.only });
  const timeoutMs = options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const stallMs = options.stallMs ?? stallFromEnv();
  const deadline = Date.now() + timeoutMs;
  try {
    const plan = planInventory(
      layout,
      {
        ...(options.pciIdsPath === undefined ? {} : { pciIdsPath: options.pciIdsPath }),
        ...(options.names === undefined ? {} : { names: options.names }),
      },
      reader.listing,
    );
    const context = new DeviceReadContext(layout, plan.names, (warning) => plan.warnings.push(warning), plan.iommuEnabled);
    const devices: PciDevice[] = [];
    const visited = new Set<string>();
    const held: PciAddress[] = [];
    for (;;) {
      try {
        await reader.forEach(
          layout,
          Math.max(1, deadline - Date.now()),
          (entry, results, base) => {
            visited.add(entry);
            const device = interpretDevice(context, entry as PciAddress, results, base);
            if (device !== null) devices.push(device);
          },
          stallMs,
          timeoutMs,
        );
        break;
      } catch (error) {
        if (!(error instanceof ReaderStall)) throw error;
        // A read the kernel holds up (a device whose removal waits for its VM): the functions not
        // read yet are read again entry by entry, and the one whose results do not come is held.
        reader.cancel();
        const remaining: string[] = reader.entries.filter((entry) => !visited.has(entry));
        if (reader.entryByEntry && remaining.length > 0) {
          const stuck = remaining.shift()! as PciAddress;
          held.push(stuck);
          visited.add(stuck);
        }
        if (remaining.length === 0) break;
        reader = new BatchReader(layout, DEVICE_OP_LIST, { only: remaining, entryByEntry: true });
      }
    }
    plan.warnings.unshift(...reader.notes.map((message) => ({ address: '', message })));
    if (held.length > 0) {
      const isHeld = new Set<string>(held);
      const quiet = new DeviceReadContext(layout, plan.names, () => {}, plan.iommuEnabled);
      for (const address of held) {
        const device = interpretDevice(quiet, address, heldResults(layout, address), 0);
        if (device !== null) devices.push(device);
      }
      devices.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
      const warnings = plan.warnings.filter((warning) => !isHeld.has(warning.address));
      warnings.push(...held.map((address) => ({ address, message: HELD_WARNING })));
      return { devices, warnings, iommuEnabled: plan.iommuEnabled };
    }
    return { devices, warnings: plan.warnings, iommuEnabled: plan.iommuEnabled };
  } finally {
    reader.cancel();
  }
}

/**
 * What `show` needs of the host, whatever its size: the function, the PCI functions above it (from
 * its bus entry's link, as its `parent` is read) and the members of its IOMMU group, read as
 * readInventoryBounded reads (bounded, held functions found). The links and the group's listing
 * are kernfs nodes, which no device lock holds up. A function that is not there reads as absent.
 */
export async function readNeighbourhoodBounded(
  layout: SysfsLayout,
  address: PciAddress,
  options: Omit<Parameters<typeof readInventoryBounded>[1] & object, 'only'> = {},
): Promise<Inventory> {
  const wanted = new Set<PciAddress>([address]);
  const entry = await readlink(layout.device(address)).catch(() => null);
  if (entry !== null) {
    // "../../../devices/pci0000:00/0000:00:1c.0/0000:01:00.0": the functions before the last, up to the root bus.
    const parts = entry.split('/').filter((part) => part !== '');
    for (let i = parts.length - 2; i >= 0; i--) {
      const parent = canonicalAddress(parts[i]!);
      if (parent === null) break;
      wanted.add(parent);
    }
    const group = await readlink(layout.device(address, 'iommu_group')).catch(() => null);
    if (group !== null) {
      const members = await readdir(path.join(layout.iommuGroupsDir, path.basename(group), 'devices')).catch(() => []);
      for (const member of members) {
        const canonical = canonicalAddress(member);
        if (canonical !== null) wanted.add(canonical);
      }
    }
  }
  return readInventoryBounded(layout, { ...options, only: [...wanted] });
}

/** The functions an inventory read found held by the kernel (their held attributes were not read). */
export function heldIn(inventory: Inventory): Set<string> {
  return new Set(inventory.warnings.filter((warning) => warning.message === HELD_WARNING).map((warning) => warning.address));
}

const HELD_WARNING =
  'the kernel holds this device (a removal waits for the VM that uses it): its driver_override, sriov_numvfs and config are not shown';

/** The attributes whose reads the kernel holds up while a device waits to be removed (or reset). */
const HELD_FILES = new Set(['driver_override', 'sriov_numvfs', 'config']);

/**
 * What can be read of a held function without waiting: its links and the attributes shown without
 * the device lock; its identity from the vendor, device and class files (uevent may take the lock).
 */
function heldResults(layout: SysfsLayout, address: PciAddress): ResultList {
  const executor = new OpExecutor();
  return new ResultList(
    DEVICE_OP_LIST.map((op) => {
      if (op.file === 'uevent') return { errno: 'ENOENT', data: new Uint8Array(0) };
      if (HELD_FILES.has(op.file)) return { errno: 'EBUSY', data: new Uint8Array(0) };
      return executor.run(layout.pciDevicesDir, address, [op])[0]!;
    }),
  );
}

/** The longest timer Node.js keeps (2^31-1 ms, about 24.8 days): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The stall bound from $HOSTDEV_STALL_MS (milliseconds), else 500. */
export function stallFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env['HOSTDEV_STALL_MS']);
  return Number.isInteger(value) && value > 0 ? Math.min(value, MAX_TIMER_MS) : 500;
}

/** The bound from $HOSTDEV_READ_TIMEOUT_MS (milliseconds, at most MAX_TIMER_MS), else the default. */
export function readTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env['HOSTDEV_READ_TIMEOUT_MS']);
  return Number.isFinite(value) && value > 0 ? Math.min(value, MAX_TIMER_MS) : DEFAULT_READ_TIMEOUT_MS;
}

/** What to tell the user when $HOSTDEV_READ_TIMEOUT_MS is above what a timer can wait, else null. */
export function readTimeoutNotice(env: NodeJS.ProcessEnv = process.env): string | null {
  const text = env['HOSTDEV_READ_TIMEOUT_MS'];
  const value = Number(text);
  if (text === undefined || !Number.isFinite(value) || value <= MAX_TIMER_MS) return null;
  return `HOSTDEV_READ_TIMEOUT_MS=${text} is above ${MAX_TIMER_MS} ms, the longest a timer waits; using ${MAX_TIMER_MS} ms`;
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
  options: {
    readonly timeoutMs?: number;
    readonly onSlow?: SlowReadListener;
    readonly slowEveryMs?: number;
    /** A reader process that serves every read of its owner (one round trip instead of a process start). */
    readonly serving?: ServingReader;
    /** Vendor and device names for a read without `serving` (default none: vendorName and deviceName are null). */
    readonly names?: PciNames | null;
  } = {},
): Promise<Map<PciAddress, PciDevice | null>> {
  const wanted = [...new Set(addresses)];
  if (wanted.length === 0) return new Map();
  const timeoutMs = options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const started = Date.now();
  const slowTicker = (pending: () => PciAddress[]): NodeJS.Timeout | null =>
    options.onSlow === undefined ? null : setInterval(() => options.onSlow?.(pending(), Date.now() - started), options.slowEveryMs ?? 2_000);
  if (options.serving !== undefined) {
    const { found, done } = options.serving.read(wanted, timeoutMs, (pending, cause) => blockedRead(layout, pending, timeoutMs, cause));
    const ticker = slowTicker(() => wanted.filter((address) => !found.has(address)));
    try {
      await done;
    } finally {
      if (ticker !== null) clearInterval(ticker);
    }
    return found;
  }
  const found = new Map<PciAddress, PciDevice | null>();
  const reader = new BatchReader(layout, DEVICE_OP_LIST, { only: wanted });
  const context = new DeviceReadContext(layout, options.names ?? null, () => {}, true);
  const pending = (): PciAddress[] => wanted.filter((address) => !found.has(address));
  const ticker = slowTicker(pending);
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
  // The files the reader was reading when the bound hit; else the ones the kernel holds at such a time.
  const reading = (cause.details as { files?: readonly string[] } | undefined)?.files ?? [];
  const files =
    reading.length > 0
      ? describeReading(reading)
      : first === undefined
        ? layout.sys
        : `${layout.device(first, 'driver_override')} (or its sriov_numvfs, config)`;
  return new HostdevError(
    'HOSTDEV_TIMEOUT',
    `reading ${pending.join(', ')} did not finish in ${timeoutMs} ms: the kernel holds ${files}, ` +
      'which it does while the device is being removed and waits for the VM that holds it to let go',
    {
      hint:
        'A VF removal (`echo N > sriov_numvfs`) is pending: stop the VM that uses the VF or unplug it from the VM ' +
        '(`dmesg` shows "Relaying device request to user"), then try again; --wait (or HOSTDEV_READ_TIMEOUT_MS) sets how long to wait.',
      details: { pending, path: reading[0] ?? (first === undefined ? layout.sys : layout.device(first, 'driver_override')), files: reading, timeoutMs },
      cause,
    },
  );
}
