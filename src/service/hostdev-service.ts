import type { PciAddress } from '../core/address.js';
import { controllerOfHeldNamespaces, nvmeController, nvmeQemuArgs } from '../core/nvme.js';
import { scsiQemuArgs } from '../core/scsi.js';
import { idOf, keyKind, parseId, parseKey, parsePciRef, pciKey, type DeviceKey, type DeviceRef } from '../core/device-key.js';
import type { NonPciKind } from '../core/nonpci-device.js';
import { nonPciJson, nonPciShowReport, type NonPciJson, type NonPciShowReport } from '../manager/nonpci-reports.js';
import { readNonPciInventory } from '../sysfs/nonpci-inventory.js';
import { HostdevError } from '../core/errors.js';
import { InUseError } from '../core/in-use.js';
import { hostdevDeviceId, qemuArgs, type QemuMachine } from '../core/qemu-args.js';
import { ownerOf } from '../core/names.js';
import { domainHoldsNothing, driftedDevice } from '../core/plan-errors.js';
import { formatOwner, sameOwner, type ActiveEntry, type Owner, type Tables } from '../core/tables.js';
import type { HostUsagePort } from '../host/host-usage-port.js';
import { ProcHostUsage } from '../host/proc-host-usage.js';
import type { Inventory } from '../core/device.js';
import { ChildSnapshotReader } from '../events/snapshot-reader.js';
import { describeSources, sourcesFor, type WatchSourceChoice } from '../events/sources.js';
import { Watcher } from '../events/watcher.js';
import { LiveWatch, type LiveEvent } from '../manager/watch-live.js';
import { vfConfigCapturer, vfReclaimer, vfReclaimPreview } from '../manager/watch-reclaim.js';
import { classFilter } from '../core/device-filter.js';
import { readVfioAliases } from '../host/modules-alias.js';
import { forgetDeparted } from '../manager/departed.js';
import { deviceJson, groupsReport, showReport, type DeviceWithOwnership, type GroupReport, type ShowReport } from '../manager/inventory-reports.js';
import { tableLookupOf } from '../manager/table-lookup.js';
import { readDevicesBounded, readInventoryBounded, readTimeoutFromEnv } from '../sysfs/bounded-inventory.js';
import { cachedPciIds, pciIdsPath } from '../sysfs/pci-ids.js';
import { affectedFunctions, patchInventory } from '../core/inventory-patch.js';
import {
  HostdevManager,
  type AssignRequest as ManagerAssignRequest,
  type DetachOptions,
  type OperationMode,
  type ReleaseRequest as ManagerReleaseRequest,
} from '../manager/hostdev-manager.js';
import type { ReconcileScope, RecoveryReport } from '../manager/recovery.js';
import type { DetachedAfterReboot } from '../core/boot.js';
import { NO_SERIALS } from '../core/hardware-identity.js';
import { readSerials } from '../sysfs/serials.js';
import type { OperationReport, ReleaseReport } from '../manager/reports.js';
import type { StatusReport } from '../manager/status.js';
import { listVfs, setVfCount, type SetCountReport, type SetCountRequest as ManagerSetCountRequest, type VfListReport } from '../manager/vf-lifecycle.js';
import type { NetPort } from '../net/net-port.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import { isEmptyRequest } from '../net/vf-net-config.js';
import { netSetCommand, planSteps } from '../core/plan-types.js';
import { FsKernelPort, type KernelPort } from '../sysfs/kernel-port.js';
import type { DepartedVfRecord } from '../state/store.js';
import { placeDevices, type Placement } from '../core/hotplug.js';
import { QmpClient, type QmpPort } from '../qmp/qmp-client.js';
import { readVmSlots } from '../qmp/vm-slots.js';
import { plugIntoVm, unplugFromVm } from './hotplug.js';
import { describeHolder, type Holder, type HolderStatus } from '../core/holders.js';
import { holderEndLine, type HolderEnd, type ProcessProbe, type QmpHolderProbe } from '../manager/holders.js';
import { processStartTime } from '../platform/process-alive.js';
import { Claims } from './claims.js';
import path from 'node:path';
import { assignableKind, holdersOf, isHeldBy, parseUsbSelector, selectUsb, type DeviceEntry } from '../core/device-entry.js';
import { holdsDevices, type DeviceAssignReport, type DeviceReleaseReport } from '../manager/device-ops.js';
import type { MdevDefineReport, MdevReport, StartDefinedReport } from '../manager/mdev-ops.js';
import type { MdevAttribute, MdevDefinition, MdevStart } from '../state/mdev-definitions.js';
import type { MdevParent } from '../core/nonpci-device.js';

export const DEFAULT_STATE_DIR = '/var/lib/hostdev';
/** Where claims are defined, under the root: /etc/hostdev (claims in /etc/hostdev/claims.d). */
export const DEFAULT_CONFIG_DIR = 'etc/hostdev';

/** How long a failed hot-plug waits for the VM to give back what it plugged before it. */
const ROLLBACK_UNPLUG_MS = 10_000;

export interface HostdevServiceOptions {
  /** The directory that stands for "/" (default "/": this host). */
  readonly root?: string;
  /** Where the tables live (default /var/lib/hostdev). */
  readonly stateDir?: string;
  /** Default: writes files under the root. The simulated kernel comes from the `hostdev/sim` export. */
  readonly kernel?: KernelPort;
  /** Default: the host's own use of devices (addresses, routes, mounts, console) under the root. */
  readonly hostUsage?: HostUsagePort;
  /** Default: iproute2 on the real host, its emulation on a simulated tree. */
  readonly net?: NetPort;
  readonly lockTimeoutMs?: number;
  /** Opens for dry runs only: nothing on disk or in sysfs is changed, recovery included. */
  readonly dryRun?: boolean;
  /** For callers that only look: recovery at open never waits for another operation's lock. */
  readonly reader?: boolean;
  /** What recovery at open looks at (OpenOptions.reconcile): default 'full', every table entry. */
  readonly reconcile?: ReconcileScope;
  /** How a running VM's QMP socket is reached (default: hostdev's QMP client, bounded waits). */
  readonly connectQmp?: (socketPath: string) => Promise<QmpPort>;
  /**
   * For long-lived callers (the daemon): list, show and groups answer from the last inventory read.
   * An operation of this service, or a bind/unbind/driver change its `watch()` sees, reads again only
   * the functions it touched (with their PF and IOMMU group); a function added or removed, a VF
   * count change, a failed operation or `invalidateInventory()` make the next call read it all.
   * Default false: every call reads sysfs.
   */
  readonly cacheInventory?: boolean;
  /** Who opens (a command name): recorded with what recovery at open did, which `status` lists. */
  readonly command?: string;
  /** After a reboot: inactive entries of the earlier boot are put back on their stub (`reapply`, default) or given back to the host (`reattach`). */
  readonly detachedAfterReboot?: DetachedAfterReboot;
  /**
   * Tells whether a QMP holder's QEMU lives (default: connect, ask `query-status`, bounded at 1 s).
   * The daemon answers from the connection it keeps to each VM.
   */
  readonly probeQmp?: QmpHolderProbe;
  /** Where process holders are looked up (default: the real /proc and kill(pid, 0)); tests inject a /proc root. */
  readonly probeProcess?: ProcessProbe;
  /** Where claims are defined (CONFIG/claims.d; default ROOT/etc/hostdev). */
  readonly configDir?: string;
}

/** VF network config of an assign, by VF (its address or pci: key): saved first, set, and put back at release. */
export type VfNetRequests = Readonly<Record<string, VfNetRequest>>;

/*
 * One request type per operation: each operation of the service takes one of these, the command
 * line builds them from its options and the daemon from its request bodies (src/daemon/requests.ts).
 */

/** `detach`: a device from its host driver to its stub, into the inactive table. */
export interface DetachRequest extends DetachOptions {
  readonly device: DeviceRef;
}

/** `reattach`: a detached device back to its original driver. */
export interface ReattachRequest extends OperationMode {
  readonly device: DeviceRef;
  /** Reattach even a device whose card is not the one its entry was made for (HOSTDEV_HARDWARE_CHANGED). */
  readonly force?: boolean;
}

/** `reset`: a device through the kernel's reset file. */
export interface ResetRequest extends OperationMode {
  readonly device: DeviceRef;
}

