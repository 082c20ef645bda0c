import type { PciAddress } from '../core/address.js';
import { HostdevError } from '../core/errors.js';
import { DEFAULT_HYPERVISOR, ownerOf } from '../core/names.js';
import { checkHostIdentity } from '../core/host-identity.js';
import { readHostIdentity } from '../host/host-identity.js';
import { readBootId } from '../host/boot-id.js';
import type { DetachedAfterReboot } from '../core/boot.js';
import { planAssign } from '../core/plan-assign.js';
import { planHandOver, type HandOverRequest } from '../core/plan-hand-over.js';
import { planAdopt, type AdoptRequest } from '../core/plan-adopt.js';
import { planDetach, planReattach, planReset } from '../core/plan-node.js';
import { domainHoldsNothing, hardwareChangedError } from '../core/plan-errors.js';
import { planRelease } from '../core/plan-release.js';
import { planVfNetAssign, planVfNetRelease, withVfNet } from '../core/plan-vf-net.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import type { PlanOperationName } from '../core/operations.js';
import type { HostView, Plan } from '../core/plan-types.js';
import { requestedStubDriver } from '../core/stub-driver.js';
import { sameOwner, TableIndex, type Owner, type TableChange, type Tables } from '../core/tables.js';
import { hardwareChanged, identityOf, NO_SERIALS, type DeviceSerials } from '../core/hardware-identity.js';
import { NO_HOST_USAGE, type HostUsagePort } from '../host/host-usage-port.js';
import type { NetPort } from '../net/net-port.js';
import type { KernelPort } from '../sysfs/kernel-port.js';
import { SysfsLayout } from '../sysfs/paths.js';
import { StateStore, type Operation, type StateChange } from '../state/store.js';
import { DRY_RUN_KERNEL, dryRunNet } from './dry-run-ports.js';
import { reassignedDepartures, releasedDepartures, vfIdentityNotes } from './departed.js';
import { executePlan, type Execution, type Settle } from './executor.js';
import { pruneVanished } from './reconcile.js';
import { HostReader, type DeviceWait } from './host-reader.js';
import { buildHostView, type ViewScope } from './host-view.js';
import { tablesSource, type TableSource } from './table-source.js';
import { operationReport, type OperationReport, type ReleaseReport, releaseReport } from './reports.js';
import { recoverOnOpen, recoveryWouldAct, type ReconcileScope, type RecoveryReport } from './recovery.js';
import { readStatus, type StatusReport } from './status.js';
import { netPortFor } from './vf-net-port.js';
import type { DomainHolder, Holder, HolderStatus } from '../core/holders.js';
import {
  HolderReplaced,
  holderEndLine,
  holderStatuses,
  inScope,
  qmpHolderLife,
  sameHolderRecord,
  type HolderEnd,
  type HolderScope,
  type ProcessProbe,
  type QmpHolderProbe,
} from './holders.js';
import type { DeviceKey } from '../core/device-key.js';
import {
  assignDevices,
  holderChange,
  holdsDevices,
  deviceStatus,
  releaseDevices,
  type DeviceAssignReport,
  type DevicePorts,
  type DeviceReleaseReport,
} from './device-ops.js';
import { createMdev, defineMdev, mdevDefinitions, removeMdev, startDefined, type MdevDefineReport, type MdevReport, type StartDefinedReport } from './mdev-ops.js';
import type { MdevDefinition } from '../state/mdev-definitions.js';
import { VfNetConfigurator } from './vf-net.js';
import { assignNvme, releaseNvme, type Bookkeeping, type NvmeControllers, type NvmePorts } from './nvme-ops.js';

export { DEFAULT_HYPERVISOR };

/** What recovery (src/manager/recovery.ts, the state side) gets and returns; called on every open. */
type RecoverFn = (context: {
  store: StateStore;
  kernel: KernelPort;
  layout: SysfsLayout;
  net: NetPort;
  dryRun: boolean;
  wait: boolean;
  command?: string;
  detachedAfterReboot?: DetachedAfterReboot;
  reconcile: ReconcileScope;
}) => Promise<RecoveryReport>;

