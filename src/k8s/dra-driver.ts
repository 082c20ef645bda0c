import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { V1Device, V1DeviceAttribute, V1ResourceSlice } from '@kubernetes/client-node';
import type { Pool } from '../core/pools.js';
import type { HostdevService } from '../service/hostdev-service.js';
import { cdiDeviceName } from './cdi.js';
import type { PoolView } from './device-plugin.js';
import { DRA_PLUGIN_TYPE, DRA_SERVICE_V1, draService, registrationService, type ClaimRef, type PreparedDevice } from './dra-api.js';

/** The DRA driver name: ResourceSlices, DeviceClass selectors and the kubelet's registration use it. */
export const DRA_DRIVER = 'hostdev.io';
const HYPERVISOR = 'kubelet';

/** The domain a prepared claim's devices are held under (Kubernetes names hold no colon). */
export const claimDomain = (claim: Pick<ClaimRef, 'namespace' | 'name'>): string => `claim:${claim.namespace}:${claim.name}`;

/** A device's name in a ResourceSlice: a DNS label made of its PCI address. */
export const sliceDeviceName = (address: string): string => `pci-${address.replace(/[:.]/g, '-')}`;

/** What the DRA driver needs of the pools (the kubelet plugin's pool state). */
export interface PoolSource {
  view(pool: Pool): PoolView;
  poolOf(address: string): Pool | null;
}

export interface DraDriverOptions {
  readonly service: HostdevService;
  readonly pools: readonly Pool[];
  readonly state: PoolSource;
  readonly nodeName: string;
  /** The kubelet's root directory: plugins_registry/ and plugins/ are in it. */
  readonly kubeletDir: string;
  /** A kubeconfig file; absent: the in-cluster service account. */
  readonly kubeconfig?: string;
  /** How often the driver checks its ResourceSlices are still there (default 10000 ms). */
  readonly resyncMs?: number;
  /** The API server (default: through @kubernetes/client-node with `kubeconfig`). */
  readonly api?: KubeApi;
  readonly log: (line: string) => void;
}

/** The API calls the driver makes: ResourceSlices written whole, ResourceClaims read. */
export interface KubeApi {
  sliceExists(name: string): Promise<boolean>;
  putSlice(slice: ResourceSlice): Promise<void>;
  deleteSlice(name: string): Promise<void>;
  readClaim(namespace: string, name: string): Promise<AllocatedClaim | null>;
}

export interface AllocatedClaim {
  readonly uid: string;
  readonly results: readonly { readonly request: string; readonly driver: string; readonly pool: string; readonly device: string }[];
}

/** In client-node's model (it spells the attribute type int as `_int`), written whole. */
export type ResourceSlice = V1ResourceSlice & { metadata: { name: string } };

async function kubeApi(kubeconfig: string | undefined): Promise<KubeApi> {
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  if (kubeconfig === undefined) config.loadFromCluster();
  else config.loadFromFile(kubeconfig);
  const resource = config.makeApiClient(k8s.ResourceV1Api);
  const status = (error: unknown): number | undefined => (error as { code?: number }).code;
  return {
    async sliceExists(name) {
      try {
        await resource.readResourceSlice({ name });
        return true;
      } catch (error) {
        if (status(error) === 404) return false;
        throw error;
      }
    },
    async putSlice(slice) {
      try {
        const current = await resource.readResourceSlice({ name: slice.metadata.name });
        const resourceVersion = current.metadata?.resourceVersion;
        const body: V1ResourceSlice = { ...slice, metadata: { ...slice.metadata, ...(resourceVersion === undefined ? {} : { resourceVersion }) } };
        await resource.replaceResourceSlice({ name: slice.metadata.name, body });
      } catch (error) {
        if (status(error) !== 404) throw error;
        await resource.createResourceSlice({ body: slice });
      }
    },
    async deleteSlice(name) {
      try {
        await resource.deleteResourceSlice({ name });
      } catch (error) {
        if (status(error) !== 404) throw error;
      }
    },
    async readClaim(namespace, name) {
      try {
        const claim = await resource.readNamespacedResourceClaim({ namespace, name });
        return {
          uid: claim.metadata?.uid ?? '',
          results: (claim.status?.allocation?.devices?.results ?? []).map((r) => ({ request: r.request, driver: r.driver, pool: r.pool, device: r.device })),
        };
      } catch (error) {
        if (status(error) === 404) return null;
        throw error;
      }
    },
  };
}

