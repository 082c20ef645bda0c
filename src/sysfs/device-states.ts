import type { PciAddress } from '../core/address.js';
import type { SnapshotInput } from '../core/events.js';
import type { SriovInfo } from '../core/device.js';
import { linkName, parseVfCount } from './attributes.js';
import { OpExecutor, ResultList, type BatchOp } from './batch-ops.js';
import { planInventory } from './inventory.js';
import type { SysfsLayout } from './paths.js';
import { DeviceReadContext, physfnAddress, readVirtfnLinksIn } from './read-device.js';

/**
 * What the watcher compares between two looks at the host: five ops per function instead of the
 * inventory's twelve and its config walk, for it polls every second on hosts of thousands of VFs.
 * `sriov_numvfs` is among them, and it can block (see device-ops.ts): this runs in the snapshot
 * child, which the watcher abandons when it does not answer in time.
 */
const STATE_OPS = [
  { kind: 'link', file: '' },
  { kind: 'link', file: 'driver' },
  { kind: 'link', file: 'physfn', mayBeAbsent: true },
  { kind: 'read', file: 'sriov_totalvfs', mayBeAbsent: true },
  { kind: 'read', file: 'sriov_numvfs', mayBeAbsent: true },
] as const satisfies readonly BatchOp[];
const [ENTRY, DRIVER, PHYSFN, TOTAL_VFS, NUM_VFS] = [0, 1, 2, 3, 4] as const;

const ignore = (): void => {};

/**
 * The driver, PF, VFs (with their virtfnN indexes) and SR-IOV counts of every PCI function, in
 * address order: the same values readInventory gives for them (a dangling driver link is no driver,
 * a malformed count is null), without the warnings, which `hostdev list` is there to show.
 * `onRead` hears each path before it is read.
 */
export function readDeviceStates(layout: SysfsLayout, onRead?: (path: string) => void): SnapshotInput[] {
  const { addresses } = planInventory(layout, { names: null });
  const context = new DeviceReadContext(layout, null, ignore, true, new OpExecutor(onRead));
  const states: SnapshotInput[] = [];
  for (const address of addresses) {
    const state = readDeviceState(context, address);
    if (state !== null) states.push(state);
  }
  return states;
}

function readDeviceState(context: DeviceReadContext, address: PciAddress): SnapshotInput | null {
  const results = new ResultList(context.executor.run(context.devicesDir, address, STATE_OPS));
  const entryErrno = results.errno(ENTRY);
  if (entryErrno === 'ENOENT') return null;
  const busLink = entryErrno === null ? results.link(ENTRY) : null;
  const deviceDir = (): string => context.deviceDir(address, busLink);

  const driverTarget = results.errno(DRIVER) === null ? results.link(DRIVER) : null;
  const driver = driverTarget !== null && context.driverExists(driverTarget, deviceDir) ? linkName(driverTarget) : null;
  const physfn = results.errno(PHYSFN) === null ? physfnAddress(results.link(PHYSFN), ignore) : null;

  if (results.errno(TOTAL_VFS) === 'ENOENT') return { address, driver, physfn, virtfns: [], sriov: null };
  const virtfnLinks = readVirtfnLinksIn(context, deviceDir(), ignore);
  const totalVfs = count(results, TOTAL_VFS);
  const sriov: SriovInfo | null = totalVfs !== null ? { totalVfs, numVfs: count(results, NUM_VFS) ?? 0 } : null;
  return { address, driver, physfn, virtfns: virtfnLinks.map((link) => link.address), sriov, virtfnLinks };
}

function count(results: ResultList, i: number): number | null {
  return results.errno(i) === null ? (parseVfCount(results.text(i)) ?? null) : null;
}