export interface OpenOptions {
  /** The directory that stands for "/" (sysfs is read under ROOT/sys). */
  readonly root: string;
  readonly stateDir: string;
  readonly kernel: KernelPort;
  readonly hostUsage?: HostUsagePort;
  /** VF network config (iproute2; default: netPortFor(root), the emulation on a simulated tree). */
  readonly net?: NetPort;
  readonly lockTimeoutMs?: number;
  /** Runs before the first operation (default: recoverOnOpen); its report is kept for `status`. */
  readonly recover?: RecoverFn;
  /** FOR BENCHMARKS ONLY: see StoreOptions.journal. */
  readonly journal?: boolean;
  /**
   * Opens for dry runs: the state is read into memory (no lock, nothing on disk touched),
   * recovery only works out what it would do (`recovery.dryRun`), and the kernel and net ports
   * refuse every change. Every operation of such a manager must be called with `dryRun`.
   */
  readonly dryRun?: boolean;
  /**
   * The command that opens (`vf set-count`, say): recorded with what recovery at open did, for `status`.
   */
  readonly command?: string;
  /**
   * Default true. False for readers (status, qemu-args, vf list): recovery at open runs only if
   * the state lock is free at once, else it is left for later (`recovery.deferred`).
   */
  readonly waitForLock?: boolean;
  /** Tells whether a QMP holder's QEMU lives (default: connect and ask `query-status`, bounded). */
  readonly probeQmp?: QmpHolderProbe;
  /** Where process holders are looked up (default: the real /proc and kill(pid, 0)). */
  readonly probeProcess?: ProcessProbe;
  /**
   * Which holders open probes, releasing the domains of those gone (default `pids`: a /proc read
   * each; QMP holders are probed by status, domains and the daemon's watch). See HolderScope.
   */
  readonly holders?: HolderScope;
  /**
   * Default 'full': recovery at open reads every table entry's device. 'changed': none while the
   * kernel's uevent sequence number (and boot) are those at which every entry was last found
   * consistent (see ReconcileScope); operations then read only the devices they name.
   */
  readonly reconcile?: ReconcileScope;
  /**
   * What the first open after a reboot does with inactive (detached) entries of the earlier boot:
   * `reapply` (default) puts them back on their stub, `reattach` gives them back to the host.
   */
  readonly detachedAfterReboot?: DetachedAfterReboot;
}

/** Which addresses an operation acts on, to be checked against the hardware their entries were made for. */
interface HardwareCheck {
  readonly addresses: (view: HostView) => readonly PciAddress[];
  readonly force: boolean;
}

/** What every operation takes besides its request: a dry run, and the bound on held-up reads. */
export interface OperationMode {
  readonly dryRun?: boolean;
  readonly wait?: DeviceWait;
  /** The id of the operation and of its journal rows (default: a fresh UUID); a daemon names its operations by it. */
  readonly operationId?: string;
}

export interface DetachOptions {
  /** How long to wait for device reads the kernel holds up (default HOSTDEV_READ_TIMEOUT_MS, 15 s), and who hears meanwhile. */
  readonly wait?: DeviceWait;
  /** Default: the device's vfio-pci variant driver when modules.alias names one, else vfio-pci (libvirt >= 10.0). */
  readonly stubDriver?: string;
  readonly force?: boolean;
  readonly dryRun?: boolean;
  readonly operationId?: string;
  /** A claim's device put on its stub at boot: recorded as taken from no driver (see planDetach). */
  readonly fromBoot?: boolean;
}

export interface AssignRequest {
  readonly domain: string;
  readonly hypervisor?: string;
  readonly addresses: readonly PciAddress[];
  /** Default true: hostdev detaches the devices itself. */
  readonly managed?: boolean;
  /** Functions of `addresses` assigned unmanaged (they must already be on a stub) whatever `managed` says. */
  readonly unmanaged?: readonly PciAddress[];
  /** Default: each device's vfio-pci variant driver when modules.alias names one, else vfio-pci (libvirt >= 10.0). */
  readonly stubDriver?: string;
  readonly withGroup?: boolean;
  readonly force?: boolean;
  readonly dryRun?: boolean;
  /**
   * VF network config by VF (MAC, VLAN, spoofchk, trust): saved from the PF and set before the
   * first sysfs write, put back by the release (plan steps of phase `vf-net`).
   */
  readonly vf?: ReadonlyMap<PciAddress, VfNetRequest>;
  /** Hears what fails nothing but is worth saying (a VF config that could not be put back yet). */
  readonly onWarning?: (line: string) => void;
  readonly wait?: DeviceWait;
  readonly operationId?: string;
  /** Ties the domain's devices to a process or a QMP socket: when it is gone, they are released. */
  readonly holder?: Holder;
}

export interface ReleaseRequest {
  readonly domain: string;
  readonly hypervisor?: string;
  /** Default: every device of the domain. */
  readonly addresses?: readonly PciAddress[];
  /** Release even a device whose entry was made for another card than the one at its address now. */
  readonly force?: boolean;
  readonly dryRun?: boolean;
  /** Hears what fails nothing but is worth saying (a saved VF config that could not be put back yet). */
  readonly onWarning?: (line: string) => void;
  readonly wait?: DeviceWait;
  readonly operationId?: string;
}

