import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import { pciKey, type DeviceKey } from '../core/device-key.js';
import { HostdevError } from '../core/errors.js';
import { notFound } from '../core/plan-errors.js';
import { isStubDriver } from '../core/stub-driver.js';
import type { Owner, Tables } from '../core/tables.js';
import { planVfCount, type VfCountPlan, type VfHolding } from '../core/vf-count.js';
import type { VfNetInfo } from '../core/vf-net-config.js';
import type { NetPort } from '../net/net-port.js';
import type { KernelPort } from '../sysfs/kernel-port.js';
import { hostFiles, type SysfsLayout } from '../sysfs/paths.js';
import type { StateStore } from '../state/store.js';
import { goneFrom, pruneVanished } from './reconcile.js';
import { HostReader, type DeviceWait } from './host-reader.js';
import { executePlan } from './executor.js';
import { VF_PRUNE_ACTION, vfPruneValue, type RecoveryReport } from './recovery.js';

/** `hostdev vf list` and `hostdev vf set-count`. */

export interface VfListEntry {
  readonly index: number;
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly driver: string | null;
  readonly netdev: string | null;
  readonly table: 'active' | 'inactive' | null;
  readonly owner: Owner | null;
  readonly mac: string | null;
  readonly vlan: number | null;
  readonly spoofchk: boolean | null;
  readonly trust: boolean | null;
}

export interface VfListReport {
  readonly pf: PciAddress;
  readonly pfDriver: string | null;
  readonly pfNetdev: string | null;
  readonly totalVfs: number;
  readonly numVfs: number;
  readonly vfs: readonly VfListEntry[];
  readonly warnings: readonly string[];
}

/**
 * The PF, read in the bounded reader process: its sriov_numvfs and driver_override block while the
 * kernel holds it (a VF removal waiting for its VM), so the read ends at its bound (HOSTDEV_TIMEOUT).
 */
async function readPf(layout: SysfsLayout, pf: PciAddress, wait: DeviceWait = {}): Promise<PciDevice & { sriov: NonNullable<PciDevice['sriov']> }> {
  const device = (await new HostReader(layout).devices([pf], wait)).get(pf) ?? null;
  if (device === null) {
    throw notFound(pf);
  }
  if (device.sriov === null) {
    const vfHint = device.physfn === null ? '' : ` (it is VF of ${device.physfn})`;
    throw new HostdevError('HOSTDEV_NOT_SRIOV', `${pf} is not an SR-IOV physical function${vfHint}`, {
      hint: 'Give the address of a PF: `hostdev list` shows the ones with a VF count.',
      details: { address: pf, driver: device.driver },
    });
  }
  return device as PciDevice & { sriov: NonNullable<PciDevice['sriov']> };
}

function locate(tables: Tables, address: PciAddress): { table: 'active' | 'inactive' | null; owner: Owner | null } {
  const active = tables.active.find((entry) => entry.address === address);
  if (active !== undefined) return { table: 'active', owner: active.usedBy };
  if (tables.inactive.some((entry) => entry.address === address)) return { table: 'inactive', owner: null };
  return { table: null, owner: null };
}

/** The PF's VFs in index order, from its virtfnN links (never computed from offset and stride). */
export async function listVfs(layout: SysfsLayout, tables: Tables, net: NetPort | null, pfAddress: PciAddress, wait: DeviceWait = {}): Promise<VfListReport> {
  const pf = await readPf(layout, pfAddress, wait);
  const reader = new HostReader(layout);
  const warnings: string[] = [];
  const pfNetdev = pf.netdevs[0] ?? null;
  let netInfo: readonly VfNetInfo[] = [];
  if (net !== null && pfNetdev !== null && pf.virtfns.length > 0) {
    try {
      netInfo = (await net.show(pfNetdev)).vfs;
    } catch (error) {
      warnings.push(`VF MAC/VLAN unknown: ${(error as Error).message}`);
    }
  }
  // A VF's driver and interface are links and a directory listing: never held by the kernel.
  const links = await reader.virtfnLinks(pfAddress);
  const vfs = await Promise.all(links.map(async ({ address, index }): Promise<VfListEntry> => {
    const info = netInfo.find((entry) => entry.vf === index);
    return {
      index,
      key: pciKey(address),
      address,
      driver: await reader.driverOf(address),
      netdev: (await reader.netdevsOf(address))[0] ?? null,
      ...locate(tables, address),
      mac: info?.mac ?? null,
      vlan: info?.vlan ?? null,
      spoofchk: info?.spoofchk ?? null,
      trust: info?.trust ?? null,
    };
  }));
  return { pf: pfAddress, pfDriver: pf.driver, pfNetdev, totalVfs: pf.sriov.totalVfs, numVfs: pf.sriov.numVfs, vfs, warnings };
}

