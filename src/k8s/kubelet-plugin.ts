import { existsSync } from 'node:fs';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import { poolMembers, type Pool, type PoolCandidate } from '../core/pools.js';
import type { ActiveEntry } from '../core/tables.js';
import type { HostdevService } from '../service/hostdev-service.js';
import { DevicePluginServer, registerWithKubelet, type PoolDevice, type PoolView } from './device-plugin.js';
import { listPodDevices, type ContainerDevices } from './podresources-api.js';
import { cdiSpec, cdiSpecPath, removeCdiSpec, writeCdiSpec } from './cdi.js';
import { DRA_DRIVER, DraDriver, type DraDriverOptions } from './dra-driver.js';

/**
 * Pool devices are held by the hypervisor "kubelet": under the domain pool-NAME while the node
 * offers them, under pod:NAMESPACE:POD:CONTAINER while a container has them (Kubernetes names
 * never hold a colon, so the domain names one container).
 */
const POOL_HYPERVISOR = 'kubelet';
const poolDomain = (pool: Pool): string => `pool-${pool.name}`;
const podDomain = (held: Pick<ContainerDevices, 'namespace' | 'pod' | 'container'>): string => `pod:${held.namespace}:${held.pod}:${held.container}`;
const isPodDomain = (domain: string): boolean => domain.startsWith('pod:');
/** A pool device given out: to a container by the device plugin, or to a claim by the DRA driver. */
const isGivenOut = (domain: string): boolean => isPodDomain(domain) || domain.startsWith('claim:');
const pluginSocketName = (pool: Pool): string => `hostdev-${pool.name}.sock`;

interface KubeletPluginOptions {
  readonly service: HostdevService;
  readonly pools: readonly Pool[];
  /** The kubelet's device-plugins directory (kubelet.sock is there). */
  readonly pluginDir: string;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
  /** Where the VFIO device nodes are on the host (default: the service's, /dev/vfio on a real host). */
  readonly vfioDir?: string;
  /** How often the plugin directory is looked at for a kubelet restart (default 250 ms). */
  readonly restartCheckMs?: number;
  /** Where CDI specs are written (the runtime's CDI directory, e.g. /var/run/cdi); absent: Allocate gives device specs. */
  readonly cdiDir?: string;
  /** The kubelet's PodResources socket; null: allocations stay with their pool. */
  readonly podResourcesSocket?: string | null;
  /** How often the kubelet is asked which containers hold which devices (default 2000 ms). */
  readonly podCheckMs?: number;
  /** How long a device must be missing from every answer before it goes back to its pool (default 10000 ms). */
  readonly podGoneGraceMs?: number;
  /** Also run the DRA driver (needs `cdiDir`: prepared claims name CDI devices). */
  readonly dra?: Pick<DraDriverOptions, 'nodeName' | 'kubeletDir' | 'kubeconfig' | 'api' | 'resyncMs'>;
}

/**
 * The candidates of the pool rules: every function with its PF's netdevs and its VF index. A
 * device in the tables is matched by the driver it had before hostdev took it (a `driver`
 * selector names the host driver, and a readied device is on its stub).
 */
function candidatesOf(devices: readonly PciDevice[], hostDrivers: ReadonlyMap<string, string | null>): PoolCandidate[] {
  const byAddress = new Map(devices.map((d) => [d.address as string, d]));
  return devices.map((device) => {
    const pf = device.physfn === null ? undefined : byAddress.get(device.physfn);
    const index = pf === undefined ? -1 : pf.virtfns.indexOf(device.address);
    const hostDriver = hostDrivers.get(device.address);
    return { device: hostDriver === undefined ? device : { ...device, driver: hostDriver }, pfNetdevs: pf?.netdevs ?? [], vfIndex: index < 0 ? null : index };
  });
}

/**
 * What each pool holds now, read through the service; the pools' free members are readied (given
 * to the pool: on their stub driver, in the active table under kubelet/pool-NAME). A device is
 * healthy while it is on the host, owned by its pool and on the stub driver the entry records.
 */
class PoolState {
  private devices = new Map<string, PoolDevice[]>();
  private readonly known = new Map<string, Map<string, PoolDevice>>();
  private readonly listeners = new Map<string, Set<() => void>>();

  constructor(
    private readonly service: HostdevService,
    private readonly pools: readonly Pool[],
    private readonly log: (line: string) => void,
  ) {}

