import type { PciAddress } from '../core/address.js';
import { HostdevError } from '../core/errors.js';
import { notFound } from '../core/plan-errors.js';
import type { VfNetConfig, VfNetRequest, VfSetting } from '../core/vf-net-config.js';
import type { NetPort } from '../net/net-port.js';
import { describeSetting, NO_MAC, pfDownError, restoreSettings, settingsFor } from '../net/vf-net-config.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import type { Operation, StateChange, VfConfig } from '../state/store.js';
import { HostReader } from './host-reader.js';
import type { OperationHooks } from './operation-hooks.js';

/**
 * VF network config across assign and release:
 *  - assign, before the VF is given away: read the VF's admin MAC, VLAN, spoofchk and trust from
 *    the PF, SAVE them in the state database (durable before anything changes), then apply what
 *    was asked, in the order Intel NICs need (VLAN, trust, MAC, spoofchk);
 *  - release: put the saved values back, then drop the saved row in the release's commit;
 *  - crash: a saved row whose VF is not in the active table belongs to an assign that never
 *    completed (or a release that never committed): recovery on open restores it (src/manager/recovery.ts);
 *  - prune: the saved row of a vanished VF is dropped with its table entry (libvirt leaks those).
 */

/** Where a VF's config lives: its PF's network interface and its VF index there. */
interface VfNetTarget {
  readonly address: PciAddress;
  readonly pf: PciAddress;
  readonly pfNetdev: string;
  readonly vfIndex: number;
}

/**
 * The VF's PF, index and the PF's interface, from links and directory listings only: a PF whose
 * sriov_numvfs or driver_override the kernel holds (a VF removal waiting for its VM) never blocks it.
 */
function vfNetTarget(layout: SysfsLayout, address: PciAddress): VfNetTarget {
  const reader = new HostReader(layout);
  if (!reader.exists(address)) {
    throw notFound(address);
  }
  const physfn = reader.physfnOf(address);
  if (physfn === null) {
    throw new HostdevError('HOSTDEV_NOT_SRIOV', `${address} is not an SR-IOV VF: --mac/--vlan/--spoofchk/--trust apply to VFs only`, {
      hint: 'Give the address of a VF (see `hostdev vf list PF`).',
      details: { address, driver: reader.driverOf(address) },
    });
  }
  // N of the PF's virtfnN link: the index `ip link set PF vf N` means (never a position in a list).
  const vfIndex = reader.virtfnLinks(physfn).find((link) => link.address === address)?.index ?? -1;
  const pfNetdev = reader.exists(physfn) ? reader.netdevsOf(physfn)[0] : undefined;
  if (vfIndex < 0 || pfNetdev === undefined) {
    throw new HostdevError(
      'HOSTDEV_NET_CONFIG',
      `the PF ${physfn} of VF ${address} has no network interface (driver ${reader.driverOf(physfn) ?? 'none'}); its VFs' MAC and VLAN cannot be set`,
      { hint: 'Bind the PF to its network driver first.', details: { address, pf: physfn } },
    );
  }
  return { address, pf: physfn, pfNetdev, vfIndex };
}

function toStored(target: VfNetTarget, config: VfNetConfig): VfConfig {
  return {
    address: target.address,
    pf: target.pfNetdev,
    vfIndex: target.vfIndex,
    mac: config.mac,
    vlan: config.vlan,
    spoofchk: config.spoofchk,
    trust: config.trust,
  };
}

function fromStored(saved: VfConfig): VfNetConfig {
  return {
    mac: saved.mac ?? NO_MAC,
    vlan: saved.vlan ?? 0,
    qos: 0,
    spoofchk: saved.spoofchk,
    trust: saved.trust,
    linkState: null,
  };
}

/** What a VF's MAC is set to when its driver will not take 00:00:00:00:00:00 (libvirt's altZeroMAC). */
const ALT_ZERO_MAC = '02:00:00:00:00:00';

/** `ip` (netlink) said EINVAL: "RTNETLINK answers: Invalid argument". */
function refusedAsInvalid(error: unknown): boolean {
  return error instanceof Error && error.message.includes('Invalid argument');
}

export class VfNetConfigurator {
  constructor(
    private readonly net: NetPort,
    private readonly layout: SysfsLayout,
  ) {}

  target(address: PciAddress): VfNetTarget {
    return vfNetTarget(this.layout, address);
  }