/** A release because the domain's holder is gone: made only while that holder is still the one recorded (checked under the lock). */
interface HolderEndRelease extends ReleaseRequest {
  readonly whileHeldBy?: DomainHolder;
}

/**
 * libvirt's virHostdevManager for PCI devices: node-device detach/reattach/reset, prepare and
 * release of a domain's devices, over two persistent tables. Every mutating call has a `plan*`
 * twin that computes the same plan without changing anything (`--dry-run`).
 */
export class HostdevManager {
  private readonly reader: HostReader;
  /** Domains whose holder was gone at open, released then (a dry run: that would be). */
  holdersEnded: readonly HolderEnd[] = [];

  private constructor(
    readonly layout: SysfsLayout,
    readonly store: StateStore,
    readonly kernel: KernelPort,
    readonly hostUsage: HostUsagePort,
    readonly net: NetPort,
    readonly recovery: RecoveryReport,
    readonly probeQmp: QmpHolderProbe,
    private readonly probeProcess: ProcessProbe,
  ) {
    this.reader = new HostReader(layout).serve();
  }

  static async open(options: OpenOptions): Promise<HostdevManager> {
    const layout = new SysfsLayout(options.root);
    const storeOptions = {
      ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
      ...(options.journal === undefined ? {} : { journal: options.journal }),
    };
    const dryRun = options.dryRun ?? false;
    const store = dryRun ? StateStore.openSnapshot(options.stateDir) : StateStore.open(options.stateDir, storeOptions);
    try {
      const host = readHostIdentity(options.root);
      if (host !== null) checkHostIdentity(store.claimHost(host.id), host, { root: options.root, stateDir: store.stateDir });
      store.useBoot(await readBootId(options.root));
      const recover = options.recover ?? recoverOnOpen;
      const hostNet = options.net ?? netPortFor(layout);
      const net = dryRun ? dryRunNet(hostNet) : hostNet;
      const kernel = dryRun ? DRY_RUN_KERNEL : options.kernel;
      const recovery = await recover({
        store,
        kernel,
        layout,
        net,
        dryRun,
        wait: options.waitForLock ?? true,
        reconcile: options.reconcile ?? 'full',
        ...(options.command === undefined ? {} : { command: options.command }),
        ...(options.detachedAfterReboot === undefined ? {} : { detachedAfterReboot: options.detachedAfterReboot }),
      });
      const manager = new HostdevManager(
        layout,
        store,
        kernel,
        options.hostUsage ?? NO_HOST_USAGE,
        net,
        recovery,
        options.probeQmp ?? qmpHolderLife,
        options.probeProcess ?? {},
      );
      const scope = options.holders ?? 'pids';
      // A reader whose recovery found the lock taken leaves the holders to the next command too.
      if (recovery.deferred === undefined && scope !== 'none') manager.holdersEnded = await manager.releaseEndedHolders(await manager.holders(scope));
      return manager;
    } catch (error) {
      store.close();
      throw error;
    }
  }

  close(): void {
    this.reader.close();
    this.store.close();
  }

  // ---- node devices (libvirt's nodedev-detach / nodedev-reattach / nodedev-reset) ----

  async detach(address: PciAddress, options: DetachOptions = {}): Promise<OperationReport> {
    const stubDriver = options.stubDriver !== undefined ? this.requestedStub(options.stubDriver) : null;
    return this.perform(
      'detach',
      () => ({ addresses: [address], drivers: stubDriver !== null ? [stubDriver] : [], hostUse: true, vfioStubs: stubDriver === null }),
      (view) => planDetach(view, { address, stubDriver, force: options.force ?? false, fromBoot: options.fromBoot ?? false }),
      { ...options, hardware: { addresses: () => [address], force: options.force ?? false } },
      (_op, plan, view) => this.identityNotes(plan, view),
    ).then(([plan, execution]) => this.withPreview(operationReport(plan, execution)));
  }

  planDetach(address: PciAddress, options: DetachOptions = {}): Promise<Plan> {
    return this.detach(address, { ...options, dryRun: true }).then((report) => report.plan);
  }

  reattach(address: PciAddress, options: OperationMode & { readonly force?: boolean } = {}): Promise<OperationReport> {
    return this.perform(
      'reattach',
      (source) => ({ addresses: [address, ...source.inactive().map((entry) => entry.address)], drivers: [], hostUse: false }),
      (view) => planReattach(view, address),
      { ...options, hardware: { addresses: () => [address], force: options.force ?? false } },
      async () => [],
      (op, plan) => this.settleVanished(op, plan, 'reattach'),
    ).then(([plan, execution]) => this.withPreview(operationReport(plan, execution)));
  }