export interface SetCountRequest {
  readonly pf: PciAddress;
  readonly count: number;
  readonly force: boolean;
  readonly dryRun: boolean;
  /** null: leave sriov_drivers_autoprobe as it is. */
  readonly autoprobe: boolean | null;
  /** Longest wait for the new VFs to exist (and bind, with autoprobe). */
  readonly waitMs: number;
  readonly onProgress?: (line: string) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  /** The id of the operation and of its journal rows (default: a fresh UUID). */
  readonly operationId?: string;
}

interface PrunedVf {
  readonly address: PciAddress;
  readonly vfIndex: number;
  readonly table: 'active' | 'inactive';
  readonly owner: Owner | null;
}

export interface SetCountReport {
  readonly pf: PciAddress;
  readonly from: number;
  readonly to: number;
  readonly dryRun: boolean;
  /** The sysfs writes, in order ("/sys/.../sriov_numvfs = 0"). */
  readonly steps: readonly string[];
  readonly pruned: readonly PrunedVf[];
  /** VFs that sat on a stub outside the tables, pulled away by --force. */
  readonly stubbed: readonly PciAddress[];
  /** The VFs after the change, with their drivers. */
  readonly vfs: ReadonlyArray<{ readonly address: PciAddress; readonly driver: string | null }>;
  readonly waitedMs: number;
  /** Dry runs only: what recovery at open would do before this change (see RecoveryReport.dryRun). */
  readonly recovery?: RecoveryReport;
}

async function holdings(layout: SysfsLayout, tables: Tables, pf: PciDevice): Promise<VfHolding[]> {
  const reader = new HostReader(layout);
  const links = await reader.virtfnLinks(pf.address);
  return Promise.all(links.map(async ({ address, index: vfIndex }) => ({
    address,
    vfIndex,
    driver: await reader.driverOf(address),
    ...locate(tables, address),
  })));
}

async function planFor(layout: SysfsLayout, tables: Tables, request: SetCountRequest): Promise<{ plan: VfCountPlan; pf: PciDevice }> {
  const pf = await readPf(layout, request.pf);
  const plan = planVfCount({
    pf: request.pf,
    numVfs: pf.sriov!.numVfs,
    totalVfs: pf.sriov!.totalVfs,
    requested: request.count,
    vfs: await holdings(layout, tables, pf),
    force: request.force,
    autoprobe: request.autoprobe,
    isStubDriver,
    files: hostFiles,
    restore: { driver: pf.driver, driverOverride: pf.driverOverride },
  });
  return { plan, pf };
}

function stepLines(plan: VfCountPlan): string[] {
  return plan.writes.map((write) => `write ${write.value} > ${write.hostPath}`);
}

/**
 * Changes the VF count through 0, under the state lock. Each write is journaled before it is made.
 * With --force, the VFs in the tables are pruned in the operation's one commit (tables cleaned,
 * saved VF config dropped, owners reported) — also when a later write fails.
 */