  /** The VF's current config as its PF reports it; refuses a PF that is down (libvirt's wording). */
  async current(target: VfNetTarget): Promise<VfNetConfig> {
    const link = await this.net.show(target.pfNetdev);
    if (!link.up) throw pfDownError(target.pfNetdev, target.vfIndex);
    const vf = link.vfs.find((entry) => entry.vf === target.vfIndex);
    if (vf === undefined) {
      throw new HostdevError('HOSTDEV_NET_CONFIG', `PF ${target.pfNetdev} reports no VF ${target.vfIndex} (${target.address})`, {
        hint:
          `\`ip link show ${target.pfNetdev}\` should list vf ${target.vfIndex}: if the VF count just changed, retry; ` +
          'if it never lists VFs, the PF driver does not report them and their MAC and VLAN cannot be set.',
        details: { address: target.address, ifname: target.pfNetdev },
      });
    }
    return vf;
  }

  async apply(target: VfNetTarget, settings: readonly VfSetting[]): Promise<void> {
    for (const setting of settings) await this.net.setVf(target.pfNetdev, target.vfIndex, setting);
  }

  /**
   * Puts a saved config back (same order as apply). A driver that refuses to set the all-zero MAC
   * ("no MAC", EINVAL) gets 02:00:00:00:00:00 instead, as libvirt does (its altZeroMAC): the
   * locally administered bit alone, which no real NIC carries.
   */
  async restore(saved: VfConfig): Promise<void> {
    const link = await this.net.show(saved.pf);
    if (!link.up) throw pfDownError(saved.pf, saved.vfIndex);
    for (const setting of restoreSettings(fromStored(saved))) {
      try {
        await this.net.setVf(saved.pf, saved.vfIndex, setting);
      } catch (error) {
        if (setting.kind !== 'mac' || setting.mac !== NO_MAC || !refusedAsInvalid(error)) throw error;
        await this.net.setVf(saved.pf, saved.vfIndex, { kind: 'mac', mac: ALT_ZERO_MAC });
      }
    }
  }

  /** The `ip` commands an assign with this request would run (for --dry-run). */
  plan(target: VfNetTarget, request: VfNetRequest): string[] {
    return settingsFor(request).map((setting) => `ip link set dev ${target.pfNetdev} vf ${target.vfIndex} ${describeSetting(setting)}`);
  }
}

interface AppliedVfNet {
  readonly saved: VfConfig;
  readonly applied: readonly VfSetting[];
}

/**
 * The assign phase: save, then apply. MUST run before the operation's first journaled write:
 * the save is made durable with `op.commit`, which also clears the operation's journal rows.
 * On a failed apply, what was applied is undone and the saved row dropped before rethrowing.
 */
export async function saveAndApplyVfNet(
  op: Operation,
  configurator: VfNetConfigurator,
  address: PciAddress,
  request: VfNetRequest,
): Promise<AppliedVfNet> {
  const target = configurator.target(address);
  const current = await configurator.current(target);
  const saved = toStored(target, current);
  // An earlier unfinished assign's row holds the true original: never overwrite it.
  const earlier = op.vfConfigs().find((row) => row.address === address);
  const original = earlier ?? saved;
  // What the domain asked for is kept with it: a VF that leaves and returns is readied with it again.
  op.commit([{ kind: 'save-vf-config', config: { ...original, requested: request } }]);
  const settings = settingsFor(request);
  try {
    await configurator.apply(target, settings);
  } catch (error) {
    await configurator.restore(original).catch(() => undefined);
    op.commit([{ kind: 'drop-vf-config', address }]);
    throw error;
  }
  return { saved: original, applied: settings };
}

/**
 * The release phase: restore the saved config of `address` if there is one. Returns the change
 * the release commit must include (dropping the row), or none when nothing was saved. A VF that
 * vanished cannot be restored: its row is dropped all the same (the seed's rule for pruning).
 */
export async function restoreVfNet(
  op: Operation,
  configurator: VfNetConfigurator,
  address: PciAddress,
  vanished: boolean,
): Promise<StateChange[]> {
  const saved = op.vfConfigs().find((row) => row.address === address);
  if (saved === undefined) return [];
  if (!vanished) await configurator.restore(saved);
  return [{ kind: 'drop-vf-config', address }];
}

interface OrphanRestoreReport {
  readonly restored: readonly PciAddress[];
  /** Rows of VFs that no longer exist: dropped. */
  readonly dropped: readonly PciAddress[];
  /** Rows whose restore failed: kept for the next run (a PF that is down now may be up then). */
  readonly pending: ReadonlyArray<{ readonly address: PciAddress; readonly reason: string }>;
}

/** The ports a VF config repair needs. */
export interface VfConfigRepairPorts {
  readonly configurator: Pick<VfNetConfigurator, 'restore'>;
  readonly exists: (address: PciAddress) => boolean;
}

/**
 * Every saved VF config whose VF is not assigned (not in `active`) belongs to an assign that did
 * not complete (crash or failure) or a release that just completed: put it back. A VF that no
 * longer exists only has its row dropped; a restore that fails keeps its row for the next run
 * (a PF that is down now may be up then). Returns the changes to commit (the dropped rows).
 */
