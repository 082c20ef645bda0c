import { readdirSync } from 'node:fs';
import { namedOps, type BatchOp } from './batch-ops.js';
import { errnoOf } from './errno.js';

/**
 * What is read of every PCI function, in the order it is made sense of (and warned about) by
 * interpretDevice. All of it goes to the bounded reader (src/sysfs/batch-reader.ts), for among it
 * are the files the kernel can hold up: `driver_override` and `sriov_numvfs` are shown under the
 * device lock (held for as long as a VF removal waits for a VM to let go), a `config` read waits
 * while config access is blocked (a reset; up to 60 s for a device that is not ready). What only
 * some functions need (a PF's virtfnN links, a bridge's subsystem files) is read afterwards,
 * in-process: no kernel lock holds those. `uevent` stands for the vendor, device, class and
 * subsystem_* files (one read instead of five; some kernels show it under the device lock too);
 * a tree without it (a hand-made one) has those files read in-process. A module of its own, light, so that the CLI can start
 * the reader before it loads the rest.
 */
const DEVICE_OPS = {
  entry: { kind: 'link', file: '' },
  uevent: { kind: 'read', file: 'uevent' },
  driver: { kind: 'link', file: 'driver' },
  iommuGroup: { kind: 'link', file: 'iommu_group' },
  physfn: { kind: 'link', file: 'physfn', mayBeAbsent: true },
  totalVfs: { kind: 'read', file: 'sriov_totalvfs', mayBeAbsent: true },
  net: { kind: 'list', file: 'net', mayBeAbsent: true },
  config: { kind: 'config', file: 'config' },
  driverOverride: { kind: 'read', file: 'driver_override' },
  numVfs: { kind: 'read', file: 'sriov_numvfs', mayBeAbsent: true },
  numaNode: { kind: 'read', file: 'numa_node' },
  resetMethod: { kind: 'read', file: 'reset_method' },
} as const satisfies Record<string, BatchOp>;

const DEVICE_OPS_NAMED = namedOps(DEVICE_OPS);
/** DEVICE_OPS as a list: the results of one function come in this order. */
export const DEVICE_OP_LIST: readonly BatchOp[] = DEVICE_OPS_NAMED.list;
export const OP_INDEX = DEVICE_OPS_NAMED.index;

/** The names under ROOT/sys/bus/pci/devices (PCI addresses or not), or why they could not be listed. */
export type FunctionListing = { readonly names: readonly string[] } | { readonly errno: string };

export function listFunctionNames(dir: string): FunctionListing {
  try {
    return { names: readdirSync(dir) };
  } catch (error) {
    return { errno: errnoOf(error) };
  }
}