/**
 * The DRA driver hostdev.io on one node: a ResourceSlice per pool (its free and claim-held devices
 * with their PCI attributes, kept current as the pool changes), the kubelet's plugin registration
 * (plugins_registry) and the DRA service v1. NodePrepareResources hands each allocated device from its
 * pool to claim:NAMESPACE:NAME and answers its CDI device; NodeUnprepareResources hands it back. The
 * tables are the record: a claim prepared before a restart is still prepared after it, and preparing
 * it again answers the same.
 */
export class DraDriver {
  private readonly servers: grpc.Server[] = [];
  private readonly publishing = new Map<string, Promise<void>>();
  private readonly generations = new Map<string, number>();
  private readonly unsubscribes: (() => void)[] = [];
  private resync: NodeJS.Timeout | null = null;

  private constructor(
    private readonly options: DraDriverOptions,
    private readonly api: KubeApi,
  ) {}

  static async start(options: DraDriverOptions): Promise<DraDriver> {
    const driver = new DraDriver(options, options.api ?? (await kubeApi(options.kubeconfig)));
    await driver.reclaimStranded();
    for (const pool of options.pools) {
      await driver.publish(pool);
      driver.unsubscribes.push(options.state.view(pool).subscribe(() => void driver.publish(pool)));
    }
    await driver.serve();
    // A kubelet that starts deletes every ResourceSlice of its node (until its drivers register
    // again): slices that went are published again.
    driver.resync = setInterval(() => void driver.republishMissing(), options.resyncMs ?? 10_000);
    driver.resync.unref();
    return driver;
  }

  /**
   * Devices held for claims that no longer exist, or whose allocation no longer names them (deleted
   * while no driver ran, so nobody unprepared them), go back to their pools.
   */
  private async reclaimStranded(): Promise<void> {
    const held = (await this.options.service.status()).active.filter((e) => e.usedBy.hypervisor === HYPERVISOR && e.usedBy.vm.startsWith('claim:'));
    const byClaim = new Map<string, string[]>();
    for (const entry of held) byClaim.set(entry.usedBy.vm, [...(byClaim.get(entry.usedBy.vm) ?? []), entry.address]);
    for (const [domain, addresses] of byClaim) {
      const [, namespace = '', name = ''] = domain.split(':');
      const claim = await this.api.readClaim(namespace, name);
      const allocated = new Set((claim?.results ?? []).filter((r) => r.driver === DRA_DRIVER).map((r) => r.device));
      const stranded = addresses.filter((address) => !allocated.has(sliceDeviceName(address)));
      for (const address of stranded) {
        const pool = this.options.state.poolOf(address);
        if (pool === null) continue;
        await this.options.service.handOver({ from: { domain, hypervisor: HYPERVISOR }, to: { domain: `pool-${pool.name}`, hypervisor: HYPERVISOR }, addresses: [address] });
        this.options.log(`${address}: ${domain} is gone; back to pool ${pool.name}`);
      }
    }
  }

  private async republishMissing(): Promise<void> {
    for (const pool of this.options.pools) {
      const present = await this.api.sliceExists(this.sliceName(pool)).catch(() => true);
      if (!present) {
        this.options.log(`pool ${pool.name}: its ResourceSlice is gone (a kubelet restart wipes them); publishing it again`);
        await this.publish(pool);
      }
    }
  }

  get registrationSocket(): string {
    return path.join(this.options.kubeletDir, 'plugins_registry', `${DRA_DRIVER}-reg.sock`);
  }

  get draSocket(): string {
    return path.join(this.options.kubeletDir, 'plugins', DRA_DRIVER, 'dra.sock');
  }

  sliceName(pool: Pool): string {
    return `${this.options.nodeName}-${DRA_DRIVER}-${pool.name}`;
  }

