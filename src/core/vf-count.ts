import type { PciAddress } from './address.js';
import { HostdevError } from './errors.js';
import type { KernelFiles } from './kernel-files.js';
import type { Plan, RestorePoint, Step } from './plan-types.js';
import { formatOwner, type Owner, type TableName } from './tables.js';

/**
 * Planning a change of a PF's VF count. Linux only accepts N -> 0 -> M on sriov_numvfs, and
 * taking the count through 0 removes EVERY VF of the PF, not only the ones above M; so any VF
 * that is assigned or sits on a stub driver blocks the change unless the operator forces it.
 * Pure: the caller gathers the facts and applies the plan.
 */

/** One existing VF of the PF, with what hostdev and the host know of it. */
export interface VfHolding {
  readonly address: PciAddress;
  readonly vfIndex: number;
  readonly driver: string | null;
  /** The table holding it, if any. */
  readonly table: TableName | null;
  readonly owner: Owner | null;
}

export interface VfCountRequest {
  readonly pf: PciAddress;
  readonly numVfs: number;
  readonly totalVfs: number;
  readonly requested: number;
  readonly vfs: readonly VfHolding[];
  readonly force: boolean;
  /** Write sriov_drivers_autoprobe first (false: new VFs stay unbound, ready for vfio-pci). */
  readonly autoprobe: boolean | null;
  readonly isStubDriver: (driver: string) => boolean;
  readonly files: KernelFiles;
  /** The PF's driver and override (what its journal rows record). */
  readonly restore: RestorePoint;
}

/** A write of sriov_drivers_autoprobe or sriov_numvfs: a `write` step the executor runs like any other. */
type PlannedWrite = Extract<Step, { kind: 'write' }>;

export interface VfCountPlan {
  readonly pf: PciAddress;
  readonly from: number;
  readonly to: number;
  /** The sysfs writes, in order. */
  readonly writes: readonly PlannedWrite[];
  /** The writes as the executor applies them: a group each, the first that fails ends the plan. */
  readonly plan: Plan;
  /** VFs that must leave the tables (with --force): pruned after the count goes to 0. */
  readonly prune: readonly VfHolding[];
  /** VFs on a stub driver outside the tables, pulled away by --force (reported, nothing to clean). */
  readonly stubbed: readonly VfHolding[];
  /** Whether the wait afterwards expects a driver on each new VF. */
  readonly expectDriver: boolean;
}

function describeHolding(vf: VfHolding): string {
  if (vf.owner !== null) {
    return `VF ${vf.vfIndex} ${vf.address} is in use by ${formatOwner(vf.owner)}`;
  }
  if (vf.table === 'inactive') return `VF ${vf.vfIndex} ${vf.address} is detached (inactive table, on ${vf.driver ?? 'no driver'})`;
  return `VF ${vf.vfIndex} ${vf.address} is on stub driver ${vf.driver ?? 'none'}`;
}

function isBlocking(vf: VfHolding, isStubDriver: (driver: string) => boolean): boolean {
  return vf.table !== null || (vf.driver !== null && isStubDriver(vf.driver));
}

export function vfRangeError(pf: PciAddress, requested: number, totalVfs: number): HostdevError {
  return new HostdevError(
    'HOSTDEV_VF_RANGE',
    `PF ${pf} supports at most ${totalVfs} VFs (sriov_totalvfs); ${requested} were requested`,
    { hint: `Ask for 0 to ${totalVfs} VFs.`, details: { address: pf, requested, totalVfs } },
  );
}

function pfWrite(address: PciAddress, action: 'sriov-numvfs' | 'sriov-autoprobe', hostPath: string, value: string): PlannedWrite {
  return { kind: 'write', address, action, hostPath, value };
}

export function planVfCount(request: VfCountRequest): VfCountPlan {
  const { pf, numVfs, totalVfs, requested } = request;
  if (!Number.isInteger(requested) || requested < 0) {
    throw new HostdevError('HOSTDEV_USAGE', `the VF count must be a whole number of 0 or more, not ${requested}`, {
      hint: `Ask for 0 to ${totalVfs} VFs (sriov_totalvfs of ${pf}); 0 removes them all.`,
      details: { address: pf },
    });
  }
  if (requested > totalVfs) throw vfRangeError(pf, requested, totalVfs);

  const writes: PlannedWrite[] = [];
  if (request.autoprobe !== null) {
    writes.push(pfWrite(pf, 'sriov-autoprobe', request.files.device(pf, 'sriov_drivers_autoprobe'), request.autoprobe ? '1' : '0'));
  }
  const changes = requested !== numVfs;
  const blocking = changes && numVfs > 0 ? request.vfs.filter((vf) => isBlocking(vf, request.isStubDriver)) : [];
  if (blocking.length > 0 && !request.force) {
    throw new HostdevError(
      'HOSTDEV_VF_BUSY',
      `cannot change the VF count of PF ${pf} from ${numVfs} to ${requested}: ${blocking.map(describeHolding).join('; ')}`,
      {
        hint:
          'The kernel removes every VF when the count changes (N -> 0 -> M). Release them first ' +
          '(`hostdev release --domain NAME`, `hostdev reattach ADDRESS`), or use --force to prune them from the tables.',
        details: {
          address: pf,
          blocking: blocking.map((vf) => ({ address: vf.address, vfIndex: vf.vfIndex, driver: vf.driver, owner: vf.owner })),
        },
      },
    );
  }
  if (changes && numVfs > 0) writes.push(pfWrite(pf, 'sriov-numvfs', request.files.device(pf, 'sriov_numvfs'), '0'));
  if (changes && requested > 0) writes.push(pfWrite(pf, 'sriov-numvfs', request.files.device(pf, 'sriov_numvfs'), String(requested)));
  return {
    pf,
    from: numVfs,
    to: requested,
    writes,
    plan: {
      operation: 'vf-set-count',
      onFailure: 'stop',
      fallbacks: [],
      groups: writes.map((write) => ({ address: pf, phase: 'vf-count', restore: request.restore, steps: [write] })),
      changes: [],
      pruned: [],
      resets: [],
      notes: [],
    },
    prune: blocking.filter((vf) => vf.table !== null),
    stubbed: blocking.filter((vf) => vf.table === null),
    expectDriver: request.autoprobe !== false,
  };
}