export interface AssignRequest extends Omit<ManagerAssignRequest, 'vf' | 'onWarning' | 'addresses' | 'holder' | 'unmanaged'> {
  /** PCI functions, and mediated and USB devices (mdev:UUID, usb:BUS-PORT, usb:VENDOR:PRODUCT): all or nothing. */
  readonly addresses: readonly DeviceRef[];
  /** PCI functions of `addresses` assigned unmanaged (already on a stub) whatever `managed` says. */
  readonly unmanaged?: readonly DeviceRef[];
  readonly vf?: VfNetRequests;
  /** The domain's devices are released when this process ends (checked by pid and start time). */
  readonly holderPid?: number;
  /** The domain's devices are released when QEMU stops answering on this QMP socket. */
  readonly qmp?: string;
  /** SCSI devices of `addresses` taken shareable (libvirt's <shareable/>): other domains may hold them shareable too. */
  readonly shareable?: readonly DeviceRef[];
}

/** `adopt`: devices a running VM holds already, marked as its domain's (nothing written to sysfs). */
export interface AdoptRequest extends DomainRef {
  readonly addresses: readonly DeviceRef[];
  /** For a device in no table: whether its release gives it back to the host (default true). */
  readonly managed?: boolean;
  readonly holderPid?: number;
  readonly qmp?: string;
  readonly dryRun?: boolean;
  readonly operationId?: string;
}

/** A domain with its devices and its holder (`hostdev domains`). */
export interface DomainReport {
  readonly hypervisor: string;
  readonly domain: string;
  /** Its PCI functions. */
  readonly devices: readonly { readonly key: DeviceKey; readonly address: PciAddress }[];
  /** Its mediated, USB, NVMe and SCSI devices (a shared SCSI device with each domain that holds it); present only when it holds any. */
  readonly otherKeys?: readonly DeviceKey[];
  readonly holder: HolderStatus | null;
}

export interface AssignResult extends OperationReport {
  /** The `ip link set` commands run (or, on a dry run, that would run), in order. */
  readonly vfConfig: readonly string[];
  readonly warnings: readonly string[];
  /** The mediated and USB devices of the request (present only when it named any). */
  readonly devices?: DeviceAssignReport;
}

/** Who holds devices: a domain under a hypervisor (default qemu). */
export interface DomainRef {
  readonly domain: string;
  readonly hypervisor?: string;
}

export interface HandOverRequest {
  readonly from: DomainRef;
  readonly to: DomainRef;
  readonly addresses: readonly DeviceRef[];
  readonly dryRun?: boolean;
}

export interface ReleaseRequest extends Omit<ManagerReleaseRequest, 'onWarning' | 'addresses'> {
  /** Default: every device of the domain. */
  readonly addresses?: readonly DeviceRef[];
}

/** `vf.list`: the VFs of one PF. */
export interface VfListRequest {
  readonly pf: DeviceRef;
}

/** `vf.forget`: departed VF records to drop (null: every one). */
export interface VfForgetRequest {
  readonly vfs: readonly DeviceRef[] | null;
  readonly dryRun?: boolean;
}

/** `vf.setCount`: a PF's VF count (force, autoprobe, dryRun and waitMs have defaults). */
export type VfSetCountRequest = Omit<ManagerSetCountRequest, 'pf' | 'dryRun' | 'force' | 'autoprobe' | 'waitMs'> &
  Partial<Omit<ManagerSetCountRequest, 'pf'>> & { readonly pf: DeviceRef };

export interface ReleaseResult extends ReleaseReport {
  /** The domain's mediated and USB devices, released with it (a release without addresses). */
  readonly devices?: DeviceReleaseReport;
  readonly warnings: readonly string[];
}

export interface QemuArgsRequest {
  readonly domain: string;
  readonly hypervisor?: string;
  readonly machine?: QemuMachine;
  readonly firstChassis?: number;
}

export interface QemuArgsReport {
  readonly argv: readonly string[];
  /** The domain's active devices that are on the host, in the order of `argv`. */
  readonly devices: readonly PciAddress[];
  /** `devices` as device keys, in the same order. */
  readonly keys: readonly DeviceKey[];
  /** Its active devices that are no longer on the host: left out. */
  readonly missing: readonly PciAddress[];
  /** `missing` as device keys. */
  readonly missingKeys: readonly DeviceKey[];
  readonly warnings: readonly string[];
  /** Mediated and USB devices of the domain given to QEMU (after the PCI functions), and those left out as gone. */
  readonly otherKeys?: readonly DeviceKey[];
  readonly otherMissing?: readonly DeviceKey[];
}

/** Assign or release of mediated and USB devices (keys mdev:UUID, usb:BUS-PORT, or usb:VENDOR:PRODUCT to select one). */
export interface DeviceRequest {
  readonly domain: string;
  readonly hypervisor?: string;
  /** Release: default every device of these kinds the domain holds. */
  readonly devices?: readonly string[];
  /** Assign: the devices (SCSI devices only) are taken shareable, as libvirt's <shareable/>: other domains may hold them shareable too. */
  readonly shareable?: boolean;
  readonly dryRun?: boolean;
}

export interface ListFilter {
  /** A class name (net, storage, display, bridge, ...) or a hex code (02, 0200). */
  readonly class?: string;
  readonly driver?: string;
}

/** An inventory report with what the read had to say (unreadable or malformed files) and whether the host has IOMMU groups. */
export interface InventoryResult<T> {
  readonly report: T;
  readonly warnings: readonly string[];
  readonly iommuEnabled: boolean;
}

/** What a watch has to say besides its events. */
export interface WatchNotice {
  readonly level: 'warning' | 'note' | 'info';
  readonly message: string;
}

export interface WatchRequest {
  /** Default auto: the simulator's log on a simulated tree, else udev (with a slow safety poll), else polling. */
  readonly source?: WatchSourceChoice;
  /** The poll interval (default 1000 ms). */
  readonly intervalMs?: number;
  /** The bound on one sysfs snapshot, read in a child process (default 5000 ms). */
  readonly readTimeoutMs?: number;
  /** Ready a returned VF for the domain it was taken from (never for anyone else). */
  readonly reclaim?: boolean;
  readonly signal?: AbortSignal;
  readonly onNotice?: (notice: WatchNotice) => void;
  /** Called once the first snapshot is taken: a change from then on is an event. */
  readonly onStarted?: () => void;
}

export interface HotplugRequest extends AssignRequest {
  /** The running VM's QMP socket. */
  readonly qmp: string;
}

export interface HotplugReport {
  readonly domain: string;
  readonly hypervisor: string;
  readonly dryRun: boolean;
  /** The assign of the devices to plug (null when every device was in the VM already). */
  readonly assign: AssignResult | null;
  /** Each device added to the VM (on a dry run: would be), its QEMU id and root port. */
  readonly plugged: readonly Placement[];
  /** Devices the VM has already (by their hostdev id): neither assigned nor plugged again. */
  readonly present: readonly PciAddress[];
}

export interface UnplugRequest {
  readonly qmp: string;
  readonly domain: string;
  readonly hypervisor?: string;
  readonly addresses: readonly DeviceRef[];
  /** How long the guest has to give the devices back (default 10000 ms). */
  readonly timeoutMs?: number;
  readonly dryRun?: boolean;
  readonly wait?: ReleaseRequest['wait'];
  /** The id the release of the devices is journalled under (the daemon's operation). */
  readonly operationId?: string;
}

export interface UnplugReport {
  /** Devices the VM gave back (DEVICE_DELETED), or on a dry run would be asked for. */
  readonly unplugged: readonly PciAddress[];
  /** Devices the VM did not have: released without asking it. */
  readonly absent: readonly PciAddress[];
  readonly release: ReleaseResult;
}

export interface ForgetReport {
  readonly forgotten: readonly DepartedVfRecord[];
  readonly warnings: readonly string[];
}

/**
 * hostdev as a library: every operation of the command line, each returning a typed report.
 * It owns the manager (tables, journal, recovery), the kernel and net ports and the host-usage
 * guard; front ends only parse what they are given and render what they get back.
 */
export class HostdevService {
  readonly vf: {
    readonly list: (request: VfListRequest) => Promise<VfListReport>;
    readonly setCount: (request: VfSetCountRequest) => Promise<SetCountReport>;
    readonly forget: (request: VfForgetRequest) => Promise<ForgetReport>;
  };
  /** Claims from boot: defined in CONFIG/claims.d, applied by the boot units (`claims.apply`). */
  readonly claims: Claims;

