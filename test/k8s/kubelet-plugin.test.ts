import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceplugin } from '../../src/k8s/deviceplugin-api.js';
import { runKubeletPlugin, teardownPools } from '../../src/k8s/kubelet-plugin.js';
import { podResourcesLister } from '../../src/k8s/podresources-api.js';
import { parsePoolConfig } from '../../src/k8s/pool-config.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { until } from '../support/until.js';
import { runCliAsync } from '../support/cli.js';

// The kubelet device plugin on a simulated host, against a stand-in kubelet that speaks the real
// Registration service over grpc-js and a DevicePlugin client on the plugin's socket, as the
// kubelet's device manager calls it.

const POOLS = `
pools:
  - name: igb-vf
    resourceName: hostdev.io/igb-vf
    selectors:
      - { driver: igbvf }
`;

interface Registered {
  readonly version: string;
  readonly endpoint: string;
  readonly resource_name: string;
}

/** The kubelet's side of registration: a Registration server on kubelet.sock that records what it was told. */
async function fakeKubelet(dir: string, registered: Registered[]): Promise<grpc.Server> {
  const server = new grpc.Server();
  server.addService(deviceplugin().Registration.service, {
    Register: (call: grpc.ServerUnaryCall<Registered, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      registered.push(call.request);
      callback(null, {});
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${path.join(dir, 'kubelet.sock')}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())),
  );
  return server;
}

/** What the stand-in kubelet answers to PodResourcesLister/List (null: it is down). */
type PodDevices = { namespace: string; name: string; container: string; ids: string[] }[] | null;

async function fakePodResources(socket: string, answer: () => PodDevices): Promise<grpc.Server> {
  const server = new grpc.Server();
  server.addService(podResourcesLister().service, {
    List: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const pods = answer();
      if (pods === null) {
        callback({ code: grpc.status.UNAVAILABLE, details: 'kubelet restarting' } as grpc.ServiceError);
        return;
      }
      callback(null, {
        pod_resources: pods.map((pod) => ({
          name: pod.name,
          namespace: pod.namespace,
          containers: [{ name: pod.container, devices: [{ resource_name: 'hostdev.io/igb-vf', device_ids: pod.ids }, { resource_name: 'other.io/x', device_ids: ['0000:01:10.3'] }] }],
        })),
      });
    },
  });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  return server;
}

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function pluginClient(socket: string): Client {
  return new (deviceplugin().DevicePlugin)(`unix:${socket}`, grpc.credentials.createInsecure()) as unknown as Client;
}

function unary<T>(client: Client, method: string, request: unknown): Promise<T> {
  return new Promise((resolve, reject) => client[method]!(request, (error: Error | null, reply: T) => (error ? reject(error) : resolve(reply))));
}