  planReattach(address: PciAddress): Promise<Plan> {
    return this.reattach(address, { dryRun: true }).then((report) => report.plan);
  }

  reset(address: PciAddress, options: OperationMode = {}): Promise<OperationReport> {
    return this.perform(
      'reset',
      () => ({ addresses: [address], drivers: [], hostUse: false }),
      (view) => planReset(view, address),
      options,
    ).then(([plan, execution]) => this.withPreview(operationReport(plan, execution)));
  }

  planReset(address: PciAddress): Promise<Plan> {
    return this.reset(address, { dryRun: true }).then((report) => report.plan);
  }

  // ---- domains (libvirt's virHostdevPreparePCIDevices / virHostdevReAttachPCIDevices) ----

  /** `also`: more state changes for the assign's own commit, worked out under its lock (NVMe namespaces). */
  async assign(request: AssignRequest, also: Bookkeeping = async () => []): Promise<OperationReport> {
    const owner = ownerOf(request);
    const notes: string[] = [];
    const stubDriver = request.stubDriver !== undefined ? this.requestedStub(request.stubDriver) : null;
    return this.perform(
      'assign',
      () => ({
        addresses: request.addresses,
        drivers: stubDriver !== null ? [stubDriver] : [],
        hostUse: true,
        vfioStubs: stubDriver === null,
        vfNet: [...(request.vf?.keys() ?? [])],
      }),
      (view) => {
        // First: a VF whose network config cannot be set is refused before anything else is planned.
        const net = planVfNetAssign(view, request.vf ?? new Map());
        const plan = planAssign(view, {
          owner,
          addresses: request.addresses,
          managed: request.managed ?? true,
          ...(request.unmanaged === undefined ? {} : { unmanaged: request.unmanaged }),
          stubDriver,
          withGroup: request.withGroup ?? false,
          force: request.force ?? false,
        });
        return withVfNet(plan, net);
      },
      { ...request, hardware: { addresses: () => request.addresses, force: request.force ?? false } },
      async (op, plan, view) => {
        const assigned = plan.changes.flatMap((change) => (change.kind === 'set-active' ? [change.entry.address] : []));
        const again = reassignedDepartures(op, owner, assigned);
        notes.push(...again.notes);
        return [...(await this.identityNotes(plan, view)), ...again.changes, ...holderChange(owner, request.holder), ...(await also(op))];
      },
    ).then(([plan, execution]) => {
      const report = this.withPreview(operationReport(plan, execution));
      return notes.length === 0 ? report : { ...report, notes: [...report.notes, ...notes] };
    });
  }

  prepareDomain(request: AssignRequest): Promise<OperationReport> {
    return this.assign(request);
  }

  planAssign(request: AssignRequest): Promise<Plan> {
    return this.assign({ ...request, dryRun: true }).then((report) => report.plan);
  }

  /** `also`: more state changes for the release's own commit, worked out under its lock (NVMe namespaces). */
  async release(request: HolderEndRelease, also: Bookkeeping = async () => []): Promise<ReleaseReport> {
    const owner = ownerOf(request);
    // The domain's VFs pruned before this release (by a status, a watch, another command's open)
    // are reported as pruned by it too: the release is where the domain learns they are gone.
    const prunedEarlier: PciAddress[] = [];
    // What the domain holds, seen where the view is scoped (the view itself may name other addresses only).
    let owned = 0;
    return this.perform(
      'release',
      (source) => {
        const entries = source.ownedBy(owner);
        owned = entries.length;
        return { addresses: request.addresses ?? entries.map((entry) => entry.address), drivers: [], hostUse: false };
      },
      (view) => {
        if (request.whileHeldBy !== undefined) this.checkStillHeld(request.whileHeldBy);
        if (owned === 0 && !this.heardOfSince(owner)) throw domainHoldsNothing(owner, this.store.readTables());
        const plan = planRelease(view, { owner, addresses: request.addresses });
        // The saved VF config goes back before the VF is rebound (libvirt's order).
        return withVfNet(plan, planVfNetRelease(view, plan));
      },
      {
        ...request,
        hardware: {
          addresses: (view) => request.addresses ?? new TableIndex(view.tables).ownedBy(owner).map((entry) => entry.address),
          force: request.force ?? false,
        },
      },
      async (op) => {
        const letGo = releasedDepartures(op, owner, request.addresses);
        prunedEarlier.push(...letGo.addresses);
        return [...letGo.changes, ...(await also(op))];
      },
      (op, plan) => this.settleVanished(op, plan, 'release', owner),
    ).then(([plan, execution]) =>
      this.withPreview(releaseReport(plan, execution, [...this.prunedAtOpen(owner, request.addresses), ...prunedEarlier])),
    );
  }

