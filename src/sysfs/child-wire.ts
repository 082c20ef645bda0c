import type { PciAddress } from '../core/address.js';
import type { HeaderType } from '../core/device.js';
import type { ChildRead } from './inventory.js';

/**
 * How the bounded child hands its ChildReads to the CLI: one JSON array of tuples (field names
 * are not repeated for each of a few thousand functions).
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
  numaNode: number | null,
  resetMethods: readonly string[],
  warnings: readonly string[],
];

export function encodeChildReads(reads: readonly ChildRead[]): string {
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
      f.numaNode,
      f.resetMethods,
      warnings,
    ]),
  );
}

export function decodeChildReads(text: string): ChildRead[] {
  const tuples: unknown = JSON.parse(text);
  if (!Array.isArray(tuples)) throw new Error('the inventory reader printed something other than an array');
  return (tuples as Tuple[]).map(
    ([address, driverOverride, headerType, flr, revision, subsystemVendor, subsystemDevice, numVfs, numaNode, resetMethods, warnings]) => ({
      address,
      facts: { driverOverride, headerType, flr, revision, subsystemVendor, subsystemDevice, numVfs, numaNode, resetMethods },
      warnings,
    }),
  );
}
