import type { PciAddress } from '../core/address.js';
import { HostdevError } from '../core/errors.js';
import { deviceSerialNumber, NO_SERIALS, parseVpd, type DeviceSerials } from '../core/hardware-identity.js';
import type { BatchOp } from './batch-ops.js';
import { BatchReader, ReaderStall } from './batch-reader.js';
import { stallFromEnv } from './bounded-inventory.js';
import { configFromBytes, pcieLinks, type PcieLink } from './config-space.js';
import type { SysfsLayout } from './paths.js';

/** A VPD read goes through the device (seconds on some cards, forever on a broken one): bounded. */
export const SERIALS_TIMEOUT_MS = 3000;

/**
 * Config space (4 KiB: the extended capabilities, where the DSN is, only root sees) and the `vpd`
 * file, each in one read of its first 4 KiB: the VPD's identifier string and read-only section
 * (PN, SN) come first.
 */
const SERIAL_OPS: readonly BatchOp[] = [
  { kind: 'read', file: 'config' },
  { kind: 'read', file: 'vpd', mayBeAbsent: true },
];

/**
 * The serials of some functions: the Device Serial Number from config space and the VPD fields,
 * read in a bounded reader process (never in this one: the kernel holds config of a device whose
 * removal waits for its VM, and a VPD read can hang in a broken card). A function whose reads do
 * not come within `timeoutMs`, or stall for `stallMs`, has NO_SERIALS: its serials are unknown, so
 * never compared.
 */
export async function readSerialsBounded(
  layout: SysfsLayout,
  addresses: readonly PciAddress[],
  options: { readonly timeoutMs?: number; readonly stallMs?: number } = {},
): Promise<Map<PciAddress, DeviceSerials>> {
  const wanted = [...new Set(addresses)];
  const found = new Map<PciAddress, DeviceSerials>();
  if (wanted.length > 0) {
    const reader = new BatchReader(layout, SERIAL_OPS, { only: wanted, entryByEntry: true });
    try {
      await reader.forEach(
        layout,
        options.timeoutMs ?? SERIALS_TIMEOUT_MS,
        (entry, results, base) => {
          const config = results.errno(base) === null ? results.data(base) : null;
          const vpd = results.errno(base + 1) === null ? results.data(base + 1) : null;
          found.set(entry as PciAddress, {
            serialNumber: config === null ? null : deviceSerialNumber(configFromBytes(config)),
            vpd: vpd === null ? null : parseVpd(vpd),
          });
        },
        options.stallMs,
      );
    } catch (error) {
      const unread = error instanceof ReaderStall || (error instanceof HostdevError && error.code === 'HOSTDEV_TIMEOUT');
      if (!unread) throw error;
    } finally {
      reader.cancel();
    }
  }
  return new Map(wanted.map((address) => [address, found.get(address) ?? NO_SERIALS]));
}

/** One function's serials, read as readSerialsBounded reads them. */
export async function readSerials(layout: SysfsLayout, address: PciAddress): Promise<DeviceSerials> {
  return (await readSerialsBounded(layout, [address], { stallMs: stallFromEnv() })).get(address) ?? NO_SERIALS;
}

/** One function's PCI Express link (cap and sta) from its config space, read in a bounded reader process; empty when unread. */
export async function readPcieLinks(layout: SysfsLayout, address: PciAddress): Promise<PcieLink[]> {
  let links: PcieLink[] = [];
  const reader = new BatchReader(layout, [{ kind: 'read', file: 'config' }], { only: [address], entryByEntry: true });
  try {
    await reader.forEach(
      layout,
      SERIALS_TIMEOUT_MS,
      (_entry, results, base) => {
        if (results.errno(base) === null) links = pcieLinks(configFromBytes(results.data(base)));
      },
      stallFromEnv(),
    );
  } catch (error) {
    if (!(error instanceof ReaderStall || (error instanceof HostdevError && error.code === 'HOSTDEV_TIMEOUT'))) throw error;
  } finally {
    reader.cancel();
  }
  return links;
}