  releaseDomain(request: ReleaseRequest): Promise<ReleaseReport> {
    return this.release(request);
  }

  planRelease(request: ReleaseRequest): Promise<Plan> {
    return this.release({ ...request, dryRun: true }).then((report) => report.plan);
  }

  /** Gives assigned devices to another owner; nothing on the host changes (see planHandOver). */
  async handOver(request: HandOverRequest & OperationMode): Promise<OperationReport> {
    const [plan, execution] = await this.perform(
      'hand-over',
      () => ({ addresses: request.addresses, drivers: [], hostUse: false }),
      (view) => planHandOver(view, request),
      request,
    );
    return this.withPreview(operationReport(plan, execution));
  }

  /**
   * Marks devices a running VM already holds as the domain's (libvirt's UpdateActivePCIDevices):
   * nothing on the host changes (see planAdopt). `holder` ties them to the VM's process.
   */
  async adopt(request: AdoptRequest & OperationMode & { readonly holder?: Holder }): Promise<OperationReport> {
    const [plan, execution] = await this.perform(
      'adopt',
      () => ({ addresses: request.addresses, drivers: [], hostUse: false }),
      (view) => planAdopt(view, request),
      request,
      async () => holderChange(request.owner, request.holder),
    );
    return this.withPreview(operationReport(plan, execution));
  }

  /**
   * Both tables; inactive entries whose device vanished are pruned first (nobody else would), and
   * each domain's holder, every one probed (a domain whose holder is gone is released first; with
   * `holders: 'none'` none is probed or listed). Entries
   * of other kinds (mdev, USB) are added as `devices` (with `prunedDevices` and `departedDevices`)
   * only when there are any, so a PCI-only host's report is what it always was.
   */
  async status(options: { readonly holders?: 'all' | 'none' } = {}): Promise<StatusReport> {
    // `none`: for an operation that wants the tables only (qemu-args, unplug): no holder probed, none listed.
    const holders = options.holders === 'none' ? [] : await this.checkHolders();
    const report = { ...(await readStatus(this.store, this.reader, this.recovery)), holders };
    const others = await deviceStatus(this.devicePorts);
    if (others.devices.length === 0 && others.prunedDevices.length === 0 && others.departedDevices.length === 0) return report;
    return { ...report, ...others };
  }

  /** Each domain's holder (those of `scope`) and whether it lives now. */
  holders(scope: HolderScope = 'all'): Promise<HolderStatus[]> {
    return holderStatuses(
      this.store.readHolders().filter((held) => inScope(held, scope)),
      this.probeQmp,
      this.probeProcess,
    );
  }

  /**
   * Every holder probed, the domains of those gone released (added to `holdersEnded`; left for the
   * next command when open found the lock taken): the holders that remain, with whether they live.
   */
  async checkHolders(): Promise<HolderStatus[]> {
    const holders = await this.holders('all');
    if (this.recovery.deferred !== undefined || holders.every((held) => held.alive !== false)) return holders;
    const ends = await this.releaseEndedHolders(holders);
    this.holdersEnded = [...this.holdersEnded, ...ends];
    const settled = new Set(ends.filter((end) => end.error === null && !this.store.snapshot).map((end) => end.holder));
    return holders.filter((held) => !settled.has(held));
  }

  /**
   * An operation refused because `owner` holds a device (HOSTDEV_IN_USE): that domain's holder alone is
   * probed, QMP included (open probes only process holders), and when it is gone its domain is released
   * as the daemon's watch would. Whether something was released, so the operation can be tried again.
   */
  async releaseIfHolderEnded(owner: Owner): Promise<boolean> {
    if (this.store.snapshot) return false;
    const held = this.store.readHolders().filter((holder) => sameOwner(holder.owner, owner));
    if (held.length === 0) return false;
    const ends = await this.releaseEndedHolders(await holderStatuses(held, this.probeQmp, this.probeProcess));
    this.holdersEnded = [...this.holdersEnded, ...ends];
    return ends.some((end) => end.error === null && (end.released.length > 0 || end.releasedDevices.length > 0));
  }

