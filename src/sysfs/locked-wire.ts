import type { PciAddress } from '../core/address.js';
import type { HeaderType } from '../core/device.js';
import type { LockedRead } from './inventory.js';

/**
 * How the bounded child hands its LockedReads to the CLI: one JSON array of tuples, a tenth of
 * the bytes of per-field objects for a few thousand functions.
 */
type Tuple = [
  address: PciAddress,
  driverOverride: string | null,
  headerType: HeaderType | null,
  flr: boolean | null,
  revision: string | null,
  subsystemVendor: string | null,
  subsystemDevice: string | null,
  numVfs: number | null,
  warnings: readonly string[],
];

export function encodeLockedReads(reads: readonly LockedRead[]): string {
  return JSON.stringify(
    reads.map(({ address, facts: f, warnings }): Tuple => [
      address,
      f.driverOverride,
      f.headerType,
      f.flr,
      f.revision,
      f.subsystemVendor,
      f.subsystemDevice,
      f.numVfs,
      warnings,
    ]),
  );
}

export function decodeLockedReads(text: string): LockedRead[] {
  const tuples: unknown = JSON.parse(text);
  if (!Array.isArray(tuples)) throw new Error('the inventory reader printed something other than an array');
  return (tuples as Tuple[]).map(
    ([address, driverOverride, headerType, flr, revision, subsystemVendor, subsystemDevice, numVfs, warnings]) => ({
      address,
      facts: { driverOverride, headerType, flr, revision, subsystemVendor, subsystemDevice, numVfs },
      warnings,
    }),
  );
}
