import type { PciAddress } from '../core/address.js';
import { HostdevError } from '../core/errors.js';
import { deviceSerialNumber, parseVpd, type HardwareIdentity } from '../core/hardware-identity.js';
import { linkName, parseClass, parseHexId, parseUevent } from './attributes.js';
import { namedOps, type BatchOp, type Results } from './batch-ops.js';
import { BatchReader, ReaderStall } from './batch-reader.js';
import { configFromBytes, parseConfigSpace } from './config-space.js';
import type { SysfsLayout } from './paths.js';

/** What a full walk of the tables needs of each entry's device, from one read of all of them. */
export interface EntryFacts {
  readonly present: boolean;
  /** The driver link's last component; null: unbound (or gone). */
  readonly driver: string | null;
  /**
   * The card at the address now; null when gone, not asked for, or not read (held by the kernel, out
   * of time): unknown, never compared. Its serials are null unless asked for ('serials').
   */
  readonly identity: HardwareIdentity | null;
}

/** How much of each device a walk reads: its links, also its IDs, also its serials (DSN, VPD). */
export type EntryDepth = 'links' | 'ids' | 'serials';

/**
 * The links first (the kernel never holds them), then the identity: the uevent (IDs and class in
 * one read), the ID files for a uevent without them, and only where serials are compared, config
 * space (the DSN, in its first 4 KiB) and the VPD: 4 KiB each, the bulk of such a read. Each depth
 * reads the ops of the one before and more; results are taken by the op's name.
 */
const LINK_OPS = {
  entry: { kind: 'link', file: '' },
  driver: { kind: 'link', file: 'driver', mayBeAbsent: true },
} as const satisfies Record<string, BatchOp>;
const ID_OPS = {
  ...LINK_OPS,
  // Read for what it tells by not answering: the kernel holds it while the device's removal waits
  // for a VM, and the card of a device held so is unknown, as the inventory's read finds it.
  driverOverride: { kind: 'read', file: 'driver_override', mayBeAbsent: true },
  uevent: { kind: 'read', file: 'uevent' },
  vendor: { kind: 'read', file: 'vendor' },
  device: { kind: 'read', file: 'device' },
  class: { kind: 'read', file: 'class' },
} as const satisfies Record<string, BatchOp>;
const SERIAL_OPS = {
  ...ID_OPS,
  config: { kind: 'read', file: 'config' },
  vpd: { kind: 'read', file: 'vpd', mayBeAbsent: true },
} as const satisfies Record<string, BatchOp>;
type EntryOpName = keyof typeof SERIAL_OPS;
/** A depth's ops; the names it does not read have no position. */
const OPS: Record<EntryDepth, { readonly list: readonly BatchOp[]; readonly index: Partial<Record<EntryOpName, number>> }> = {
  links: namedOps(LINK_OPS),
  ids: namedOps(ID_OPS),
  serials: namedOps(SERIAL_OPS),
};

function interpret(results: Results, base: number, depth: EntryDepth): EntryFacts {
  const { index } = OPS[depth];
  /** Where the op's result is, when this depth read it and it succeeded. */
  const read = (name: EntryOpName): number | null => {
    const at = index[name];
    return at === undefined || results.errno(base + at) !== null ? null : base + at;
  };
  if (read('entry') === null) return { present: false, driver: null, identity: null };
  const driverAt = read('driver');
  const driver = driverAt === null ? null : linkName(results.link(driverAt));
  if (depth === 'links') return { present: true, driver, identity: null };
  const text = (name: EntryOpName): string | null => {
    const at = read(name);
    return at === null ? null : results.text(at);
  };
  const bytes = (name: EntryOpName): Uint8Array | null => {
    const at = read(name);
    return at === null ? null : results.data(at);
  };
  const uevent = parseUevent(text('uevent') ?? '');
  const id = (name: EntryOpName): string | null => {
    const value = text(name);
    return value === null ? null : (parseHexId(value) ?? null);
  };
  const classText = text('class');
  const pciClass = uevent.pciClass ?? (classText === null ? undefined : parseClass(classText));
  const configBytes = bytes('config');
  const config = configBytes === null ? null : parseConfigSpace(configFromBytes(configBytes));
  const vpd = bytes('vpd');
  return {
    present: true,
    driver,
    identity: {
      vendor: uevent.vendor ?? id('vendor'),
      device: uevent.device ?? id('device'),
      subsystemVendor: uevent.subsystemVendor ?? config?.subsystemVendor ?? null,
      subsystemDevice: uevent.subsystemDevice ?? config?.subsystemDevice ?? null,
      class: pciClass?.class ?? null,
      serialNumber: configBytes === null ? null : deviceSerialNumber(configFromBytes(configBytes)),
      vpd: vpd === null ? null : parseVpd(vpd),
    },
  };
}

/**
 * The facts of many functions in one bounded reader process (instead of a link read, a lookup and
 * an inventory read per entry): what the full walk of `status` and of recovery at open reads.
 * A function whose reads the kernel holds up (no results for `stallMs`) and those not read when the
 * bound hit are left out of the map: the caller reads their links itself (links are never held).
 */
export async function readEntryFactsBounded(
  layout: SysfsLayout,
  addresses: readonly PciAddress[],
  options: { readonly timeoutMs: number; readonly stallMs: number; readonly depth: EntryDepth },
): Promise<Map<PciAddress, EntryFacts>> {
  const found = new Map<PciAddress, EntryFacts>();
  let wanted = [...new Set(addresses)];
  const deadline = Date.now() + options.timeoutMs;
  // Output in large writes first (entry by entry costs this process a wake-up per function); after
  // a stall, entry by entry, so that the held function is the first whose results do not come.
  let entryByEntry: boolean | undefined;
  while (wanted.length > 0 && Date.now() < deadline) {
    const reader = new BatchReader(layout, OPS[options.depth].list, { only: wanted, ...(entryByEntry === undefined ? {} : { entryByEntry }) });
    try {
      await reader.forEach(
        layout,
        Math.max(1, deadline - Date.now()),
        (entry, results, base) => found.set(entry as PciAddress, interpret(results, base, options.depth)),
        options.stallMs,
        options.timeoutMs,
      );
      break;
    } catch (error) {
      if (error instanceof HostdevError && error.code === 'HOSTDEV_TIMEOUT') break;
      if (!(error instanceof ReaderStall)) throw error;
      // Entry by entry, the first function not read is the held one: left out; the others are read again.
      wanted = reader.entries.filter((entry) => !found.has(entry as PciAddress)).slice(reader.entryByEntry ? 1 : 0) as PciAddress[];
      entryByEntry = true;
    } finally {
      reader.cancel();
    }
  }
  return found;
}
