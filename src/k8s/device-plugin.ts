import { rmSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { PciAddress } from '../core/address.js';
import { preferredAllocation, type AllocationCandidate } from '../core/pools.js';
import { cdiDeviceName } from './cdi.js';
import { deviceplugin, HEALTHY, UNHEALTHY, type ContainerAllocateResponseMessage, type DeviceMessage } from './deviceplugin-api.js';

/** A device of a pool as the kubelet sees it. */
export interface PoolDevice extends AllocationCandidate {
  /** On the host, owned by its pool and on its stub driver. */
  readonly healthy: boolean;
}

/** What a pool's server asks of hostdev. */
export interface PoolView {
  devices(): readonly PoolDevice[];
  /** Called on every change of the pool's devices or their health; returns the unsubscribe. */
  subscribe(listener: () => void): () => void;
}

/** KubeVirt's spelling: PCI_RESOURCE_ + the resource name upper-cased, `.` and `/` as `_`. */
function resourceEnvName(resourceName: string): string {
  return `PCI_RESOURCE_${resourceName.toUpperCase().replace(/[./-]/g, '_')}`;
}

/**
 * What a container gets for its VFs: the addresses, and the VFIO container node and each group's
 * node read-write, either as device specs or, when the pool has CDI specs, as CDI device names.
 */
function containerAllocation(resourceName: string, devices: readonly PoolDevice[], options: DevicePluginOptions): ContainerAllocateResponseMessage {
  const vfioDir = options.vfioDir ?? '/dev/vfio';
  const groups = [...new Set(devices.map((d) => d.iommuGroup).filter((g): g is number => g !== null))].sort((a, b) => a - b);
  const nodes = ['vfio', ...groups.map(String)];
  return {
    envs: { [resourceEnvName(resourceName)]: devices.map((d) => d.id).join(',') },
    mounts: [],
    devices: options.cdi === true ? [] : nodes.map((name) => ({ container_path: `/dev/vfio/${name}`, host_path: `${vfioDir}/${name}`, permissions: 'rw' })),
    annotations: {},
    cdi_devices: options.cdi === true ? devices.map((d) => ({ name: cdiDeviceName(d.id) })) : [],
  };
}

export interface DevicePluginOptions {
  /** Where the host's VFIO nodes are (default /dev/vfio). */
  readonly vfioDir?: string;
  /** Allocate names CDI devices (the pool's CDI spec is written) instead of giving device specs. */
  readonly cdi?: boolean;
  /** Called after each Allocate the plugin answered. */
  readonly onAllocated?: () => void;
}

function listResponse(devices: readonly PoolDevice[]): { devices: DeviceMessage[] } {
  return {
    devices: devices.map((d) => ({
      ID: d.id,
      health: d.healthy ? HEALTHY : UNHEALTHY,
      topology: d.numaNode === null || d.numaNode < 0 ? null : { nodes: [{ ID: String(d.numaNode) }] },
    })),
  };
}

function refused(message: string): grpc.ServiceError {
  return Object.assign(new Error(message), { code: grpc.status.FAILED_PRECONDITION, details: message, metadata: new grpc.Metadata() });
}

/**
 * One pool's device plugin (v1beta1) on a unix socket: the full list on every change
 * (ListAndWatch), a preferred allocation by NUMA node, PF spread and IOMMU group, and Allocate,
 * which refuses a device that is not healthy (the kubelet then fails the pod instead of starting
 * it without the device).
 */
export class DevicePluginServer {
  private server: grpc.Server | null = null;
  private readonly streams = new Set<grpc.ServerWritableStream<unknown, unknown>>();

  constructor(
    readonly resourceName: string,
    readonly socketPath: string,
    private readonly view: PoolView,
    private readonly options: DevicePluginOptions = {},
  ) {}

  async start(): Promise<void> {
    rmSync(this.socketPath, { force: true });
    const server = new grpc.Server();
    const impl: grpc.UntypedServiceImplementation = {
      GetDevicePluginOptions: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, { pre_start_required: false, get_preferred_allocation_available: true }),
      ListAndWatch: (call: grpc.ServerWritableStream<unknown, unknown>) => this.listAndWatch(call),
      GetPreferredAllocation: (call: grpc.ServerUnaryCall<PreferredRequest, unknown>, callback: grpc.sendUnaryData<unknown>) =>
        callback(null, this.preferred(call.request)),
      Allocate: (call: grpc.ServerUnaryCall<AllocateRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        try {
          callback(null, this.allocate(call.request));
          this.options.onAllocated?.();
        } catch (error) {
          callback(error as grpc.ServiceError);
        }
      },
      PreStartContainer: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, {}),
    };
    server.addService(deviceplugin().DevicePlugin.service, impl);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix:${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())),
    );
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const stream of this.streams) stream.end();
    this.streams.clear();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }

  private listAndWatch(call: grpc.ServerWritableStream<unknown, unknown>): void {
    this.streams.add(call);
    const send = (): void => {
      if (!call.cancelled && !call.writableEnded) call.write(listResponse(this.view.devices()));
    };
    const unsubscribe = this.view.subscribe(send);
    const done = (): void => {
      unsubscribe();
      this.streams.delete(call);
    };
    call.on('cancelled', done);
    call.on('close', done);
    call.on('error', done);
    send();
  }

  private preferred(request: PreferredRequest): { container_responses: { deviceIDs: string[] }[] } {
    const known = new Map(this.view.devices().map((d) => [d.id as string, d]));
    return {
      container_responses: request.container_requests.map((container) => {
        const available = container.available_deviceIDs.flatMap((id) => known.get(id) ?? []);
        return { deviceIDs: preferredAllocation(available, container.must_include_deviceIDs as PciAddress[], container.allocation_size) };
      }),
    };
  }

  private allocate(request: AllocateRequest): { container_responses: ContainerAllocateResponseMessage[] } {
    const known = new Map(this.view.devices().map((d) => [d.id as string, d]));
    return {
      container_responses: request.container_requests.map((container) => {
        const devices = container.devices_ids.map((id) => {
          const device = known.get(id);
          if (device === undefined) throw refused(`${id} is not a device of ${this.resourceName}`);
          if (!device.healthy) throw refused(`${id} (${this.resourceName}) is unhealthy: gone from the host, or off its VFIO driver`);
          return device;
        });
        return containerAllocation(this.resourceName, devices, this.options);
      }),
    };
  }
}

interface PreferredRequest {
  readonly container_requests: readonly {
    readonly available_deviceIDs: readonly string[];
    readonly must_include_deviceIDs: readonly string[];
    readonly allocation_size: number;
  }[];
}

interface AllocateRequest {
  readonly container_requests: readonly { readonly devices_ids: readonly string[] }[];
}

/** Registers a plugin's socket with the kubelet (Registration/Register on kubelet.sock). */
export async function registerWithKubelet(kubeletSocket: string, endpoint: string, resourceName: string, timeoutMs = 5_000): Promise<void> {
  const client = new (deviceplugin().Registration)(`unix:${kubeletSocket}`, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) => {
      client.waitForReady(Date.now() + timeoutMs, (error) => (error ? reject(error) : resolve()));
    });
    await new Promise<void>((resolve, reject) => {
      (client as unknown as { Register: (req: unknown, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void }).Register(
        { version: 'v1beta1', endpoint, resource_name: resourceName, options: { pre_start_required: false, get_preferred_allocation_available: true } },
        { deadline: Date.now() + timeoutMs },
        (error) => (error ? reject(error) : resolve()),
      );
    });
  } finally {
    client.close();
  }
}