  /** The pool a device was offered in (null: none of ours). */
  poolOf(address: string): Pool | null {
    return this.pools.find((pool) => this.known.get(pool.name)?.has(address) === true) ?? null;
  }

  view(pool: Pool): PoolView {
    return {
      devices: () => this.devices.get(pool.name) ?? [],
      subscribe: (listener) => {
        const set = this.listeners.get(pool.name) ?? new Set();
        this.listeners.set(pool.name, set);
        set.add(listener);
        return () => set.delete(listener);
      },
    };
  }

  async refresh(): Promise<void> {
    let { report: inventory } = await this.service.list();
    const tables = await this.service.status();
    const hostDrivers = new Map<string, string | null>([...tables.active, ...tables.inactive].map((e) => [e.address, e.originalDriver]));
    const members = poolMembers(this.pools, candidatesOf(inventory, hostDrivers));
    const tableOf = new Map<string, string | null>(inventory.map((d) => [d.address, d.table]));
    let readied = false;
    for (const pool of this.pools) {
      // Free: in no table (neither given to a domain nor detached by someone).
      const free = (members.get(pool.name) ?? []).filter((d) => tableOf.get(d.address) === null);
      if (free.length === 0) continue;
      try {
        await this.service.assign({ domain: poolDomain(pool), hypervisor: POOL_HYPERVISOR, addresses: free.map((d) => d.address), managed: true });
        this.log(`pool ${pool.name}: readied ${free.map((d) => d.address).join(', ')}`);
        readied = true;
      } catch (error) {
        this.log(`pool ${pool.name}: could not ready ${free.map((d) => d.address).join(', ')}: ${(error as Error).message}`);
      }
    }
    if (readied) inventory = (await this.service.list()).report;
    const active = new Map<string, ActiveEntry>((readied ? await this.service.status() : tables).active.map((e) => [e.address, e]));
    const present = new Map(inventory.map((d) => [d.address as string, d]));
    const next = new Map<string, PoolDevice[]>();
    for (const pool of this.pools) {
      const known = this.known.get(pool.name) ?? new Map<string, PoolDevice>();
      this.known.set(pool.name, known);
      const memberNow = new Set<string>((members.get(pool.name) ?? []).map((d) => d.address));
      // A device is the pool's while the pool holds it or a container it was allocated to does.
      const owned = [...active.values()].filter(
        (e) => e.usedBy.hypervisor === POOL_HYPERVISOR && (e.usedBy.vm === poolDomain(pool) || (isGivenOut(e.usedBy.vm) && (memberNow.has(e.address) || known.has(e.address)))),
      );
      for (const entry of owned) {
        const device = present.get(entry.address);
        known.set(entry.address, {
          id: entry.address as PciAddress,
          numaNode: device?.numaNode ?? known.get(entry.address)?.numaNode ?? null,
          pf: device?.physfn ?? known.get(entry.address)?.pf ?? null,
          iommuGroup: device?.iommuGroup ?? known.get(entry.address)?.iommuGroup ?? null,
          healthy: device !== undefined && device.driver === entry.stubDriver,
        });
      }
      // A device that left the host (its entry pruned) stays listed, Unhealthy, so the kubelet
      // stops offering it at once; it turns Healthy again when it comes back and is readied.
      const ownedNow = new Set<string>(owned.map((e) => e.address));
      for (const [id, device] of known) if (!ownedNow.has(id) && device.healthy) known.set(id, { ...device, healthy: false });
      next.set(pool.name, [...known.values()].sort((a, b) => a.id.localeCompare(b.id)));
    }
    const before = this.devices;
    this.devices = next;
    for (const pool of this.pools) {
      if (JSON.stringify(before.get(pool.name) ?? []) === JSON.stringify(next.get(pool.name))) continue;
      for (const listener of this.listeners.get(pool.name) ?? []) listener();
    }
  }
}

/**
 * Keeps the tables saying which container holds which pool device. The kubelet has no Deallocate:
 * it is asked (PodResources List) which containers were allocated which devices; a pool device
 * allocated to a container is handed over to pod:NAMESPACE:POD:CONTAINER, and handed back to its
 * pool once it has been missing from every answer for `graceMs` (a kubelet that just restarted
 * answers before it knows its pods again; an unanswered List changes nothing and restarts the clock).
 */