  /**
   * The one rule for holders that are gone (a process that exited or whose pid is another
   * process's now, a QMP socket that no longer answers): their domains are released, devices of
   * every kind, as a release of the whole domain would (managed devices back to their host
   * drivers). Each release checks under the state lock that the holder found gone is still the
   * domain's (an adopt or assign may have registered another since the probe): if not, nothing
   * is released. Run at open and by status, domains and the daemon's watch. A dry run only says
   * what it would release.
   */
  async releaseEndedHolders(holders?: readonly HolderStatus[]): Promise<HolderEnd[]> {
    const ended = (holders ?? (await this.holders('all'))).filter((held) => held.alive === false);
    const dryRun = this.store.snapshot;
    const ends: HolderEnd[] = [];
    for (const holder of ended) {
      const owner = holder.owner;
      let released: readonly PciAddress[] = [];
      let releasedDevices: readonly DeviceKey[] = [];
      try {
        const holdsPci = this.store.readTables().active.some((entry) => sameOwner(entry.usedBy, owner)) || this.heardOfSince(owner);
        if (holdsPci) {
          const request = { domain: owner.vm, hypervisor: owner.hypervisor, dryRun, whileHeldBy: holder };
          released = (await this.release(request)).released;
        }
        if (holdsDevices(this.store, owner)) {
          const guard = (): void => this.checkStillHeld(holder);
          releasedDevices = (await releaseDevices(this.devicePorts, owner, undefined, dryRun, guard)).released;
        }
        if (!holdsPci && !holdsDevices(this.store, owner) && !dryRun) await this.dropHolder(holder);
        ends.push({ holder, released, releasedDevices, error: null });
      } catch (error) {
        if (error instanceof HolderReplaced) {
          if (released.length > 0) ends.push({ holder, released, releasedDevices, error: null });
          continue;
        }
        ends.push({ holder, released, releasedDevices, error: error instanceof Error ? error.message : String(error) });
      }
    }
    return ends;
  }

  /** Under the state lock: the holder found gone is still the domain's, else HolderReplaced. */
  private checkStillHeld(gone: DomainHolder): void {
    const now = this.store.readHolders().find((held) => sameOwner(held.owner, gone.owner));
    if (now === undefined || !sameHolderRecord(now, gone)) throw new HolderReplaced(gone);
  }

  /** A holder whose domain holds nothing (any more) is dropped, so that it is not probed again and again. */
  private async dropHolder(gone: DomainHolder): Promise<void> {
    await this.store
      .exclusive('release', async (op) => {
        this.checkStillHeld(gone);
        op.commit([{ kind: 'drop-holder', owner: gone.owner }]);
      })
      .catch((error: unknown) => {
        if (!(error instanceof HolderReplaced)) throw error;
      });
  }

  /** What open said of ended holders, one line each. */
  get holderWarnings(): string[] {
    return this.holdersEnded.map((end) => holderEndLine(end, this.store.snapshot));
  }

  // ---- devices of other kinds: mdev, USB (libvirt's virHostdevPrepareMediatedDevices, ...USBDevices) ----

  private get devicePorts(): DevicePorts {
    return { store: this.store, kernel: this.kernel, layout: this.layout, reader: this.reader };
  }

  /** `holder`: the domain's, registered in the same commit. */
  assignDevices(owner: Owner, keys: readonly DeviceKey[], dryRun: boolean, shareable?: ReadonlySet<DeviceKey>, holder?: Holder): Promise<DeviceAssignReport> {
    return assignDevices(this.devicePorts, owner, keys, dryRun, shareable, holder);
  }

  releaseDevices(owner: Owner, keys: readonly DeviceKey[] | undefined, dryRun: boolean): Promise<DeviceReleaseReport> {
    return releaseDevices(this.devicePorts, owner, keys, dryRun);
  }

  /** NVMe namespaces to a domain: the controller goes to vfio-pci with the domain's first (core/nvme.ts). */
  assignNvme(owner: Owner, keys: readonly DeviceKey[], dryRun: boolean, holder?: Holder): Promise<DeviceAssignReport & NvmeControllers> {
    return assignNvme(this.nvmePorts, owner, keys, dryRun, holder);
  }

  /** The domain's namespaces back (all, or those named); a controller goes back to nvme with its last. */
  releaseNvme(owner: Owner, keys: readonly DeviceKey[] | undefined, dryRun: boolean): Promise<DeviceReleaseReport & NvmeControllers> {
    return releaseNvme(this.nvmePorts, owner, keys, dryRun);
  }

  private get nvmePorts(): NvmePorts {
    const request = (owner: Owner, addresses: readonly PciAddress[], dryRun: boolean) => ({ domain: owner.vm, hypervisor: owner.hypervisor, addresses, dryRun });
    return {
      ...this.devicePorts,
      assignControllers: (owner, controllers, dryRun, also) => this.assign({ ...request(owner, controllers, dryRun), managed: true }, also),
      releaseControllers: (owner, controllers, dryRun, also) => this.release(request(owner, controllers, dryRun), also),
    };
  }

