import { DEFAULT_STUB_DRIVER, isStubDriver } from './stub-driver.js';
import type { PlanOperationName } from './operations.js';
import type { PciAddress } from './address.js';
import type { DeviceKey } from './device-key.js';
import type { PciDevice } from './device.js';
import type { KernelFiles } from './kernel-files.js';
import { formatOwner, type TableChange, type Tables } from './tables.js';
import { describeSetting, type SavedVfNet, type VfNetRequest, type VfNetTarget, type VfSetting } from './vf-net-config.js';

/** One way the host itself uses a device; any of them blocks detach/assign unless forced. */
export interface HostUse {
  readonly kind: 'address' | 'route' | 'mount' | 'console';
  /** What uses it, for the message: "eth0 has 192.0.2.10/24", "/ is mounted from nvme0n1p2". */
  readonly detail: string;
}

/**
 * Everything a plan is computed from, read from the host and the tables beforehand.
 * Plans are pure functions of this view: the same view gives the same plan, which is how
 * `--dry-run` prints exactly what a real run would write.
 */
export interface HostView {
  /** Snapshots of the devices the request touches (null: not on this host). */
  readonly devices: ReadonlyMap<PciAddress, PciDevice | null>;
  /** IOMMU group number -> member addresses (their snapshots are in `devices`). */
  readonly groups: ReadonlyMap<number, readonly PciAddress[]>;
  /** Drivers whose directory exists under /sys/bus/pci/drivers. */
  readonly loadedDrivers: ReadonlySet<string>;
  /** Host uses of the devices (missing key: none known). */
  readonly hostUse: ReadonlyMap<PciAddress, readonly HostUse[]>;
  /** For a device whose reset is bus-level: the other functions on the same bus. */
  readonly busSiblings: ReadonlyMap<PciAddress, readonly PciAddress[]>;
  readonly tables: Tables;
  /**
   * The stub driver made for each device (its best vfio-pci variant from modules.alias, else
   * vfio-pci), read when a request names none; absent: vfio-pci for all.
   */
  readonly vfioStubs?: ReadonlyMap<PciAddress, string>;
  /** Where the plan's writes go. */
  readonly files: KernelFiles;
  /**
   * For each VF whose network config the request sets: its PF interface and index, or why it
   * has none (read only when the request carries VF network config).
   */
  readonly vfNet?: ReadonlyMap<PciAddress, VfNetLookup>;
  /** The VF network configs saved by earlier assigns (what a release puts back). */
  readonly savedVfNet?: ReadonlyMap<PciAddress, SavedVfNet>;
}

/** Where a VF's network config lives, or why it has no such place. */
export type VfNetLookup =
  | { readonly kind: 'target'; readonly target: VfNetTarget }
  | { readonly kind: 'gone' }
  | { readonly kind: 'not-vf'; readonly driver: string | null }
  | { readonly kind: 'no-pf-netdev'; readonly pf: PciAddress; readonly pfDriver: string | null };

/** The stub a request asks for (null: the one made for the device, as libvirt picks it), per device. */
export function stubFor(view: HostView, address: PciAddress, requested: string | null): string {
  return requested ?? view.vfioStubs?.get(address) ?? DEFAULT_STUB_DRIVER;
}

/** What a device looked like before the operation touched it: what a rollback restores. */
export interface RestorePoint {
  readonly driver: string | null;
  readonly driverOverride: string | null;
}

export type WriteAction = 'set-override' | 'clear-override' | 'unbind' | 'probe' | 'bind' | 'reset' | 'sriov-numvfs' | 'sriov-autoprobe';

export type Step =
  | { readonly kind: 'load-module'; readonly module: string; readonly driver: string }
  | {
      readonly kind: 'write';
      readonly address: PciAddress;
      readonly action: WriteAction;
      readonly hostPath: string;
      readonly value: string;
    }
  /** Read the driver link back: Linux reports success for drivers_probe even when nothing binds. */
  | { readonly kind: 'verify-driver'; readonly address: PciAddress; readonly expected: string | null }
  /**
   * Read back after a probe where the kernel picks the driver: any driver but a stub, and (when
   * `bound`) not none either.
   */
  | { readonly kind: 'verify-host-driver'; readonly address: PciAddress; readonly bound: boolean }
  /**
   * Reads the VF's network config from its PF and saves it in the state (durable before anything
   * changes; an earlier unfinished assign's saved row is kept, it holds the true original).
   */
  | { readonly kind: 'net-save'; readonly address: PciAddress; readonly target: VfNetTarget; readonly request: VfNetRequest }
  /** One `ip link set dev PF vf N SETTING`. */
  | { readonly kind: 'net-set'; readonly address: PciAddress; readonly target: VfNetTarget; readonly setting: VfSetting }
  /** Puts a saved VF network config back (dropped from the state in the operation's commit). */
  | { readonly kind: 'net-restore'; readonly address: PciAddress; readonly saved: SavedVfNet }
  /** Read back whether a device of another kind (an mdev) is on the host, as the plan expects. */
  | { readonly kind: 'verify-device'; readonly key: DeviceKey; readonly present: boolean };