describe('hostdev kubelet-plugin (device plugin v1beta1)', () => {
  let base = '';
  let root = '';
  let pluginDir = '';
  let service: HostdevService;
  let kubelet: grpc.Server | null = null;
  let podResources: grpc.Server | null = null;
  let pods: PodDevices = [];
  let stop: AbortController;
  let running: Promise<void>;
  const registered: Registered[] = [];
  const log: string[] = [];

  beforeEach(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-k8s-'));
    root = path.join(base, 'host');
    pluginDir = path.join(base, 'device-plugins');
    mkdirSync(pluginDir);
    createSimulatedHost(root, { preset: 'sriov-nic' });
    service = await HostdevService.open({ ...simulatedHost(root), stateDir: path.join(base, 'state') });
    registered.length = 0;
    log.length = 0;
    kubelet = await fakeKubelet(pluginDir, registered);
    pods = [];
    podResources = await fakePodResources(path.join(base, 'pod-resources.sock'), () => pods);
    stop = new AbortController();
    running = runKubeletPlugin({
      service,
      pools: parsePoolConfig(POOLS, 'pools.yaml'),
      pluginDir,
      signal: stop.signal,
      log: (l) => log.push(l),
      vfioDir: '/dev/vfio',
      podResourcesSocket: path.join(base, 'pod-resources.sock'),
      podCheckMs: 50,
      podGoneGraceMs: 300,
    });
    await until(() => registered.length > 0);
  });
  afterEach(async () => {
    stop.abort();
    await running;
    kubelet?.forceShutdown();
    podResources?.forceShutdown();
    service.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('readies the pool, registers it, and lists its devices healthy with their NUMA node', async () => {
    expect(registered[0]).toEqual({ version: 'v1beta1', endpoint: 'hostdev-igb-vf.sock', resource_name: 'hostdev.io/igb-vf', options: { pre_start_required: false, get_preferred_allocation_available: true } });
    const status = await service.status();
    expect(status.active.map((e) => [e.address, e.usedBy.driver, e.usedBy.domain, e.stubDriver])).toEqual([
      ['0000:01:10.0', 'kubelet', 'pool-igb-vf', 'vfio-pci'],
      ['0000:01:10.1', 'kubelet', 'pool-igb-vf', 'vfio-pci'],
      ['0000:01:10.2', 'kubelet', 'pool-igb-vf', 'vfio-pci'],
      ['0000:01:10.3', 'kubelet', 'pool-igb-vf', 'vfio-pci'],
    ]);
    const client = pluginClient(path.join(pluginDir, 'hostdev-igb-vf.sock'));
    const options = await unary(client, 'GetDevicePluginOptions', {});
    expect(options).toEqual({ pre_start_required: false, get_preferred_allocation_available: true });
    const stream = client['ListAndWatch']!({}) as grpc.ClientReadableStream<{ devices: { ID: string; health: string; topology: unknown }[] }>;
    stream.on('error', () => undefined); // the cancel below ends it with CANCELLED
    const first = await new Promise<{ devices: { ID: string; health: string; topology: unknown }[] }>((resolve) => stream.once('data', resolve));
    expect(first.devices.map((d) => [d.ID, d.health])).toEqual([
      ['0000:01:10.0', 'Healthy'],
      ['0000:01:10.1', 'Healthy'],
      ['0000:01:10.2', 'Healthy'],
      ['0000:01:10.3', 'Healthy'],
    ]);
    expect(first.devices[0]!.topology).toEqual({ nodes: [{ ID: '0' }] });
    stream.cancel();
    client.close();
  });

  it('allocates /dev/vfio and the groups with PCI_RESOURCE_ (KubeVirt), prefers one PF per device, and refuses an unknown device', async () => {
    const client = pluginClient(path.join(pluginDir, 'hostdev-igb-vf.sock'));
    const preferred = await unary<{ container_responses: { deviceIDs: string[] }[] }>(client, 'GetPreferredAllocation', {
      container_requests: [{ available_deviceIDs: ['0000:01:10.0', '0000:01:10.1', '0000:01:10.2', '0000:01:10.3'], must_include_deviceIDs: [], allocation_size: 2 }],
    });
    const pick = preferred.container_responses[0]!.deviceIDs;
    expect(pick).toHaveLength(2);
    const pfs = new Set((await service.list()).report.filter((d) => pick.includes(d.address)).map((d) => d.physfn));
    expect(pfs.size).toBe(2);
    const groups = (await service.list()).report.filter((d) => pick.includes(d.address)).map((d) => d.iommuGroup);
    const allocated = await unary<{ container_responses: { envs: Record<string, string>; devices: { host_path: string; permissions: string }[] }[] }>(client, 'Allocate', {
      container_requests: [{ devices_ids: pick }],
    });
    const container = allocated.container_responses[0]!;
    expect(container.envs).toEqual({ PCI_RESOURCE_HOSTDEV_IO_IGB_VF: pick.join(',') });
    expect(container.devices.map((d) => d.host_path)).toEqual(['/dev/vfio/vfio', ...[...new Set(groups)].sort((a, b) => a! - b!).map((g) => `/dev/vfio/${g}`)]);
    expect(container.devices.every((d) => d.permissions === 'rw')).toBe(true);
    const refused = await unary(client, 'Allocate', { container_requests: [{ devices_ids: ['0000:09:00.0'] }] }).catch((e: grpc.ServiceError) => e);
    expect((refused as grpc.ServiceError).code).toBe(grpc.status.FAILED_PRECONDITION);
    client.close();
  });

  it('turns VFs Unhealthy at once when their PF drops them, and refuses to allocate them', async () => {
    const client = pluginClient(path.join(pluginDir, 'hostdev-igb-vf.sock'));
    const stream = client['ListAndWatch']!({}) as grpc.ClientReadableStream<{ devices: { ID: string; health: string }[] }>;
    stream.on('error', () => undefined); // the cancel below ends it with CANCELLED
    const lists: { ID: string; health: string }[][] = [];
    stream.on('data', (reply: { devices: { ID: string; health: string }[] }) => lists.push(reply.devices));
    await until(() => lists.length > 0);
    const run = await runCliAsync(['--root', root, '--simulate', 'sim', 'write', '/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs', '0']);
    expect(run.code, run.stderr).toBe(0);
    // "at once": on the PCI remove events, with no poll in between; the bound tells "live" from "never", with room for a loaded CI machine
    const last = await until(() => {
      const latest = lists.at(-1)!;
      return latest.filter((d) => d.health === 'Unhealthy').length === 2 ? latest : null;
    }, 25_000);
    expect(last.map((d) => [d.ID, d.health])).toEqual([
      ['0000:01:10.0', 'Unhealthy'],
      ['0000:01:10.1', 'Healthy'],
      ['0000:01:10.2', 'Unhealthy'],
      ['0000:01:10.3', 'Healthy'],
    ]);
    const refused = await unary(client, 'Allocate', { container_requests: [{ devices_ids: ['0000:01:10.0'] }] }).catch((e: grpc.ServiceError) => e);
    expect((refused as grpc.ServiceError).details).toMatch(/unhealthy/);
    stream.cancel();
    client.close();
  });

  it('registers again when the kubelet restarts and wipes its directory (its check runs every 250 ms)', async () => {
    kubelet!.forceShutdown();
    for (const name of readdirSync(pluginDir)) rmSync(path.join(pluginDir, name), { force: true });
    const before = registered.length;
    kubelet = await fakeKubelet(pluginDir, registered);
    // The delay itself is not a unit test's to bound tightly on a shared 2-core machine: this tells "live" from "never".
    await until(() => registered.length > before, 20_000);
    expect(registered.at(-1)!.endpoint).toBe('hostdev-igb-vf.sock');
  });

  it('hands an allocated VF to its container (PodResources) and back to the pool once the pod is gone for the grace', async () => {
    const holders = async (): Promise<Record<string, string>> =>
      Object.fromEntries((await service.status()).active.map((e) => [e.address, e.usedBy.vm]));
    pods = [{ namespace: 'default', name: 'web-0', container: 'app', ids: ['0000:01:10.1'] }];
    await until(async () => (await holders())['0000:01:10.1'] === 'pod:default:web-0:app', 5_000);
    const held = await holders();
    // Only the listed device of our resource moves; another resource's IDs are not ours to take.
    expect(held).toEqual({ '0000:01:10.0': 'pool-igb-vf', '0000:01:10.1': 'pod:default:web-0:app', '0000:01:10.2': 'pool-igb-vf', '0000:01:10.3': 'pool-igb-vf' });
    // A kubelet that does not answer changes nothing, however long.
    pods = null;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect((await holders())['0000:01:10.1']).toBe('pod:default:web-0:app');
    // Missing from the answers: back to the pool only after the grace, and still listed healthy meanwhile.
    pods = [];
    const gone = Date.now();
    await until(async () => (await holders())['0000:01:10.1'] === 'pool-igb-vf', 5_000);
    expect(Date.now() - gone).toBeGreaterThanOrEqual(300);
    expect(log).toContain('0000:01:10.1: pod:default:web-0:app -> pool-igb-vf');
  });

  it('with a CDI directory: one spec per pool (a device per VF, its group node and the container node), and Allocate names CDI devices', async () => {
    stop.abort();
    await running;
    const cdiDir = path.join(base, 'cdi');
    stop = new AbortController();
    const before = registered.length;
    running = runKubeletPlugin({ service, pools: parsePoolConfig(POOLS, 'pools.yaml'), pluginDir, signal: stop.signal, log: (l) => log.push(l), vfioDir: '/srv/host/dev/vfio', cdiDir });
    await until(() => registered.length > before);
    const spec = JSON.parse(readFileSync(path.join(cdiDir, 'hostdev-igb-vf.json'), 'utf8')) as {
      cdiVersion: string;
      kind: string;
      devices: { name: string; containerEdits: { deviceNodes: { path: string; hostPath: string; permissions: string }[] } }[];
    };
    const groups = new Map((await service.list()).report.map((d) => [d.address as string, d.iommuGroup]));
    expect(spec.kind).toBe('hostdev.io/vfio');
    expect(spec.devices.map((d) => d.name)).toEqual(['0000:01:10.0', '0000:01:10.1', '0000:01:10.2', '0000:01:10.3']);
    expect(spec.devices[1]!.containerEdits.deviceNodes).toEqual([
      { path: '/dev/vfio/vfio', hostPath: '/srv/host/dev/vfio/vfio', permissions: 'rw' },
      { path: `/dev/vfio/${groups.get('0000:01:10.1')}`, hostPath: `/srv/host/dev/vfio/${groups.get('0000:01:10.1')}`, permissions: 'rw' },
    ]);
    const client = pluginClient(path.join(pluginDir, 'hostdev-igb-vf.sock'));
    const allocated = await unary<{ container_responses: { envs: Record<string, string>; devices: unknown[]; cdi_devices: { name: string }[] }[] }>(client, 'Allocate', {
      container_requests: [{ devices_ids: ['0000:01:10.1'] }],
    });
    expect(allocated.container_responses[0]).toMatchObject({
      envs: { PCI_RESOURCE_HOSTDEV_IO_IGB_VF: '0000:01:10.1' },
      devices: [],
      cdi_devices: [{ name: 'hostdev.io/vfio=0000:01:10.1' }],
    });
    client.close();
    stop.abort();
    await running;
    await teardownPools(service, parsePoolConfig(POOLS, 'pools.yaml'), () => undefined, cdiDir);
    expect(existsSync(path.join(cdiDir, 'hostdev-igb-vf.json'))).toBe(false);
  });

  it('--teardown gives the pool back to the host drivers', async () => {
    stop.abort();
    await running;
    await teardownPools(service, parsePoolConfig(POOLS, 'pools.yaml'), () => undefined);
    expect((await service.status()).active).toEqual([]);
    const drivers = (await service.list({ driver: 'igbvf' })).report.map((d) => d.address);
    expect(drivers).toEqual(['0000:01:10.0', '0000:01:10.1', '0000:01:10.2', '0000:01:10.3']);
  });
});