  createMdev(request: Parameters<typeof createMdev>[1]): Promise<MdevReport> {
    return createMdev(this.devicePorts, request);
  }

  removeMdev(request: Parameters<typeof removeMdev>[1]): Promise<MdevReport> {
    return removeMdev(this.devicePorts, request);
  }

  defineMdev(request: Parameters<typeof defineMdev>[1]): Promise<MdevDefineReport> {
    return defineMdev(this.devicePorts, request);
  }

  /** Every defined "auto" mdev that is not there (of one parent, with `parent`); with `uuid`, that definition alone. */
  startDefinedMdevs(dryRun: boolean, only: Parameters<typeof startDefined>[2] = {}): Promise<StartDefinedReport> {
    return startDefined(this.devicePorts, dryRun, only);
  }

  mdevDefinitions(): Promise<MdevDefinition[]> {
    return mdevDefinitions(this.devicePorts);
  }

  /**
   * Whether a domain has anything a release would hear of: an active entry, an entry pruned at open
   * or a departed VF it held. A domain with none is a typo or the wrong hypervisor.
   */
  holdsAnything(owner: Owner, tables: Tables): boolean {
    return tables.active.some((entry) => sameOwner(entry.usedBy, owner)) || this.heardOfSince(owner);
  }

  /** An entry of the domain pruned at open, or a departed VF it held: what its release reports. */
  private heardOfSince(owner: Owner): boolean {
    return (
      this.prunedAtOpen(owner, undefined).length > 0 ||
      this.store.readDeparted().some((record) => record.owner !== null && sameOwner(record.owner, owner))
    );
  }

  /**
   * Recovery on open already drops vanished entries (a release in a new process finds them gone):
   * the release of their domain still reports them as pruned.
   */
  private prunedAtOpen(owner: Owner, addresses: readonly PciAddress[] | undefined): PciAddress[] {
    const wanted = addresses ? new Set<string>(addresses) : null;
    return this.recovery.pruned
      .filter((entry) => entry.usedBy !== null && sameOwner(entry.usedBy, owner))
      .filter((entry) => wanted === null || wanted.has(entry.address))
      .map((entry) => entry.address);
  }

  /** The serials (DSN, VPD) of devices, read in the bounded reader. */
  serials(addresses: readonly PciAddress[]): Promise<Map<PciAddress, DeviceSerials>> {
    return this.reader.serials(addresses);
  }

  /** The tables as stored (no lock, no pruning): for `list`/`show` owner columns. */
  tables(): Tables {
    return this.store.readTables();
  }

  /** A dry run's report carries what recovery at open would have done first, when anything. */
  withPreview<T extends { readonly dryRun: boolean; readonly recovery?: RecoveryReport }>(report: T): T {
    return report.dryRun && recoveryWouldAct(this.recovery) ? { ...report, recovery: this.recovery } : report;
  }

  /**
   * The reconcile at the end of a release or reattach (libvirt's virHostdevDeleteMissingPCIDevices
   * after the re-attach): every device the plan worked on or found gone that is not on the host
   * now leaves both tables in the operation's own commit. A releasing domain's devices are not
   * awaited back: it let go of them. Only those devices are looked at, so that an operation costs
   * the same whatever the size of the tables; the others are met by the next open or status.
   */
  private async settleVanished(op: Operation, plan: Plan, prunedBy: 'release' | 'reattach', releasing?: Owner): ReturnType<Settle> {
    const touched = [
      ...new Set([
        ...plan.pruned,
        ...plan.groups.map((group) => group.address),
        ...plan.changes.map((change) => (change.kind === 'remove' ? change.address : change.entry.address)),
      ]),
    ];
    const present = await Promise.all(touched.map((address) => this.reader.exists(address)));
    const gone = new Set(touched.filter((_, index) => !present[index]));
    const prune = pruneVanished(op, gone, prunedBy, releasing === undefined ? {} : { releasing });
    return { changes: prune.changes, pruned: prune.pruned.map((entry) => entry.address) };
  }

  /** The stub `--driver` names, checked against the stubs and this host's vfio-pci variants. */
  private requestedStub(name: string): string {
    return requestedStubDriver(name, () => this.reader.vfioAliases()?.aliases.map((alias) => alias.module) ?? []);
  }