  /** The inventory read last and the generation it belongs to (cacheInventory only). */
  private cached: { readonly generation: number; readonly read: Promise<{ inventory: Inventory; warnings: string[] }> } | null = null;
  private generation = 0;
  /** How often sysfs was read: whole inventories and single functions (cacheInventory shows in these). */
  private readonly reads = { whole: 0, functions: 0 };
  /** The last whole list built from a cached read, with the tables it was built with. */
  private listed: { readonly read: object; readonly tables: string; readonly result: InventoryResult<DeviceWithOwnership[]> } | null = null;

  private constructor(
    private readonly manager: HostdevManager,
    private readonly connectQmp: (socketPath: string) => Promise<QmpPort>,
    private readonly cacheInventory: boolean,
    configDir: string,
  ) {
    this.claims = new Claims({
      layout: manager.layout,
      configDir,
      tables: () => manager.tables(),
      detach: (address, options) => this.detach({ ...options, device: address }),
      reattach: (address, options) => this.reattach({ ...options, device: address }),
      serials: (addresses) => manager.serials(addresses),
    });
    this.vf = {
      list: async ({ pf }) => listVfs(manager.layout, manager.tables(), manager.net, parsePciRef(pf)),
      setCount: async (request) =>
        manager.withPreview(
          await this.changing(request.dryRun ?? false, () =>
            setVfCount(
              { layout: manager.layout, store: manager.store, kernel: manager.kernel },
              { force: false, dryRun: false, autoprobe: null, waitMs: 30_000, ...request, pf: parsePciRef(request.pf) },
            ),
            // VFs come and go: the whole inventory is read again.
            () => null,
          ),
        ),
      forget: async ({ vfs, dryRun = false }) => {
        const addresses = vfs === null ? null : vfs.map(parsePciRef);
        const forgotten = await forgetDeparted(manager.store, addresses, dryRun);
        const unknown = (addresses ?? []).filter((address) => !forgotten.some((record) => record.address === address));
        return { forgotten, warnings: unknown.map((address) => `${address} is not a departed VF (nothing to forget)`) };
      },
    };
  }

  /** Opens the state (recovering what a killed hostdev left, unless `dryRun`) and the ports. */
  static async open(options: HostdevServiceOptions = {}): Promise<HostdevService> {
    const root = options.root ?? '/';
    const manager = await HostdevManager.open({
      root,
      stateDir: options.stateDir ?? DEFAULT_STATE_DIR,
      kernel: options.kernel ?? new FsKernelPort(root),
      hostUsage: options.hostUsage ?? new ProcHostUsage(root),
      ...(options.net === undefined ? {} : { net: options.net }),
      ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
      dryRun: options.dryRun ?? false,
      waitForLock: !(options.reader ?? false),
      ...(options.reconcile === undefined ? {} : { reconcile: options.reconcile }),
      ...(options.command === undefined ? {} : { command: options.command }),
      ...(options.detachedAfterReboot === undefined ? {} : { detachedAfterReboot: options.detachedAfterReboot }),
      ...(options.probeQmp === undefined ? {} : { probeQmp: options.probeQmp }),
      ...(options.probeProcess === undefined ? {} : { probeProcess: options.probeProcess }),
      // A reader (list, show, status) probes no holder at open; status and domains probe them all.
      holders: options.reader === true ? 'none' : 'pids',
    });
    return new HostdevService(
      manager,
      options.connectQmp ?? ((socketPath) => QmpClient.connect(socketPath)),
      options.cacheInventory ?? false,
      options.configDir ?? path.join(root, DEFAULT_CONFIG_DIR),
    );
  }

  /** The next list, show or groups reads sysfs again (cacheInventory). */
  invalidateInventory(): void {
    this.generation += 1;
    this.cached = null;
  }

  /** Sysfs reads of list, show and groups so far: whole inventories, and functions read one by one after a change. */
  get inventoryReads(): { readonly whole: number; readonly functions: number } {
    return { ...this.reads };
  }

  /**
   * Runs a change; then the functions it touched are read again (`touched` of its report; null:
   * the whole inventory is read at the next call, as after a failure).
   */
  private async changing<T>(dryRun: boolean, run: () => Promise<T>, touched: (result: T) => readonly PciAddress[] | null): Promise<T> {
    if (dryRun) return run();
    let result: T;
    try {
      result = await run();
    } catch (error) {
      this.invalidateInventory();
      throw error;
    }
    const devices = touched(result);
    if (devices === null) this.invalidateInventory();
    else this.refreshFunctions(devices);
    return result;
  }

  /** The cached inventory with `addresses` (and their PFs and groups) read again; nothing cached, nothing to do. */
  private refreshFunctions(addresses: readonly PciAddress[]): void {
    const previous = this.cached;
    if (!this.cacheInventory || previous === null || addresses.length === 0) return;
    this.generation += 1;
    const read = previous.read.then(async ({ inventory }) => {
      const affected = affectedFunctions(inventory, addresses);
      this.reads.functions += affected.length;
      const fresh = await readDevicesBounded(this.manager.layout, affected, { names: cachedPciIds(pciIdsPath()), timeoutMs: readTimeoutFromEnv() });
      const patched = patchInventory(inventory, fresh);
      return { inventory: patched, warnings: warningLines(patched) };
    });
    this.keep(read);
  }

  /** Both tables as stored (no lock, no prune, no holder probed). */
  tables(): Tables {
    return this.manager.tables();
  }

  /** What recovery did (or, opened for dry runs, would do) when the service opened. */
  get recovery(): RecoveryReport {
    return this.manager.recovery;
  }

  /** Warnings of the open: state database fixes, recovery's repairs and prunes, drift. */
  get warnings(): readonly string[] {
    return [...this.manager.store.openWarnings, ...this.manager.recovery.warnings, ...this.manager.holderWarnings];
  }

  /** Domains whose holder was gone when this service opened: released then (opened for dry runs: would be). */
  get holdersEnded(): readonly HolderEnd[] {
    return this.manager.holdersEnded;
  }

  /**
   * Releases the domains whose holder is gone (what every open does; the daemon calls it as it
   * watches the holders). Each end comes with its warning line.
   */
  async releaseEndedHolders(): Promise<(HolderEnd & { readonly line: string })[]> {
    const ends = await this.changing(false, () => this.manager.releaseEndedHolders(), (done) => done.flatMap((end) => end.released));
    return ends.map((end) => ({ ...end, line: holderEndLine(end, false) }));
  }

  /** Every domain that holds a device, with its devices and its holder (and whether it lives). */
  async domains(): Promise<DomainReport[]> {
    // First: a domain whose holder is gone is released, and not listed.
    const holders = await this.manager.checkHolders();
    const { active } = this.manager.tables();
    const byOwner = new Map<string, { hypervisor: string; domain: string; devices: { key: DeviceKey; address: PciAddress }[]; otherKeys: DeviceKey[] }>();
    const domainOf = (owner: Owner): { devices: { key: DeviceKey; address: PciAddress }[]; otherKeys: DeviceKey[] } => {
      const id = `${owner.hypervisor}/${owner.vm}`;
      const domain = byOwner.get(id) ?? { hypervisor: owner.hypervisor, domain: owner.vm, devices: [], otherKeys: [] };
      byOwner.set(id, domain);
      return domain;
    };
    for (const entry of active) domainOf(entry.usedBy).devices.push({ key: entry.key, address: entry.address });
    for (const entry of this.manager.store.readDevices()) {
      for (const owner of holdersOf(entry)) domainOf(owner).otherKeys.push(entry.key);
    }
    return [...byOwner.values()].map(({ otherKeys, ...domain }) => ({
      ...domain,
      ...(otherKeys.length === 0 ? {} : { otherKeys }),
      holder: holders.find((held) => held.owner.hypervisor === domain.hypervisor && held.owner.vm === domain.domain) ?? null,
    }));
  }