export async function reviewVfConfigs(
  rows: readonly VfConfig[],
  active: ReadonlySet<string>,
  ports: VfConfigRepairPorts,
): Promise<{ report: OrphanRestoreReport; changes: StateChange[] }> {
  const restored: PciAddress[] = [];
  const dropped: PciAddress[] = [];
  const pending: Array<{ address: PciAddress; reason: string }> = [];
  const changes: StateChange[] = [];
  for (const row of rows) {
    if (active.has(row.address)) continue;
    if (!ports.exists(row.address)) {
      dropped.push(row.address);
    } else {
      try {
        await ports.configurator.restore(row);
        restored.push(row.address);
      } catch (error) {
        pending.push({ address: row.address, reason: (error as Error).message });
        continue;
      }
    }
    changes.push({ kind: 'drop-vf-config', address: row.address });
  }
  return { report: { restored, dropped, pending }, changes };
}

/** `reviewVfConfigs` inside an operation, committed at once (assign failure, release). */
export async function repairVfConfigs(
  op: Operation,
  configurator: VfNetConfigurator,
  exists: (address: PciAddress) => boolean,
): Promise<OrphanRestoreReport> {
  const active = new Set<string>(op.tables().active.map((entry) => entry.address));
  const { report, changes } = await reviewVfConfigs(op.vfConfigs(), active, { configurator, exists });
  if (changes.length > 0) op.commit(changes);
  return report;
}

/** Whether every saved VF config belongs to an assigned VF (then there is nothing to repair). */
export function vfConfigsSettled(rows: readonly VfConfig[], active: ReadonlySet<string>): boolean {
  return rows.every((row) => active.has(row.address));
}

function warnPending(report: OrphanRestoreReport, warn: (line: string) => void): void {
  for (const item of report.pending) warn(`VF network config of ${item.address} not restored yet (kept for the next run): ${item.reason}`);
}

/**
 * The hooks that give `assign` its --mac/--vlan/--spoofchk/--trust: each VF's config is saved
 * and applied before the plan's first write; if the plan fails (and was rolled back), the saved
 * configs are restored. Leftovers of a crashed assign are not this hook's business: recovery on
 * open (src/manager/recovery.ts) repairs them before any operation runs.
 */
export function vfNetAssignHooks(
  configurator: VfNetConfigurator,
  requests: ReadonlyMap<PciAddress, VfNetRequest>,
  exists: (address: PciAddress) => boolean,
  warn: (line: string) => void,
): OperationHooks {
  return {
    before: async (op) => {
      try {
        for (const [address, request] of requests) await saveAndApplyVfNet(op, configurator, address, request);
      } catch (error) {
        warnPending(await repairVfConfigs(op, configurator, exists), warn);
        throw error;
      }
    },
    failed: async (op) => warnPending(await repairVfConfigs(op, configurator, exists), warn),
  };
}

/**
 * The hooks that give `release` its VF config restore. Like libvirt, the saved config goes back
 * BEFORE the VF is rebound to its host driver (`before`, after planning, before the first write):
 * the PF hands the restored admin MAC to the VF driver when it probes. The saved rows are dropped
 * once the release is committed (`after`), so a release killed in between restores them again.
 * A restore that fails here is retried (and reported) by `after`; pruned VFs only lose their rows.
 */
export function vfNetReleaseHooks(
  configurator: VfNetConfigurator,
  exists: (address: PciAddress) => boolean,
  warn: (line: string) => void,
): OperationHooks {
  const restored = new Set<string>();
  return {
    before: async (op, plan) => {
      const pruned = new Set<string>(plan.pruned);
      const released = new Set<string>(plan.changes.map((change) => (change.kind === 'remove' ? change.address : change.entry.address)));
      for (const row of op.vfConfigs()) {
        if (!released.has(row.address) || pruned.has(row.address)) continue;
        try {
          await configurator.restore(row);
          restored.add(row.address);
        } catch {
          // `after` tries again and keeps the row if it still fails
        }
      }
    },
    after: async (op) => {
      const active = new Set<string>(op.tables().active.map((entry) => entry.address));
      const done = op.vfConfigs().filter((row) => restored.has(row.address) && !active.has(row.address));
      if (done.length > 0) op.commit(done.map((row) => ({ kind: 'drop-vf-config', address: row.address })));
      warnPending(await repairVfConfigs(op, configurator, exists), warn);
    },
  };
}

/** Whether a device still exists (the rows of VFs that vanished are dropped, not restored). */
export function deviceExists(layout: SysfsLayout): (address: PciAddress) => boolean {
  const reader = new HostReader(layout);
  return (address) => reader.exists(address);
}