  /**
   * Refuses (HOSTDEV_HARDWARE_CHANGED) to act on an address whose table entry was made for another
   * card than the one there now, unless forced.
   */
  private async checkHardware(operation: string, view: HostView, check: HardwareCheck | undefined): Promise<void> {
    if (check === undefined || check.force) return;
    const index = new TableIndex(view.tables);
    const recorded = check.addresses(view).flatMap((address) => {
      const place = index.find(address);
      const was = place?.entry.hardware;
      const device = view.devices.get(address);
      return place === undefined || was === undefined || was === null || device === undefined || device === null ? [] : [{ address, place, was, device }];
    });
    if (recorded.length === 0) return;
    // The IDs are the view's (read bounded); the serials too are read only in the bounded reader.
    const serials = await this.reader.serials(recorded.map(({ address }) => address));
    for (const { address, place, was, device } of recorded) {
      const now = identityOf(device, serials.get(address) ?? NO_SERIALS);
      if (hardwareChanged(was, now)) {
        throw hardwareChangedError(operation, address, device.driver, place.table === 'active' ? place.entry.usedBy : null, was, now);
      }
    }
  }

  /** The plan with each entry it writes carrying the identity of the device at its address now. */
  private async withHardware(plan: Plan, view: HostView): Promise<Plan> {
    const written = plan.changes.flatMap((change) => (change.kind === 'remove' ? [] : [change.entry.address]));
    const present = written.filter((address) => view.devices.get(address) != null);
    if (present.length === 0) return plan;
    const serials = await this.reader.serials(present);
    const changes = plan.changes.map((change): TableChange => {
      if (change.kind === 'remove') return change;
      const device = view.devices.get(change.entry.address);
      if (device === undefined || device === null) return change;
      const hardware = identityOf(device, serials.get(change.entry.address) ?? NO_SERIALS);
      return change.kind === 'set-active' ? { ...change, entry: { ...change.entry, hardware } } : { ...change, entry: { ...change.entry, hardware } };
    });
    return { ...plan, changes };
  }

  /** `note-vf` for the VFs a plan takes into a table (see departed.ts). */
  private identityNotes(plan: Plan, view: HostView): Promise<StateChange[]> {
    return vfIdentityNotes(plan.changes, view.devices, (pf) => this.reader.virtfnLinks(pf));
  }

  /**
   * Plans under the state lock, runs the plan, commits. `bookkeeping` adds state changes (VF
   * identities, departed VFs) to the plan's own commit.
   */
  private async perform(
    name: PlanOperationName,
    scope: (source: TableSource) => ViewScope,
    planner: (view: HostView) => Plan,
    mode: OperationMode & { readonly onWarning?: (line: string) => void; readonly hardware?: HardwareCheck },
    bookkeeping: (op: Operation, plan: Plan, view: HostView) => Promise<StateChange[]> = async () => [],
    settle?: (op: Operation, plan: Plan) => ReturnType<Settle>,
  ): Promise<[Plan, Execution | null]> {
    const dryRun = mode.dryRun ?? false;
    const view = async (source: TableSource): Promise<HostView> =>
      buildHostView(this.reader, this.hostUsage, source, scope(source), mode.wait ?? {});
    if (dryRun) {
      const seen = await view(tablesSource(this.store.readTables(), this.store.readVfConfigs()));
      await this.checkHardware(name, seen, mode.hardware);
      return [planner(seen), null];
    }
    if (this.store.snapshot) {
      throw new HostdevError('HOSTDEV_INTERNAL', `"${name}" without dryRun on a manager opened for dry runs`, {
        hint: 'This is a bug in hostdev: open the manager without dryRun to change the host.',
      });
    }
    return this.store.exclusive(name, async (op) => {
      // Every entry consistent at this fingerprint, and nothing happened since: what this plan's
      // writes do to the host is all that changes, so the fingerprint after them is recorded with
      // its commit (see ReconcileScope).
      const fingerprint = await this.reader.hostFingerprint();
      const unchanged = fingerprint !== null && fingerprint === op.reconciledAt();
      // The locked operation is itself a keyed TableSource: reads do not grow with the tables.
      const seen = await view(op);
      await this.checkHardware(name, seen, mode.hardware);
      const planned = await this.withHardware(planner(seen), seen);
      const ports = {
        kernel: this.kernel,
        reader: this.reader,
        net: new VfNetConfigurator(this.net),
        ...(mode.onWarning === undefined ? {} : { warn: mode.onWarning }),
      };
      const execution = await executePlan(planned, op, ports, {
        extra: await bookkeeping(op, planned, seen),
        settle: async ({ failures }) => {
          const settled = settle === undefined ? { changes: [], pruned: [] } : await settle(op, planned);
          if (unchanged && failures.length === 0) op.markReconciled(await this.reader.hostFingerprint());
          return settled;
        },
      });
      return [planned, execution];
    }, mode.operationId);
  }
}