class PodOwnership {
  private readonly missingSince = new Map<string, number>();

  constructor(
    private readonly service: HostdevService,
    private readonly state: PoolState,
    private readonly pools: readonly Pool[],
    private readonly socketPath: string,
    private readonly graceMs: number,
    private readonly log: (line: string) => void,
  ) {}

  async reconcile(): Promise<boolean> {
    let held: ContainerDevices[];
    try {
      held = await listPodDevices(this.socketPath);
    } catch {
      this.missingSince.clear();
      return false;
    }
    const resources = new Set(this.pools.map((pool) => pool.resourceName));
    const wanted = new Map<string, string>();
    for (const entry of held) {
      if (!resources.has(entry.resourceName)) continue;
      for (const id of entry.deviceIds) wanted.set(id, podDomain(entry));
    }
    const moves = new Map<string, { from: string; to: string; addresses: string[] }>();
    const move = (from: string, to: string, address: string): void => {
      const key = `${from}\n${to}`;
      const batch = moves.get(key) ?? { from, to, addresses: [] };
      batch.addresses.push(address);
      moves.set(key, batch);
    };
    const now = Date.now();
    const present = new Set<string>();
    for (const entry of (await this.service.status()).active) {
      if (entry.usedBy.hypervisor !== POOL_HYPERVISOR) continue;
      const pool = this.state.poolOf(entry.address);
      if (pool === null) continue;
      const holder = entry.usedBy.vm;
      const target = wanted.get(entry.address);
      if (target !== undefined) {
        present.add(entry.address);
        if (holder !== target) move(holder, target, entry.address);
      } else if (isPodDomain(holder)) {
        present.add(entry.address);
        const since = this.missingSince.get(entry.address) ?? now;
        this.missingSince.set(entry.address, since);
        if (now - since >= this.graceMs) move(holder, poolDomain(pool), entry.address);
      }
    }
    for (const address of [...this.missingSince.keys()]) {
      if (wanted.has(address) || !present.has(address)) this.missingSince.delete(address);
    }
    for (const { from, to, addresses } of moves.values()) {
      try {
        await this.service.handOver({ from: { domain: from, hypervisor: POOL_HYPERVISOR }, to: { domain: to, hypervisor: POOL_HYPERVISOR }, addresses });
        this.log(`${addresses.join(', ')}: ${from} -> ${to}`);
        for (const address of addresses) this.missingSince.delete(address);
      } catch (error) {
        this.log(`could not hand ${addresses.join(', ')} from ${from} to ${to}: ${(error as Error).message}`);
      }
    }
    return moves.size > 0;
  }
}

/**
 * The kubelet device plugin for every pool, until `signal` aborts: readies the pools, serves each on
 * its socket in the plugin directory, registers it with the kubelet, follows the host through the
 * service's watch (a device that leaves or drifts off its stub turns Unhealthy at once) and
 * re-registers when the kubelet restarts (it wipes the directory, our sockets with it).
 */
