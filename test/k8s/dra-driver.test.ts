import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { draService, registrationService } from '../../src/k8s/dra-api.js';
import type { AllocatedClaim, KubeApi, ResourceSlice } from '../../src/k8s/dra-driver.js';
import { runKubeletPlugin } from '../../src/k8s/kubelet-plugin.js';
import { parsePoolConfig } from '../../src/k8s/pool-config.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { until } from '../support/until.js';

// The DRA driver on a simulated host, with an API server held in memory and the kubelet's calls made
// over the driver's real sockets (registration, then DRA v1), as the kubelet's plugin manager makes them.

const POOLS = 'pools:\n  - name: igb-vf\n    resourceName: hostdev.io/igb-vf\n    selectors:\n      - { driver: igbvf }\n';

class MemoryApi implements KubeApi {
  readonly slices = new Map<string, ResourceSlice>();
  readonly claims = new Map<string, AllocatedClaim>();
  async sliceExists(name: string): Promise<boolean> {
    return this.slices.has(name);
  }
  async putSlice(slice: ResourceSlice): Promise<void> {
    this.slices.set(slice.metadata.name, slice);
  }
  async deleteSlice(name: string): Promise<void> {
    this.slices.delete(name);
  }
  async readClaim(namespace: string, name: string): Promise<AllocatedClaim | null> {
    return this.claims.get(`${namespace}/${name}`) ?? null;
  }
}

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
const call = <T>(client: Client, method: string, request: unknown): Promise<T> =>
  new Promise((resolve, reject) => client[method]!(request, (error: Error | null, reply: T) => (error ? reject(error) : resolve(reply))));


describe('the DRA driver hostdev.io', () => {
  let base = '';
  let kubeletDir = '';
  let service: HostdevService;
  let api: MemoryApi;
  let stop: AbortController;
  let running: Promise<void>;
  const log: string[] = [];

  const start = (): void => {
    stop = new AbortController();
    running = runKubeletPlugin({
      service,
      pools: parsePoolConfig(POOLS, 'pools.yaml'),
      pluginDir: path.join(base, 'device-plugins'),
      signal: stop.signal,
      log: (line) => log.push(line),
      vfioDir: '/dev/vfio',
      cdiDir: path.join(base, 'cdi'),
      dra: { nodeName: 'node-a', kubeletDir, api },
    });
  };
  const holders = async (): Promise<Record<string, string>> => Object.fromEntries((await service.status()).active.map((e) => [e.address, e.usedBy.vm]));
  const dra = (): Client => new (draService())(`unix:${path.join(kubeletDir, 'plugins/hostdev.io/dra.sock')}`, grpc.credentials.createInsecure()) as unknown as Client;

  beforeEach(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-dra-'));
    kubeletDir = path.join(base, 'kubelet');
    mkdirSync(path.join(base, 'device-plugins'));
    createSimulatedHost(path.join(base, 'host'), { preset: 'sriov-nic' });
    service = await HostdevService.open({ ...simulatedHost(path.join(base, 'host')), stateDir: path.join(base, 'state') });
    api = new MemoryApi();
    log.length = 0;
    start();
    await until(() => api.slices.size > 0);
  });
  afterEach(async () => {
    stop.abort();
    await running;
    service.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('publishes the pool as a ResourceSlice and registers as a v1.DRAPlugin', async () => {
    const slice = api.slices.get('node-a-hostdev.io-igb-vf')!;
    expect(slice.spec).toMatchObject({ driver: 'hostdev.io', nodeName: 'node-a', pool: { name: 'node-a-igb-vf', resourceSliceCount: 1 } });
    expect(slice.spec.devices!.map((d) => d.name)).toEqual(['pci-0000-01-10-0', 'pci-0000-01-10-1', 'pci-0000-01-10-2', 'pci-0000-01-10-3']);
    expect(slice.spec.devices![1]!.attributes).toMatchObject({ pciAddress: { string: '0000:01:10.1' }, vendor: { string: '8086' }, pf: { string: '0000:01:00.1' }, vfIndex: { _int: 0 } });
    const registration = new (registrationService())(`unix:${path.join(kubeletDir, 'plugins_registry/hostdev.io-reg.sock')}`, grpc.credentials.createInsecure()) as unknown as Client;
    const info = await call<Record<string, unknown>>(registration, 'GetInfo', {});
    expect(info).toEqual({ type: 'DRAPlugin', name: 'hostdev.io', endpoint: path.join(kubeletDir, 'plugins/hostdev.io/dra.sock'), supported_versions: ['v1.DRAPlugin'] });
    registration.close();
  });

  it('prepares a claim (its device to claim:NS:NAME, its CDI device answered), again the same, and unprepares it', async () => {
    api.claims.set('default/c1', { uid: 'u1', results: [{ request: 'vf', driver: 'hostdev.io', pool: 'node-a-igb-vf', device: 'pci-0000-01-10-2' }] });
    const client = dra();
    const claims = [{ namespace: 'default', uid: 'u1', name: 'c1' }];
    const prepared = { claims: { u1: { devices: [{ request_names: ['vf'], pool_name: 'node-a-igb-vf', device_name: 'pci-0000-01-10-2', cdi_device_ids: ['hostdev.io/vfio=0000:01:10.2'] }], error: '' } } };
    expect(await call(client, 'NodePrepareResources', { claims })).toEqual(prepared);
    expect((await holders())['0000:01:10.2']).toBe('claim:default:c1');
    expect(await call(client, 'NodePrepareResources', { claims })).toEqual(prepared);
    const wrongUid = await call<{ claims: Record<string, { error: string }> }>(client, 'NodePrepareResources', { claims: [{ namespace: 'default', uid: 'other', name: 'c1' }] });
    expect(wrongUid.claims['other']!.error).toMatch(/no ResourceClaim default\/c1 with UID other/);
    expect(await call(client, 'NodeUnprepareResources', { claims })).toEqual({ claims: { u1: { error: '' } } });
    expect((await holders())['0000:01:10.2']).toBe('pool-igb-vf');
    client.close();
  });

  it('at start, gives back to the pool a device held for a claim that is gone; keeps one whose claim still names it', async () => {
    api.claims.set('default/kept', { uid: 'k', results: [{ request: 'vf', driver: 'hostdev.io', pool: 'node-a-igb-vf', device: 'pci-0000-01-10-0' }] });
    const client = dra();
    await call(client, 'NodePrepareResources', { claims: [{ namespace: 'default', uid: 'k', name: 'kept' }] });
    client.close();
    await service.handOver({ from: { domain: 'pool-igb-vf', hypervisor: 'kubelet' }, to: { domain: 'claim:default:gone', hypervisor: 'kubelet' }, addresses: ['0000:01:10.3'] });
    stop.abort();
    await running;
    start();
    await until(async () => (await holders())['0000:01:10.3'] === 'pool-igb-vf');
    expect(await holders()).toMatchObject({ '0000:01:10.0': 'claim:default:kept', '0000:01:10.3': 'pool-igb-vf' });
    expect(log).toContain('0000:01:10.3: claim:default:gone is gone; back to pool igb-vf');
  });

  it('publishes its slice again when it is deleted (a kubelet that starts wipes them)', async () => {
    api.slices.clear();
    const registration = new (registrationService())(`unix:${path.join(kubeletDir, 'plugins_registry/hostdev.io-reg.sock')}`, grpc.credentials.createInsecure()) as unknown as Client;
    await call(registration, 'NotifyRegistrationStatus', { plugin_registered: true, error: '' });
    registration.close();
    await until(() => api.slices.size === 1, 5_000);
  });
});