  /** The holder an assign names: a running process (its start time read now) or a QMP socket that answers. */
  private async holderOf(request: { readonly holderPid?: number; readonly qmp?: string }): Promise<Holder | undefined> {
    if (request.holderPid !== undefined && request.qmp !== undefined) {
      throw new HostdevError('HOSTDEV_USAGE', 'a domain has one holder: give --holder-pid or --qmp, not both', {
        hint: 'Name the QEMU process (--holder-pid) or its QMP socket (--qmp).',
      });
    }
    if (request.holderPid !== undefined) {
      const pid = request.holderPid;
      const startTime = Number.isInteger(pid) && pid > 0 ? await processStartTime(pid) : null;
      if (startTime === null) {
        throw new HostdevError('HOSTDEV_USAGE', `no process ${pid} runs on this host: it cannot hold the domain's devices`, {
          hint: 'Give the pid of the running QEMU (or VM manager process) that holds the devices.',
          details: { pid },
        });
      }
      return { kind: 'pid', pid, startTime };
    }
    if (request.qmp !== undefined) {
      const holder: Holder = { kind: 'qmp', socket: request.qmp };
      const life = await this.manager.probeQmp(request.qmp);
      if (life.alive !== true) {
        throw new HostdevError('HOSTDEV_QMP', `${describeHolder(holder)} cannot hold the domain's devices: ${life.reason}`, {
          hint: 'Give a QMP socket of the running VM (-qmp unix:PATH,server=on,wait=off) that no other client holds.',
          details: { socket: request.qmp },
        });
      }
      return holder;
    }
    return undefined;
  }

  close(): void {
    this.manager.close();
  }

  async detach(request: DetachRequest): Promise<OperationReport> {
    const { device, ...options } = request;
    return this.changing(options.dryRun ?? false, () => this.manager.detach(parsePciRef(device), options), touchedBy);
  }

  async reattach(request: ReattachRequest): Promise<OperationReport> {
    const { device, ...mode } = request;
    return this.changing(mode.dryRun ?? false, () => this.manager.reattach(parsePciRef(device), mode), touchedBy);
  }

  async reset(request: ResetRequest): Promise<OperationReport> {
    const { device, ...mode } = request;
    return this.changing(mode.dryRun ?? false, () => this.manager.reset(parsePciRef(device), mode), touchedBy);
  }

  /**
   * All or nothing; VF network config (`vf`) is saved and set (plan steps) before the first sysfs
   * write. Mediated, USB, NVMe and SCSI devices among `addresses` are marked the domain's after its
   * PCI functions are assigned; when that fails, the PCI functions are released again (libvirt
   * reattaches the PCI devices when a later kind fails to prepare), so the whole request is all or
   * nothing. `holderPid` or `qmp` is registered with whichever commit comes first.
   */
  async assign(request: AssignRequest): Promise<AssignResult> {
    return this.assignHeld(request, await this.holderOf(request));
  }

  /**
   * The one path every assign takes (assign, assignDevices, hotplug): refused because another
   * domain holds a device, it is tried once more if that domain's holder is gone (see unlessHolderEnded).
   */
  private assignHeld(request: AssignRequest, holder: Holder | undefined): Promise<AssignResult> {
    return this.unlessHolderEnded(() => this.assignAll(request, holder));
  }

  private async assignAll(request: AssignRequest, holder: Holder | undefined): Promise<AssignResult> {
    const { pci, others } = splitRefs(request.addresses);
    if (others.length === 0) return this.assignPci(request, holder);
    const keys = await this.resolveDevices(others);
    const dryRun = request.dryRun ?? false;
    const withPci = pci.length > 0 || (request.unmanaged ?? []).length > 0;
    const assigned = withPci ? await this.assignPci({ ...request, addresses: pci }, holder) : emptyAssign(dryRun);
    if (assigned.failures.length > 0) return assigned;
    const shareable = await this.shareableKeys(await this.resolveDevices(request.shareable ?? []), keys);
    try {
      // The holder went into the PCI commit when there was one.
      return { ...assigned, devices: await this.assignKeys(ownerOf(request), keys, dryRun, shareable, withPci ? undefined : holder) };
    } catch (error) {
      const left = dryRun ? [] : await this.rollBackAssign(request, assigned);
      if (left.length === 0 || !(error instanceof HostdevError)) throw error;
      // The same error (code, details), telling what the rollback left behind.
      throw HostdevError.fromJSON({
        code: error.code,
        message: `${error.message}; the PCI functions assigned before it were not all released again: ${left.join('; ')}`,
        hint: `${error.hint ?? ''} Then release the domain (\`hostdev release --domain ${request.domain}\`).`.trim(),
        details: { ...error.details, rollback: left },
      });
    }
  }

  /** Releases the PCI functions an assign gave the domain; what could not be released, one line each. */
  private async rollBackAssign(request: AssignRequest, assigned: AssignResult): Promise<string[]> {
    const addresses = assigned.changes.flatMap((change) => (change.kind === 'set-active' ? [change.entry.address] : []));
    if (addresses.length === 0) return [];
    try {
      const release = await this.releasePci({ domain: request.domain, ...(request.hypervisor === undefined ? {} : { hypervisor: request.hypervisor }), addresses });
      return release.failures.map((failure) => `${failure.address}: ${failure.message}`);
    } catch (rollback) {
      return [rollback instanceof Error ? rollback.message : String(rollback)];
    }
  }