export async function runKubeletPlugin(options: KubeletPluginOptions): Promise<void> {
  const { service, pools, pluginDir, signal, log } = options;
  const state = new PoolState(service, pools, log);
  await state.refresh();
  const vfioDir = options.vfioDir ?? service.vfioDevDir;
  const podSocket = options.podResourcesSocket ?? null;
  const ownership = podSocket === null ? null : new PodOwnership(service, state, pools, podSocket, options.podGoneGraceMs ?? 10_000, log);
  let checking: Promise<void> | null = null;
  const checkPods = (): void => {
    if (ownership === null || checking !== null || signal.aborted) return;
    checking = ownership
      .reconcile()
      .then((moved) => (moved ? state.refresh() : undefined))
      .catch((error: unknown) => log(`pod check failed: ${(error as Error).message}`))
      .finally(() => (checking = null));
  };
  // An allocation shows in PodResources once Allocate has answered: look soon after, then on the timer.
  const allocated = (): void => {
    for (const ms of [200, 1_000, 3_000]) setTimeout(checkPods, ms).unref();
  };
  const servers = pools.map((pool) => ({
    pool,
    server: new DevicePluginServer(pool.resourceName, path.join(pluginDir, pluginSocketName(pool)), state.view(pool), {
      vfioDir,
      cdi: options.cdiDir !== undefined,
      onAllocated: allocated,
    }),
  }));
  if (options.cdiDir !== undefined) {
    const cdiDir = options.cdiDir;
    for (const pool of pools) {
      const view = state.view(pool);
      const write = (): Promise<void> =>
        writeCdiSpec(cdiSpecPath(cdiDir, pool.name), cdiSpec(view.devices(), vfioDir)).catch((error: unknown) =>
          log(`pool ${pool.name}: could not write its CDI spec: ${(error as Error).message}`),
        );
      await write();
      view.subscribe(() => void write());
    }
  }
  const serve = async (entry: (typeof servers)[number]): Promise<void> => {
    await entry.server.start();
    try {
      await registerWithKubelet(path.join(pluginDir, 'kubelet.sock'), pluginSocketName(entry.pool), entry.pool.resourceName);
      log(`pool ${entry.pool.name}: registered ${entry.pool.resourceName} with the kubelet (${state.view(entry.pool).devices().length} devices)`);
    } catch (error) {
      log(`pool ${entry.pool.name}: the kubelet did not take the registration yet (${(error as Error).message}); retrying when it restarts`);
    }
  };
  for (const entry of servers) await serve(entry);

  let refreshing: Promise<void> | null = null;
  let again = false;
  const refresh = (): void => {
    if (refreshing !== null) {
      again = true;
      return;
    }
    refreshing = state
      .refresh()
      .catch((error: unknown) => log(`refresh failed: ${(error as Error).message}`))
      .finally(() => {
        refreshing = null;
        if (again && !signal.aborted) {
          again = false;
          refresh();
        }
      });
  };
  let kubeletSeen = existsSync(path.join(pluginDir, 'kubelet.sock'));
  const restarting = new Set<string>();
  const restartCheck = setInterval(() => {
    const kubelet = existsSync(path.join(pluginDir, 'kubelet.sock'));
    for (const entry of servers) {
      if (!kubelet || restarting.has(entry.pool.name) || (kubeletSeen && existsSync(entry.server.socketPath))) continue;
      log(`pool ${entry.pool.name}: the kubelet (re)started; serving and registering again`);
      restarting.add(entry.pool.name);
      void entry.server
        .stop()
        .then(() => (signal.aborted ? undefined : serve(entry)))
        .catch((error: unknown) => log(`pool ${entry.pool.name}: ${(error as Error).message}`))
        .finally(() => restarting.delete(entry.pool.name));
    }
    kubeletSeen = kubelet;
  }, options.restartCheckMs ?? 250);
  const podTimer = ownership === null ? null : setInterval(checkPods, options.podCheckMs ?? 2_000);
  checkPods();
  let dra: DraDriver | null = null;
  try {
    if (options.dra !== undefined) {
      if (options.cdiDir === undefined) throw new Error('the DRA driver needs a CDI directory: prepared claims name CDI devices');
      dra = await DraDriver.start({ service, pools, state, log, ...options.dra });
      log(`DRA driver ${DRA_DRIVER}: ResourceSlices published for node ${options.dra.nodeName}; registration at ${dra.registrationSocket}`);
    }
    for await (const _event of service.watch({ signal, onNotice: (notice) => log(notice.message) })) refresh();
  } finally {
    await dra?.stop();
    clearInterval(restartCheck);
    if (podTimer !== null) clearInterval(podTimer);
    await checking;
    await refreshing;
    for (const entry of servers) await entry.server.stop();
  }
}

/** Gives every pool's devices back to their host drivers (`hostdev kubelet-plugin --teardown`), and removes the pools' CDI specs. */
export async function teardownPools(service: HostdevService, pools: readonly Pool[], log: (line: string) => void, cdiDir?: string): Promise<void> {
  if (cdiDir !== undefined) for (const pool of pools) await removeCdiSpec(cdiSpecPath(cdiDir, pool.name));
  const held = new Set((await service.status()).active.filter((e) => e.usedBy.hypervisor === POOL_HYPERVISOR).map((e) => e.usedBy.vm));
  for (const pool of pools) {
    if (!held.has(poolDomain(pool))) continue;
    const report = await service.release({ domain: poolDomain(pool), hypervisor: POOL_HYPERVISOR });
    log(`pool ${pool.name}: gave back ${report.released.join(', ') || 'nothing'}`);
  }
}