/** What a `verify-host-driver` step accepts, in words. */
export function hostDriverWanted(bound: boolean): string {
  return bound ? 'a host driver' : 'a host driver or none';
}

/** Whether the driver read back satisfies a `verify-host-driver` step. */
export function onHostDriver(actual: string | null, bound: boolean): boolean {
  return actual === null ? !bound : !isStubDriver(actual);
}

/**
 * The part of an operation a group of steps belongs to (what `failures[].phase` names). `vf-net`:
 * a VF's network config, saved and set before an assign's first sysfs write, put back before a
 * release's. `recover`: recovery's repair of a device an unfinished operation left; `vf-count`: a
 * PF's sriov_numvfs (and sriov_drivers_autoprobe) writes.
 */
export type Phase = 'detach' | 'reset' | 'reattach' | 'vf-net' | 'recover' | 'vf-count';

/** The steps of one device in one phase. A failure stops this group; what happens next depends on the operation. */
export interface StepGroup {
  /** The PCI function; for a group of a device of another kind, its key's text (as the journal keeps such rows). */
  readonly address: PciAddress;
  /** Set for a group of a device of another kind (an mdev's create or remove repaired by recovery). */
  readonly key?: DeviceKey;
  readonly phase: Phase;
  readonly restore: RestorePoint;
  readonly steps: readonly Step[];
}

export interface ResetChoice {
  readonly address: PciAddress;
  /** The kernel's first reset method for the device (reset_method), which the reset file uses first. */
  readonly method: string;
}

/** The table change for a device whose group of `phase` failed (release: it stays inactive). */
export interface Fallback {
  readonly address: PciAddress;
  readonly phase: Phase;
  readonly change: TableChange;
}

export interface Plan {
  readonly operation: PlanOperationName;
  /**
   * On a failed group: `rollback` undoes everything done so far (all or nothing); `continue` takes
   * that device back to where its group found it and carries on with the other devices; `leave`
   * leaves the device where the failed step left it and carries on (recovery records where it
   * stopped); `stop` leaves it and runs no further group (a VF count cannot be taken back).
   */
  readonly onFailure: 'rollback' | 'continue' | 'leave' | 'stop';
  readonly fallbacks: readonly Fallback[];
  readonly groups: readonly StepGroup[];
  /** Table changes applied in one commit when the plan succeeds. */
  readonly changes: readonly TableChange[];
  /** Devices of the request that vanished from the host: removed from both tables. */
  readonly pruned: readonly PciAddress[];
  readonly resets: readonly ResetChoice[];
  /** Facts worth telling the user (device already on the stub, nothing to do, ...). */
  readonly notes: readonly string[];
}

export function planSteps(plan: Plan): Step[] {
  return plan.groups.flatMap((group) => group.steps);
}

export function planWrites(plan: Plan): Array<Extract<Step, { kind: 'write' }>> {
  return planSteps(plan).filter((step): step is Extract<Step, { kind: 'write' }> => step.kind === 'write');
}

/** One line a step, in order: the `--dry-run` output (writes are `echo VALUE > PATH` equivalents). */
export function formatStep(step: Step): string {
  switch (step.kind) {
    case 'load-module':
      return `load-module ${step.module}`;
    case 'write':
      return `write ${step.hostPath} ${JSON.stringify(step.value)}`;
    case 'verify-driver':
      return `check ${step.address} driver is ${step.expected ?? '(none)'}`;
    case 'verify-host-driver':
      return `check ${step.address} driver is ${hostDriverWanted(step.bound)}`;
    case 'net-save':
      return `save VF network config of ${step.address} (${step.target.pfNetdev} vf ${step.target.vfIndex})`;
    case 'net-set':
      return netSetCommand(step.target, step.setting);
    case 'net-restore':
      return `restore VF network config of ${step.address} (${step.saved.pf} vf ${step.saved.vfIndex})`;
    case 'verify-device':
      return `check ${step.key} is ${step.present ? 'on the host' : 'not on the host'}`;
  }
}

/** The `ip` command a `net-set` step runs. */
export function netSetCommand(target: VfNetTarget, setting: VfSetting): string {
  return `ip link set dev ${target.pfNetdev} vf ${target.vfIndex} ${describeSetting(setting)}`;
}

export function formatChange(change: TableChange): string {
  switch (change.kind) {
    case 'set-active':
      return `table ${change.entry.address} -> active (${formatOwner(change.entry.usedBy)})`;
    case 'set-inactive':
      return `table ${change.entry.address} -> inactive`;
    case 'remove':
      return `table ${change.address} -> removed`;
  }
}