  /**
   * Runs `operation`; refused because a domain holds a device, it runs once more if that domain's
   * holder turns out to be gone (its devices then released): Proxmox takes over a stale reservation
   * the same way, and a QMP holder is probed only here and by status, domains and the daemon.
   */
  private async unlessHolderEnded<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof InUseError) || !(await this.manager.releaseIfHolderEnded(error.owner))) throw error;
      return operation();
    }
  }

  private async assignPci(request: AssignRequest, holder: Holder | undefined): Promise<AssignResult> {
    const { vf, holderPid: _pid, qmp: _qmp, unmanaged: unmanagedRefs, ...rest } = request;
    const unmanaged = (unmanagedRefs ?? []).map(parsePciRef);
    const addresses = [...new Set([...request.addresses.map(parsePciRef), ...unmanaged])];
    const requests = vfRequests(vf ?? {}, addresses);
    const warnings: string[] = [];
    const report = await this.changing(
      request.dryRun ?? false,
      () =>
        this.manager.assign({
          ...rest,
          addresses,
          ...(unmanaged.length === 0 ? {} : { unmanaged }),
          vf: requests,
          onWarning: (line) => warnings.push(line),
          ...(holder === undefined ? {} : { holder }),
        }),
      touchedBy,
    );
    const vfConfig = planSteps(report.plan).flatMap((step) => (step.kind === 'net-set' ? [netSetCommand(step.target, step.setting)] : []));
    return { ...report, vfConfig, warnings };
  }

  /**
   * Gives mediated and USB devices to a domain, all or nothing: ownership only (no driver changes),
   * refused when another domain holds one (libvirt's "... is in use by driver D, domain V").
   */
  async assignDevices(request: DeviceRequest): Promise<DeviceAssignReport> {
    const keys = await this.resolveDevices(request.devices ?? []);
    if (keys.length === 0) throw new HostdevError('HOSTDEV_USAGE', 'no device given', { hint: 'Name at least one mdev:UUID, usb:BUS-PORT, nvme:ADDRESS/NSID or scsi:HOST:BUS:TARGET:LUN key.' });
    const { domain, hypervisor, dryRun } = request;
    const shareable = request.shareable === true ? { shareable: keys } : {};
    const report = await this.assignHeld({ domain, ...(hypervisor === undefined ? {} : { hypervisor }), addresses: keys, ...(dryRun === undefined ? {} : { dryRun }), ...shareable }, undefined);
    return report.devices!;
  }

  /** Only a SCSI device is shared among domains (libvirt's <shareable/> of a SCSI hostdev), and only one the assign names. */
  private async shareableKeys(keys: readonly DeviceKey[], assigned: readonly DeviceKey[]): Promise<ReadonlySet<DeviceKey>> {
    const other = keys.find((key) => keyKind(key) !== 'scsi');
    if (other !== undefined) {
      throw new HostdevError('HOSTDEV_USAGE', `--shareable applies to SCSI devices only; ${other} is a ${keyKind(other)} device`, {
        hint: 'Give the scsi: keys to share in an assign of their own, or leave --shareable out.',
        details: { key: other },
      });
    }
    const stray = keys.find((key) => !assigned.includes(key));
    if (stray !== undefined) {
      throw new HostdevError('HOSTDEV_USAGE', `${stray} is named shareable but the assign does not name it`, {
        hint: 'Name in `shareable` only SCSI devices the assign gives the domain.',
        details: { key: stray },
      });
    }
    return new Set(keys);
  }

  /** NVMe namespaces change their controller's driver (a PCI assign of their own); the other kinds are ownership only. */
  private async assignKeys(owner: Owner, keys: readonly DeviceKey[], dryRun: boolean, shareable: ReadonlySet<DeviceKey>, holder: Holder | undefined): Promise<DeviceAssignReport> {
    const { nvme, rest } = splitNvme(keys);
    if (nvme.length === 0) return this.manager.assignDevices(owner, rest, dryRun, shareable, holder);
    if (rest.length === 0) return this.manager.assignNvme(owner, nvme, dryRun, holder);
    // The ownership-only kinds first (no sysfs write); when the namespaces then fail, they are let go again.
    const others = await this.manager.assignDevices(owner, rest, dryRun, shareable, holder);
    try {
      const namespaces = await this.manager.assignNvme(owner, nvme, dryRun);
      return { ...namespaces, assigned: [...others.assigned, ...namespaces.assigned], notes: [...others.notes, ...namespaces.notes] };
    } catch (error) {
      if (!dryRun && others.assigned.length > 0) await this.manager.releaseDevices(owner, others.assigned, false);
      throw error;
    }
  }

  /** The named NVMe namespaces first (their controllers back to nvme with the last), then the other kinds. */
  private async releaseKeys(owner: Owner, keys: readonly DeviceKey[], dryRun: boolean): Promise<DeviceReleaseReport> {
    const { nvme, rest } = splitNvme(keys);
    if (nvme.length === 0) return this.manager.releaseDevices(owner, rest, dryRun);
    const namespaces = await this.manager.releaseNvme(owner, nvme, dryRun);
    return rest.length === 0 ? namespaces : withNamespaces(namespaces, await this.manager.releaseDevices(owner, rest, dryRun));
  }

  /** Takes mediated and USB devices back from a domain (all of them unless named); gone ones are pruned. */
  async releaseDevices(request: DeviceRequest): Promise<DeviceReleaseReport> {
    const owner = ownerOf(request);
    const keys = request.devices === undefined ? undefined : await this.resolveDevices(request.devices);
    if (keys === undefined && !holdsDevices(this.manager.store, owner)) throw domainHoldsNothing(owner, this.manager.tables());
    if (keys === undefined) return this.releaseAllDevices(owner, request.dryRun ?? false);
    return this.releaseKeys(owner, keys, request.dryRun ?? false);
  }

  /** Every device of other kinds the domain holds: its NVMe namespaces first (their controllers back to nvme), then the rest. */
  private async releaseAllDevices(owner: Owner, dryRun: boolean): Promise<DeviceReleaseReport> {
    return withNamespaces(await this.releaseNamespaces(owner, dryRun, this.manager.store.readDevices()), await this.manager.releaseDevices(owner, undefined, dryRun));
  }

  /** The domain's NVMe namespaces of `entries`, with their controllers (before its other PCI functions: a controller goes with its namespaces). */
  private async releaseNamespaces(owner: Owner, dryRun: boolean, entries: readonly DeviceEntry[]): Promise<DeviceReleaseReport | null> {
    const nvme = entries.some((entry) => entry.kind === 'nvme' && isHeldBy(entry, owner));
    return nvme ? this.manager.releaseNvme(owner, undefined, dryRun) : null;
  }

  /** Device keys of the kinds assign takes besides PCI; usb:VENDOR:PRODUCT picks the one such device (refused when there are more). */
  private async resolveDevices(refs: readonly string[]): Promise<DeviceKey[]> {
    const selectors = refs.map(parseUsbSelector);
    const usb = selectors.some((selector) => selector !== null) ? (await readNonPciInventory(this.manager.layout, ['usb'], readTimeoutFromEnv())).usb : [];
    return refs.map((ref, index) => {
      const selector = selectors[index];
      if (selector !== null && selector !== undefined) return selectUsb(usb, selector);
      const key = parseKey(ref);
      assignableKind(key, ref);
      return key;
    });
  }

  /**
   * `mdev create PARENT TYPE [--uuid U] [--attr NAME=VALUE...] [--persist [--manual]]`: one journaled
   * write of the UUID to the type's `create`, then the attributes in order (one refused removes the
   * mdev again); `persist` also writes its definition (made again by `mdevStartDefined` at boot
   * unless `start` is "manual").
   */
  mdevCreate(request: {
    readonly parent: string;
    readonly type: string;
    readonly uuid?: string | undefined;
    readonly dryRun?: boolean | undefined;
    readonly persist?: boolean | undefined;
    readonly start?: MdevStart | undefined;
    readonly attrs?: readonly MdevAttribute[] | undefined;
  }): Promise<MdevReport> {
    return this.manager.createMdev({ ...request, dryRun: request.dryRun ?? false });
  }

  /** `mdev define PARENT TYPE [--uuid U] [--manual] [--attr NAME=VALUE...]`: a definition alone (mdevctl define). */
  mdevDefine(request: { readonly parent: string; readonly type: string; readonly uuid?: string; readonly start?: MdevStart; readonly attrs?: readonly MdevAttribute[]; readonly dryRun?: boolean }): Promise<MdevDefineReport> {
    return this.manager.defineMdev({ ...request, start: request.start ?? 'auto', dryRun: request.dryRun ?? false });
  }

  /** `mdev start UUID`: makes one defined mdev, "manual" or not (mdevctl start -u UUID). */
  mdevStart(request: { readonly uuid: string; readonly dryRun?: boolean }): Promise<StartDefinedReport> {
    return this.manager.startDefinedMdevs(request.dryRun ?? false, { uuid: request.uuid });
  }

  /** `mdev remove UUID [--undefine]`: the mdev's `remove` file; refused while a domain holds it. `undefine` drops its definition too. */
  mdevRemove(request: { readonly uuid: string; readonly dryRun?: boolean; readonly undefine?: boolean }): Promise<MdevReport> {
    return this.manager.removeMdev({ ...request, dryRun: request.dryRun ?? false });
  }

  /**
   * `mdev start-defined [--parent P]`: every defined "auto" mdev that is not there is made (mdevctl's
   * start at boot); with `parent`, those on one parent (the udev rule, when a parent registers later).
   */
  mdevStartDefined(request: { readonly dryRun?: boolean; readonly parent?: string } = {}): Promise<StartDefinedReport> {
    return this.manager.startDefinedMdevs(request.dryRun ?? false, { parent: request.parent });
  }

  /** The mediated devices (with owner and table) and their parents' types. */
  async mdevList(): Promise<{
    readonly devices: NonPciJson[];
    readonly parents: readonly MdevParent[];
    readonly definitions: readonly (MdevDefinition & { readonly present: boolean })[];
    readonly warnings: readonly string[];
  }> {
    const inventory = await readNonPciInventory(this.manager.layout, ['mdev'], readTimeoutFromEnv());
    const tables = tableLookupOf(this.manager.tables(), this.manager.store.readDevices());
    const there = new Set(inventory.mdev.map((device) => device.uuid));
    const definitions = (await this.manager.mdevDefinitions()).map((definition) => ({ ...definition, present: there.has(definition.uuid) }));
    return { devices: inventory.mdev.map((device) => nonPciJson(device, tables)), parents: inventory.mdevParents, definitions, warnings: inventory.warnings };
  }

  /**
   * Gives the domain's devices back (saved VF config first); vanished ones are pruned. Without
   * addresses, its mediated and USB devices too (`devices`, present only when it held any).
   */
  async release(request: ReleaseRequest): Promise<ReleaseResult> {
    const owner = ownerOf(request);
    const dryRun = request.dryRun ?? false;
    // The domain's entries of other kinds, read once: what goes, and which namespaces go first.
    const entries = this.manager.store.readDevices();
    const named = request.addresses === undefined ? null : splitRefs(request.addresses);
    // Of the other kinds: the keys named; without addresses, every one the domain holds (or held).
    const others: readonly DeviceKey[] | 'all' | null =
      named !== null ? (named.others.length === 0 ? null : await this.resolveDevices(named.others)) : holdsDevices(this.manager.store, owner, entries) ? 'all' : null;
    // Without addresses its NVMe namespaces go first, with their controllers, before its other PCI functions.
    const namespaces = others === 'all' ? await this.releaseNamespaces(owner, dryRun, entries) : null;
    // The PCI release runs unless the request names no PCI function, or the domain holds devices of other kinds only.
    const pciToo = named !== null ? named.pci.length > 0 || others === null : others === null || this.manager.holdsAnything(owner, this.manager.tables());
    const pci = pciToo ? await this.releasePci(named === null ? request : { ...request, addresses: named.pci }, entries) : { ...emptyRelease(dryRun), warnings: [] };
    if (others === null) return pci;
    const devices = others === 'all' ? withNamespaces(namespaces, await this.manager.releaseDevices(owner, undefined, dryRun)) : await this.releaseKeys(owner, others, dryRun);
    return { ...pci, devices };
  }

  private async releasePci(request: ReleaseRequest, entries: readonly DeviceEntry[] = this.manager.store.readDevices()): Promise<ReleaseResult> {
    const warnings: string[] = [];
    const { addresses, ...rest } = request;
    const kept = addresses === undefined ? null : controllerOfHeldNamespaces(addresses.map(parsePciRef), entries);
    if (kept !== null) throw kept;
    const report = await this.changing(request.dryRun ?? false, () =>
      this.manager.release({
        ...rest,
        ...(addresses === undefined ? {} : { addresses: addresses.map(parsePciRef) }),
        onWarning: (line) => warnings.push(line),
      }),
      touchedBy,
    );
    return { ...report, warnings };
  }

  /**
   * Gives devices held by one domain to another without touching them (they stay on their stub):
   * a pool's device to the workload allocated it, and back. All or nothing.
   */
  async handOver(request: HandOverRequest): Promise<OperationReport> {
    const from = ownerOf(request.from);
    const to = ownerOf(request.to);
    const addresses = request.addresses.map(parsePciRef);
    // Only the tables change (read live by list, show and groups): no function is read again.
    return this.changing(request.dryRun ?? false, () => this.manager.handOver({ from, to, addresses, dryRun: request.dryRun ?? false }), () => []);
  }

  /**
   * Marks devices a running VM already holds as the domain's, without touching them (a VM manager
   * that restarts: libvirt's UpdateActivePCIDevices). Each must be on a stub driver and in no other
   * domain; all or nothing. `holderPid` or `qmp` ties them to the VM as in assign.
   */
  async adopt(request: AdoptRequest): Promise<OperationReport> {
    const owner = ownerOf(request);
    const addresses = request.addresses.map(parsePciRef);
    if (addresses.length === 0) throw new HostdevError('HOSTDEV_USAGE', 'adopt names no device', { hint: 'Name the PCI addresses the running VM holds.' });
    const holder = await this.holderOf(request);
    const dryRun = request.dryRun ?? false;
    return this.changing(
      dryRun,
      () =>
        this.manager.adopt({
          owner,
          addresses,
          managed: request.managed ?? true,
          dryRun,
          ...(holder === undefined ? {} : { holder }),
          ...(request.operationId === undefined ? {} : { operationId: request.operationId }),
        }),
      () => [],
    );
  }

  /** Where the VFIO device nodes of this host are (ROOT/dev/vfio). */
  get vfioDevDir(): string {
    return this.manager.layout.vfioDevDir;
  }

  /**
   * Assigns devices to a running VM and adds them to it over QMP (`device_add`, vfio-pci on a free
   * PCIe root port, with the ids `qemuArgs` gives). The slots are checked before anything changes;
   * a refused `device_add` unplugs what this call plugged and rolls the assign back.
   */
  async hotplug(request: HotplugRequest): Promise<HotplugReport> {
    const { qmp: socketPath, ...assign } = request;
    const hypervisor = ownerOf(request).driver;
    const qmp = await this.connectQmp(socketPath);
    try {
      const layout = placeDevices(request.addresses.map(parsePciRef), await readVmSlots(qmp), request.domain);
      const dryRun = request.dryRun ?? false;
      const base = { domain: request.domain, hypervisor, dryRun, plugged: layout.place, present: layout.present };
      if (layout.place.length === 0) return { ...base, assign: null };
      const addresses = layout.place.map((placement) => placement.address);
      const vf = request.vf === undefined ? undefined : Object.fromEntries(Object.entries(request.vf).filter(([device]) => addresses.includes(parsePciRef(device))));
      // The VM is the holder (its QMP socket, answering on this very connection) unless a pid is named.
      const holder = request.holderPid !== undefined ? await this.holderOf({ holderPid: request.holderPid }) : ({ kind: 'qmp', socket: socketPath } as const);
      const assigned = await this.assignHeld({ ...assign, addresses, ...(vf === undefined ? {} : { vf }) }, holder);
      if (assigned.dryRun || assigned.failures.length > 0) return { ...base, plugged: assigned.dryRun ? layout.place : [], assign: assigned };
      await plugIntoVm(qmp, request.domain, layout.place, (back) => this.release({ domain: request.domain, hypervisor, addresses: back }), ROLLBACK_UNPLUG_MS);
      return { ...base, assign: assigned };
    } finally {
      qmp.close();
    }
  }

  /**
   * Takes devices out of a running VM (`device_del`, then QEMU's DEVICE_DELETED, bounded by
   * `timeoutMs`) and releases them. Devices the VM does not let go of in time stay assigned and
   * fail the call with HOSTDEV_UNPLUG_TIMEOUT, after the ones it did let go are released.
   */
  async unplug(unplug: UnplugRequest): Promise<UnplugReport> {
    const request = { ...unplug, addresses: unplug.addresses.map(parsePciRef) };
    const hypervisor = ownerOf(request).driver;
    if (request.addresses.length === 0) {
      throw new HostdevError('HOSTDEV_USAGE', 'unplug names no device', { hint: 'Name the PCI addresses to take out of the VM.' });
    }
    const owned = new Set<string>(
      (await this.manager.status({ holders: 'none' })).active.filter((e) => e.usedBy.vm === request.domain && e.usedBy.hypervisor === hypervisor).map((e) => e.address),
    );
    const foreign = request.addresses.filter((address) => !owned.has(address));
    if (foreign.length > 0) {
      const owner = this.manager.tables().active.find((entry) => entry.address === foreign[0]);
      throw new HostdevError(
        'HOSTDEV_NOT_OWNED',
        `${foreign.join(', ')} ${foreign.length === 1 ? 'is' : 'are'} not held by domain ${request.domain} (${hypervisor})${owner === undefined ? '' : `: ${foreign[0]} is in use by ${formatOwner(owner.usedBy)}`}`,
        { hint: `hostdev status lists what ${request.domain} holds; nothing was changed.`, details: { address: foreign[0]!, owner: owner?.usedBy ?? null } },
      );
    }
    const releaseOf = (addresses: readonly PciAddress[], dryRun: boolean): Promise<ReleaseResult> =>
      this.release({
        domain: request.domain,
        hypervisor,
        addresses,
        dryRun,
        ...(request.wait === undefined ? {} : { wait: request.wait }),
        ...(request.operationId === undefined ? {} : { operationId: request.operationId }),
      });
    const qmp = await this.connectQmp(request.qmp);
    try {
      if (request.dryRun ?? false) {
        const { deviceIds } = await readVmSlots(qmp);
        const inVm = request.addresses.filter((address) => deviceIds.has(hostdevDeviceId(address)));
        return { unplugged: inVm, absent: request.addresses.filter((a) => !inVm.includes(a)), release: await releaseOf(request.addresses, true) };
      }
      const outcome = await unplugFromVm(qmp, request.addresses, request.timeoutMs ?? 10_000);
      const back = [...outcome.gone, ...outcome.absent];
      const release = await releaseOf(back, false);
      if (outcome.held.length > 0) {
        throw new HostdevError(
          'HOSTDEV_UNPLUG_TIMEOUT',
          `${request.domain} did not give back ${outcome.held.join(', ')} within ${request.timeoutMs ?? 10_000} ms (QEMU sent no DEVICE_DELETED); ${outcome.held.length === 1 ? 'it stays' : 'they stay'} assigned; released: ${release.released.join(', ') || 'none'}`,
          {
            hint: 'The guest must accept the unplug (a guest OS with PCIe or ACPI hotplug). Try again with a longer --wait, or shut the VM down and release the domain.',
            details: { address: outcome.held[0]!, domain: request.domain, held: outcome.held, released: release.released },
          },
        );
      }
      return { unplugged: outcome.gone, absent: outcome.absent, release };
    } finally {
      qmp.close();
    }
  }

  status(): Promise<StatusReport> {
    return this.manager.status();
  }

  /** Every PCI function (or those of a class or driver), with its owner and table, as `list --json`. */
  async list(filter: ListFilter = {}): Promise<InventoryResult<DeviceWithOwnership[]>> {
    const read = await this.inventory();
    const { inventory, warnings } = read;
    const stored = this.manager.tables();
    const whole = filter.class === undefined && filter.driver === undefined;
    // cacheInventory: the whole list is built once per inventory read and state of the tables; the
    // same result object comes back until either changes (the daemon keeps its JSON text by it).
    const key = whole && this.cacheInventory ? JSON.stringify(stored) : null;
    if (key !== null && this.listed?.read === read && this.listed.tables === key) return this.listed.result;
    const tables = tableLookupOf(stored);
    const byClass = filter.class === undefined ? null : classFilter(filter.class);
    const devices = inventory.devices
      .filter((device) => (byClass === null || byClass(device)) && (filter.driver === undefined || device.driver === filter.driver))
      .map((device) => deviceJson(device, tables) as DeviceWithOwnership);
    const result = { report: devices, warnings, iommuEnabled: inventory.iommuEnabled };
    if (key !== null) this.listed = { read, tables: key, result };
    return result;
  }

  /** One function in full, as `show --json`; HOSTDEV_DEVICE_NOT_FOUND when it is not on the host. */
  async show(ref: DeviceRef): Promise<InventoryResult<ShowReport>> {
    const address = parsePciRef(ref);
    const { inventory, warnings } = await this.inventory();
    const device = inventory.devices.find((d) => d.address === address);
    const [hostUse, serials] = await Promise.all([
      device === undefined ? [] : this.manager.hostUsage.usesOf([device]).then((uses) => uses.get(address) ?? []),
      device === undefined ? NO_SERIALS : readSerials(this.manager.layout, address),
    ]);
    const report = showReport(inventory, address, tableLookupOf(this.manager.tables()), readVfioAliases(this.manager.layout.root), hostUse, serials);
    return { report, warnings: warnings.filter((w) => w.startsWith(address) || !/^[0-9a-f]{4}:/.test(w)), iommuEnabled: inventory.iommuEnabled };
  }

  /** The devices of one kind other than PCI (USB, mdev, NVMe namespaces, SCSI) with owner and table, as `list --kind KIND --json`. */
  async listKind(kind: NonPciKind): Promise<{ readonly report: NonPciJson[]; readonly warnings: readonly string[] }> {
    const inventory = await readNonPciInventory(this.manager.layout, [kind], readTimeoutFromEnv());
    const tables = tableLookupOf(this.manager.tables(), this.manager.store.readDevices());
    return { report: inventory[kind].map((device) => nonPciJson(device, tables)), warnings: inventory.warnings };
  }

  /** One USB, mdev, NVMe or SCSI device by its key, as `show KEY --json`; HOSTDEV_DEVICE_NOT_FOUND when the host lacks it. */
  async showKey(ref: DeviceRef): Promise<{ readonly report: NonPciShowReport; readonly warnings: readonly string[] }> {
    const key = parseKey(ref);
    const kind = keyKind(key);
    if (kind === 'pci') {
      throw new HostdevError('HOSTDEV_BAD_ADDRESS', `"${ref}" names a PCI function; showKey takes the other kinds`, {
        hint: 'Ask show() for a PCI function.',
        details: { input: ref, kind },
      });
    }
    const inventory = await readNonPciInventory(this.manager.layout, [kind], readTimeoutFromEnv());
    return { report: nonPciShowReport(inventory, key, tableLookupOf(this.manager.tables(), this.manager.store.readDevices())), warnings: inventory.warnings };
  }

  /** Every IOMMU group with its members, as `groups --json`. */
  async groups(): Promise<InventoryResult<GroupReport[]>> {
    const { inventory, warnings } = await this.inventory();
    return { report: groupsReport(inventory, tableLookupOf(this.manager.tables())), warnings, iommuEnabled: inventory.iommuEnabled };
  }

  /**
   * PCI events as they happen, pruned and returned VFs included (`hostdev watch`), until `signal`
   * aborts (a prune in progress is committed first). The first snapshot is taken before this
   * yields anything; notices (sources that are unavailable, the fallback, what is watched) go to
   * `onNotice`.
   */
  async *watch(request: WatchRequest = {}): AsyncGenerator<LiveEvent, void, undefined> {
    const intervalMs = request.intervalMs ?? 1_000;
    const notice = request.onNotice ?? (() => undefined);
    const root = this.manager.layout.root;
    const signal = request.signal;
    const queue: LiveEvent[] = [];
    let wake: (() => void) | null = null;
    const stopped = new Promise<void>((resolve) => {
      if (signal?.aborted) resolve();
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    void stopped.then(() => wake?.());
    const net = this.manager.net;
    const warn = (line: string): void => notice({ level: 'warning', message: line });
    // Opened for dry runs: prunes land in the in-memory snapshot of the state, a reclaim only plans.
    const dryRun = this.manager.store.snapshot;
    const reclaim = {
      reclaim: dryRun ? vfReclaimPreview(this.manager) : vfReclaimer(this.manager, warn),
      captureVfConfig: vfConfigCapturer(this.manager, net),
    };
    const live = new LiveWatch({
      store: this.manager.store,
      dryRun,
      emit: (event) => {
        // A driver change leaves the set of functions as it is: only that one is read again.
        if (event.kind === 'bind' || event.kind === 'unbind' || event.kind === 'driver-change') this.refreshFunctions([event.address]);
        else this.invalidateInventory();
        queue.push(event);
        wake?.();
      },
      ...(request.reclaim ? reclaim : {}),
    });
    let watcher: Watcher | null = null;
    // Stopped before it started: nothing is started, nothing is said.
    if (signal?.aborted) return;
    try {
      await live.capture();
      const attempts = sourcesFor(request.source ?? 'auto', root, intervalMs);
      for (const [index, sources] of attempts.entries()) {
        const candidate = new Watcher({
          sources,
          reader: new ChildSnapshotReader(root, request.readTimeoutMs ?? 5_000),
          onBatch: (batch) => live.handle(batch),
          onError: (error) => warn(error.message),
        });
        // A stop while the first snapshot is still being retried ends that wait too.
        void stopped.then(() => candidate.stop());
        const started = await candidate.start();
        if (signal?.aborted) {
          watcher = candidate;
          break;
        }
        await live.start(started.snapshot);
        const primaryFailed = started.failed.find((failure) => failure.source === sources[0]);
        if (primaryFailed === undefined || index === attempts.length - 1) {
          for (const failure of started.failed) warn(`event source ${failure.source.name} unavailable: ${failure.error.message}`);
          watcher = candidate;
          request.onStarted?.();
          const policy = request.reclaim ? `; returned VFs ${dryRun ? 'would be' : 'are'} readied for their former domain` : '';
          const dry = dryRun ? '; dry run: nothing is changed' : '';
          notice({ level: 'info', message: `watching PCI devices under ${root} (${describeSources(started.sources, intervalMs)}${policy}${dry}); Ctrl-C stops` });
          break;
        }
        notice({ level: 'note', message: `${sources[0]!.name} unavailable (${primaryFailed.error.message}); falling back` });
        await candidate.stop();
      }
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (signal?.aborted) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
      await watcher?.stop();
      watcher = null;
      while (queue.length > 0) yield queue.shift()!;
    } finally {
      await watcher?.stop();
    }
  }

  /** The whole inventory, read in bounded reader processes (a read the kernel holds cannot block the service). */
  private async inventory(): Promise<{ inventory: Inventory; warnings: string[] }> {
    if (this.cacheInventory && this.cached !== null && this.cached.generation === this.generation) return this.cached.read;
    this.reads.whole += 1;
    const read = readInventoryBounded(this.manager.layout, { pciIdsPath: pciIdsPath(), timeoutMs: readTimeoutFromEnv() }).then((inventory) => ({
      inventory,
      warnings: warningLines(inventory),
    }));
    if (this.cacheInventory) this.keep(read);
    return read;
  }

  /** Keeps a read as the current one; a failed read is not kept: the next call reads again. */
  private keep(read: Promise<{ inventory: Inventory; warnings: string[] }>): void {
    const entry = { generation: this.generation, read };
    this.cached = entry;
    read.catch(() => {
      if (this.cached === entry) this.cached = null;
    });
  }

  /** One `-device vfio-pci` per active device of the domain still on the host (ids are stable). */
  async qemuArgs(request: QemuArgsRequest): Promise<QemuArgsReport> {
    const owner = ownerOf(request);
    const status = await this.manager.status({ holders: 'none' });
    const gone = new Set<string>(status.missing);
    const owned: ActiveEntry[] = status.active.filter((e) => sameOwner(e.usedBy, owner));
    const others = (status.devices ?? []).filter((e) => isHeldBy(e, owner));
    if (owned.length === 0 && others.length === 0 && !this.manager.holdsAnything(owner, status) && !holdsDevices(this.manager.store, owner)) {
      throw domainHoldsNothing(owner, status);
    }
    const present = owned.filter((e) => !gone.has(e.address));
    const missing = owned.filter((e) => gone.has(e.address)).map((e) => e.address);
    const drifted = status.recovery.drift.find((d) => present.some((e) => e.address === d.address));
    if (drifted !== undefined) throw driftedDevice(drifted);
    const warnings = missing.map(
      (address) => `${address} is assigned to ${owner.vm} but no longer on this host: left out (release the domain to prune it)`,
    );
    if (owned.length === 0 && others.length === 0) warnings.push(`domain ${owner.vm} (${owner.hypervisor}) holds no device: nothing to pass to QEMU`);
    const inventory = others.length === 0 ? null : await readNonPciInventory(this.manager.layout, [...new Set(others.map((e) => e.kind))], readTimeoutFromEnv());
    // A namespace is there while its controller is, on its stub for this domain (the kernel shows no namespace then).
    const controllers = new Set<string>(present.map((e) => e.address));
    const here = new Set<string>([
      ...(inventory === null ? [] : [...inventory.mdev, ...inventory.usb].map((device) => device.key)),
      // A SCSI device is given to QEMU by its generic node: one without it (sg not loaded) cannot be.
      ...(inventory === null ? [] : inventory.scsi.filter((device) => device.sg !== null).map((device) => device.key)),
      ...others.filter((e) => e.kind === 'nvme' && controllers.has(nvmeController(e.key))).map((e) => e.key),
    ]);
    const otherKeys = others.filter((e) => here.has(e.key)).map((e) => e.key);
    const otherMissing = others.filter((e) => !here.has(e.key)).map((e) => e.key);
    const scsi = (inventory?.scsi ?? []).flatMap((device) => (device.sg !== null && otherKeys.includes(device.key) ? [{ ...device, sg: device.sg }] : []));
    const withoutSg = new Set<string>((inventory?.scsi ?? []).filter((device) => device.sg === null).map((device) => device.key));
    warnings.push(
      ...otherMissing.map((key) =>
        withoutSg.has(key)
          ? `${key} is assigned to ${owner.vm} but has no /dev/sgN (is the sg module loaded?): left out`
          : `${key} is assigned to ${owner.vm} but no longer on this host: left out (release the domain to prune it)`,
      ),
    );
    const ids = otherKeys.map(idOf);
    const namespaces = ids.flatMap((id) => (id.kind === 'nvme' ? [id] : []));
    // QEMU's nvme block driver opens a namespace's controller itself: it is no vfio-pci device of the VM.
    const backing = new Set<string>(namespaces.map((id) => id.controller));
    const argv = qemuArgs(present.filter((e) => !backing.has(e.address)), {
      ...(request.machine === undefined ? {} : { machine: request.machine }),
      ...(request.firstChassis === undefined ? {} : { firstChassis: request.firstChassis }),
      mdevs: ids.flatMap((id) => (id.kind === 'mdev' ? [id.uuid] : [])),
      usb: ids.flatMap((id) => (id.kind === 'usb' ? [id] : [])),
    }).concat(nvmeQemuArgs(namespaces), scsiQemuArgs(scsi));
    const report = { argv, devices: present.map((e) => e.address), keys: present.map((e) => e.key), missing, missingKeys: missing.map(pciKey), warnings };
    return others.length === 0 ? report : { ...report, otherKeys, otherMissing };
  }
}

/** A release of the other kinds' devices with the NVMe namespaces released before it. */
function withNamespaces(namespaces: DeviceReleaseReport | null, rest: DeviceReleaseReport): DeviceReleaseReport {
  if (namespaces === null) return rest;
  // A dry run's namespaces are still in the tables the rest was planned on.
  const again = new Set(namespaces.released);
  return {
    ...rest,
    released: [...namespaces.released, ...rest.released.filter((key) => !again.has(key))],
    notes: [...namespaces.notes, ...rest.notes],
    ...(namespaces.controllers === undefined ? {} : { controllers: namespaces.controllers, steps: namespaces.steps ?? [] }),
  };
}

/** NVMe namespaces (their controllers change driver) and the keys of the ownership-only kinds. */
function splitNvme(keys: readonly DeviceKey[]): { readonly nvme: DeviceKey[]; readonly rest: DeviceKey[] } {
  return { nvme: keys.filter((key) => keyKind(key) === 'nvme'), rest: keys.filter((key) => keyKind(key) !== 'nvme') };
}

/** The report of a PCI release that had nothing to do (the domain held only devices of other kinds). */
/** The references that name PCI functions and those that name devices of the other kinds (left as given, for resolveDevices). */
function splitRefs(refs: readonly DeviceRef[]): { readonly pci: PciAddress[]; readonly others: string[] } {
  const pci: PciAddress[] = [];
  const others: string[] = [];
  for (const ref of refs) {
    const id = parseUsbSelector(ref) === null ? parseId(ref) : null;
    if (id?.kind === 'pci') pci.push(id.address);
    else others.push(ref);
  }
  return { pci, others };
}

function emptyAssign(dryRun: boolean): AssignResult {
  const plan = { operation: 'assign', onFailure: 'rollback', fallbacks: [], groups: [], changes: [], pruned: [], resets: [], notes: [] } as const;
  return { operation: 'assign', dryRun, steps: [], changes: [], pruned: [], resets: [], failures: [], notes: [], plan, vfConfig: [], warnings: [] };
}

function emptyRelease(dryRun: boolean): ReleaseReport {
  const plan = { operation: 'release', onFailure: 'continue', fallbacks: [], groups: [], changes: [], pruned: [], resets: [], notes: [] } as const;
  return { operation: 'release', dryRun, steps: [], changes: [], pruned: [], resets: [], failures: [], notes: [], plan, released: [], reattached: [], inactive: [] };
}

function warningLines(inventory: Inventory): string[] {
  return inventory.warnings.map((w) => (w.address === '' ? w.message : `${w.address}: ${w.message}`));
}

/** The functions a change report touched: table changes, prunes, resets and failures. */
function touchedBy(report: OperationReport): PciAddress[] {
  return [
    ...report.changes.map((change) => (change.kind === 'remove' ? change.address : change.entry.address)),
    ...report.pruned,
    ...report.resets.map((reset) => reset.address),
    ...report.failures.map((failure) => failure.address),
  ];
}

/** Every VF config names a device of the request, and no two VFs are given one MAC. */
function vfRequests(requests: VfNetRequests, addresses: readonly PciAddress[]): Map<PciAddress, VfNetRequest> {
  const wanted = new Set<string>(addresses);
  const out = new Map<PciAddress, VfNetRequest>();
  const macs = new Map<string, string>();
  for (const [ref, request] of Object.entries(requests)) {
    const address = parsePciRef(ref);
    if (!wanted.has(address)) {
      throw new HostdevError('HOSTDEV_USAGE', `VF network config is given for ${address}, which the assign does not name`, {
        hint: 'Give VF config only for devices of the request, keyed by their address or pci: key.',
        details: { address },
      });
    }
    if (request.mac !== undefined) {
      const other = macs.get(request.mac);
      if (other !== undefined) {
        throw new HostdevError('HOSTDEV_USAGE', `the MAC ${request.mac} is asked for both ${other} and ${address}`, {
          hint: 'Give each VF its own MAC (or none).',
          details: { address, mac: request.mac },
        });
      }
      macs.set(request.mac, address);
    }
    if (!isEmptyRequest(request)) out.set(address, request);
  }
  return out;
}