export async function setVfCount(
  context: { readonly layout: SysfsLayout; readonly store: StateStore; readonly kernel: KernelPort },
  request: SetCountRequest,
): Promise<SetCountReport> {
  const { layout, store, kernel } = context;
  if (request.dryRun) {
    const { plan } = await planFor(layout, store.readTables(), request);
    return report(plan, true, [], 0);
  }
  const plan = await store.exclusive('vf-set-count', async (op) => {
    const { plan, pf } = await planFor(layout, op.tables(), request);
    const known = new Map(plan.prune.map((vf) => [vf.address, { pf: request.pf, vfIndex: vf.vfIndex }]));
    // Forced away by the operator: pruned and let go, not awaited back (a watch --reclaim must not take them).
    const { changes } = pruneVanished(op, new Set(plan.prune.map((vf) => vf.address)), 'vf-set-count', { known, awaitReturn: false });
    // A kill from here on must not leave the forced VFs' entries naming the VFs made afterwards:
    // recovery prunes them once the PF's VF generation has moved on.
    if (plan.writes.length > 0) {
      const generation = await new HostReader(layout).vfGeneration(request.pf);
      const numvfs = hostFiles.device(request.pf, 'sriov_numvfs');
      const restore = { driver: pf.driver, driverOverride: pf.driverOverride };
      op.intendAll(
        plan.prune.map((vf) => ({ address: vf.address, action: VF_PRUNE_ACTION, hostPath: numvfs, value: vfPruneValue(vf.vfIndex, generation), restore })),
      );
    }
    const reader = new HostReader(layout);
    const forced = new Set<string>(plan.prune.map((vf) => vf.address));
    const execution = await executePlan(plan.plan, op, { kernel, reader }, {
      context: { totalVfs: pf.sriov?.totalVfs ?? null },
      settle: async ({ failures }) => {
        // The VFs left the host with the first sriov_numvfs write that succeeded (N -> 0): their
        // entries go whatever happens next; if it failed, they are still there and stay in the tables.
        // Entries of any other device that is gone by now go too (the one reconcile rule).
        const stoppedAt = failures[0]?.index ?? plan.plan.groups.length;
        const removed = plan.plan.groups.slice(0, stoppedAt).some((group) => group.steps.some((step) => step.kind === 'write' && step.action === 'sriov-numvfs'));
        const others = new Set([...(await goneFrom(op.tables(), (address) => reader.exists(address)))].filter((address) => !forced.has(address)));
        return { changes: [...(removed ? changes : []), ...pruneVanished(op, others, 'vf-set-count').changes], pruned: [] };
      },
    });
    const failure = execution.failures[0];
    if (failure !== undefined) throw failure.error;
    return plan;
  }, request.operationId);
  const waitedMs = await waitForVfs(layout, plan, request);
  return report(plan, false, await holdingsAfter(layout, request.pf), waitedMs);
}

async function holdingsAfter(layout: SysfsLayout, pf: PciAddress): Promise<Array<{ address: PciAddress; driver: string | null }>> {
  const reader = new HostReader(layout);
  const links = await reader.virtfnLinks(pf);
  return Promise.all(links.map(async ({ address }) => ({ address, driver: await reader.driverOf(address) })));
}

function report(plan: VfCountPlan, dryRun: boolean, vfs: SetCountReport['vfs'], waitedMs: number): SetCountReport {
  return {
    pf: plan.pf,
    from: plan.from,
    to: plan.to,
    dryRun,
    steps: stepLines(plan),
    pruned: plan.prune.map((vf) => ({ address: vf.address, vfIndex: vf.vfIndex, table: vf.table!, owner: vf.owner })),
    stubbed: plan.stubbed.map((vf) => vf.address),
    vfs,
    waitedMs,
  };
}

/** Bounded wait until `to` VFs exist and, with autoprobe, each has a driver. */
async function waitForVfs(layout: SysfsLayout, plan: VfCountPlan, request: SetCountRequest): Promise<number> {
  if (plan.writes.length === 0 || plan.to === 0) return 0;
  const sleep = request.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const start = Date.now();
  let last = '';
  for (;;) {
    const vfs = await holdingsAfter(layout, plan.pf);
    const bound = vfs.filter((vf) => vf.driver !== null).length;
    const done = vfs.length >= plan.to && (!plan.expectDriver || bound >= plan.to);
    const line = `waiting for the VFs of ${plan.pf}: ${vfs.length}/${plan.to} present${plan.expectDriver ? `, ${bound}/${plan.to} bound` : ''}`;
    if (line !== last) request.onProgress?.(line);
    last = line;
    if (done) return Date.now() - start;
    if (Date.now() - start >= request.waitMs) {
      throw new HostdevError('HOSTDEV_TIMEOUT', `the VF count of ${plan.pf} is now ${plan.to}, but after ${request.waitMs} ms ${line.replace(/^waiting for /, '')}`, {
        hint: 'The PF driver may still be creating them; check `hostdev vf list` and dmesg.',
        details: { address: plan.pf },
      });
    }
    await sleep(50);
  }
}