  poolName(pool: Pool): string {
    return `${this.options.nodeName}-${pool.name}`;
  }

  /** Publishes the pool's slice again (one write at a time per pool; the newest state wins). */
  publish(pool: Pool): Promise<void> {
    const previous = this.publishing.get(pool.name) ?? Promise.resolve();
    const next = previous.then(() =>
      this.writeSlice(pool).catch((error: unknown) => this.options.log(`pool ${pool.name}: could not publish its ResourceSlice: ${(error as Error).message}`)),
    );
    this.publishing.set(pool.name, next);
    return next;
  }

  private async writeSlice(pool: Pool): Promise<void> {
    const { report: inventory } = await this.options.service.list();
    const byAddress = new Map(inventory.map((d) => [d.address as string, d]));
    const holders = new Map((await this.options.service.status()).active.map((e) => [e.address as string, e.usedBy]));
    const devices: V1Device[] = [];
    for (const member of this.options.state.view(pool).devices()) {
      const holder = holders.get(member.id);
      // Devices containers hold through the device plugin are not the scheduler's to give.
      if (!member.healthy || holder === undefined || holder.hypervisor !== HYPERVISOR || holder.vm.startsWith('pod:')) continue;
      const device = byAddress.get(member.id);
      if (device === undefined) continue;
      const attributes: Record<string, V1DeviceAttribute> = { pciAddress: { string: device.address }, resourceName: { string: pool.resourceName } };
      if (device.vendor !== null) attributes['vendor'] = { string: device.vendor };
      if (device.device !== null) attributes['device'] = { string: device.device };
      if (device.class !== null) attributes['class'] = { string: device.class };
      if (device.numaNode !== null && device.numaNode >= 0) attributes['numaNode'] = { _int: device.numaNode };
      if (device.iommuGroup !== null) attributes['iommuGroup'] = { _int: device.iommuGroup };
      if (device.physfn !== null) {
        attributes['pf'] = { string: device.physfn };
        const vfIndex = byAddress.get(device.physfn)?.virtfns.indexOf(device.address) ?? -1;
        if (vfIndex >= 0) attributes['vfIndex'] = { _int: vfIndex };
      }
      devices.push({ name: sliceDeviceName(device.address), attributes });
    }
    const generation = (this.generations.get(pool.name) ?? 0) + 1;
    this.generations.set(pool.name, generation);
    await this.api.putSlice({
      apiVersion: 'resource.k8s.io/v1',
      kind: 'ResourceSlice',
      metadata: { name: this.sliceName(pool) },
      spec: { driver: DRA_DRIVER, nodeName: this.options.nodeName, pool: { name: this.poolName(pool), generation, resourceSliceCount: 1 }, devices },
    });
  }

  private async serve(): Promise<void> {
    const registration = new grpc.Server();
    registration.addService(registrationService().service, {
      GetInfo: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, { type: DRA_PLUGIN_TYPE, name: DRA_DRIVER, endpoint: this.draSocket, supported_versions: [DRA_SERVICE_V1] }),
      NotifyRegistrationStatus: (call: grpc.ServerUnaryCall<{ plugin_registered: boolean; error: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        this.options.log(call.request.plugin_registered ? `DRA driver ${DRA_DRIVER} registered with the kubelet` : `the kubelet refused the DRA driver: ${call.request.error}`);
        callback(null, {});
        if (call.request.plugin_registered) setTimeout(() => void this.republishMissing(), 2_000).unref();
      },
    });
    const dra = new grpc.Server();
    dra.addService(draService().service, {
      NodePrepareResources: (call: grpc.ServerUnaryCall<{ claims: ClaimRef[] }, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        void this.eachClaim(call.request.claims, (claim) => this.prepare(claim)).then((claims) => callback(null, { claims })),
      NodeUnprepareResources: (call: grpc.ServerUnaryCall<{ claims: ClaimRef[] }, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        void this.eachClaim(call.request.claims, async (claim) => {
          await this.unprepare(claim);
          return {};
        }).then((claims) => callback(null, { claims })),
    });
    // The DRA socket first: the kubelet dials it as soon as the registration socket answers.
    await bindUnix(dra, this.draSocket);
    await bindUnix(registration, this.registrationSocket);
    this.servers.push(dra, registration);
  }

  /** One answer per claim UID; a claim that fails carries its error (the kubelet retries it). */
  private async eachClaim<T extends object>(claims: readonly ClaimRef[], work: (claim: ClaimRef) => Promise<T>): Promise<Record<string, T | { error: string }>> {
    const answers: Record<string, T | { error: string }> = {};
    for (const claim of claims) {
      try {
        answers[claim.uid] = await work(claim);
      } catch (error) {
        const message = `claim ${claim.namespace}/${claim.name}: ${(error as Error).message}`;
        this.options.log(message);
        answers[claim.uid] = { error: message };
      }
    }
    return answers;
  }

  private async prepare(claim: ClaimRef): Promise<{ devices: PreparedDevice[] }> {
    const allocated = await this.api.readClaim(claim.namespace, claim.name);
    if (allocated === null || allocated.uid !== claim.uid) throw new Error(`no ResourceClaim ${claim.namespace}/${claim.name} with UID ${claim.uid}`);
    const to = { domain: claimDomain(claim), hypervisor: HYPERVISOR };
    const devices: PreparedDevice[] = [];
    const moves = new Map<string, string[]>();
    for (const result of allocated.results.filter((r) => r.driver === DRA_DRIVER)) {
      const pool = this.options.pools.find((p) => this.poolName(p) === result.pool);
      const member = pool?.name === undefined ? undefined : this.options.state.view(pool).devices().find((d) => sliceDeviceName(d.id) === result.device);
      if (pool === undefined || member === undefined) throw new Error(`${result.pool}/${result.device} is not a device this node offers`);
      moves.set(pool.name, [...(moves.get(pool.name) ?? []), member.id]);
      devices.push({ request_names: [result.request], pool_name: result.pool, device_name: result.device, cdi_device_ids: [cdiDeviceName(member.id)] });
    }
    for (const [poolName, addresses] of moves) {
      await this.options.service.handOver({ from: { domain: `pool-${poolName}`, hypervisor: HYPERVISOR }, to, addresses: await this.stillInPool(addresses, to.domain) });
      this.options.log(`claim ${claim.namespace}/${claim.name}: prepared ${addresses.join(', ')}`);
    }
    return { devices };
  }

  /** The addresses not yet held by the claim (a claim prepared again, after a restart, moves nothing). */
  private async stillInPool(addresses: readonly string[], domain: string): Promise<string[]> {
    const held = new Set((await this.options.service.status()).active.filter((e) => e.usedBy.vm === domain).map((e) => e.address as string));
    return addresses.filter((address) => !held.has(address));
  }

  private async unprepare(claim: ClaimRef): Promise<void> {
    const domain = claimDomain(claim);
    const held = (await this.options.service.status()).active.filter((e) => e.usedBy.hypervisor === HYPERVISOR && e.usedBy.vm === domain);
    const back = new Map<string, string[]>();
    for (const entry of held) {
      const pool = this.options.state.poolOf(entry.address);
      if (pool !== null) back.set(pool.name, [...(back.get(pool.name) ?? []), entry.address]);
    }
    for (const [poolName, addresses] of back) {
      await this.options.service.handOver({ from: { domain, hypervisor: HYPERVISOR }, to: { domain: `pool-${poolName}`, hypervisor: HYPERVISOR }, addresses });
      this.options.log(`claim ${claim.namespace}/${claim.name}: unprepared ${addresses.join(', ')}`);
    }
  }

  async stop(): Promise<void> {
    if (this.resync !== null) clearInterval(this.resync);
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    for (const server of this.servers.splice(0)) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    rmSync(this.registrationSocket, { force: true });
    rmSync(this.draSocket, { force: true });
    await Promise.all(this.publishing.values());
  }
}

async function bindUnix(server: grpc.Server, socket: string): Promise<void> {
  mkdirSync(path.dirname(socket), { recursive: true });
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
  );
}
