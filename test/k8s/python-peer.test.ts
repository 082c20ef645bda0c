import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEVICE_PLUGIN_PROTO } from '../../src/k8s/deviceplugin-api.js';
import { runKubeletPlugin } from '../../src/k8s/kubelet-plugin.js';
import { parsePoolConfig } from '../../src/k8s/pool-config.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';

// Wire compatibility with a second gRPC stack: Python's grpcio (Debian's python3-grpcio) with
// message classes Debian's protoc generates from the same definition, as the kubelet's side of
// both services: it registers nothing itself but takes our Register, and it calls the plugin.

const PYTHON = '/usr/bin/python3';
const PEER = fileURLToPath(new URL('./peer/device_plugin_peer.py', import.meta.url));
const POOLS = 'pools:\n  - name: igb-vf\n    resourceName: hostdev.io/igb-vf\n    selectors:\n      - { driver: igbvf }\n';
const missing = spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore' }).status !== 0 || spawnSync('protoc', ['--version'], { stdio: 'ignore' }).status !== 0;

function runPython(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe.skipIf(missing)('the device plugin against Python grpcio (python3-grpcio, protoc)', () => {
  let base = '';
  let generated = '';
  let service: HostdevService;
  let stop: AbortController;
  let running: Promise<void> | null = null;

  beforeEach(async () => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-grpc-peer-'));
    generated = path.join(base, 'gen');
    mkdirSync(generated);
    writeFileSync(path.join(generated, 'deviceplugin.proto'), DEVICE_PLUGIN_PROTO);
    execFileSync('protoc', [`--python_out=${generated}`, `-I${generated}`, path.join(generated, 'deviceplugin.proto')]);
    createSimulatedHost(path.join(base, 'host'), { preset: 'sriov-nic' });
    service = await HostdevService.open({ ...simulatedHost(path.join(base, 'host')), stateDir: path.join(base, 'state') });
    stop = new AbortController();
  });
  afterEach(async () => {
    stop.abort();
    await running;
    service.close();
    rmSync(base, { recursive: true, force: true });
  });

  it('a Python kubelet takes our Register, then calls the plugin: options, list, preferred allocation, Allocate', async () => {
    const pluginDir = path.join(base, 'device-plugins');
    mkdirSync(pluginDir);
    const kubelet = spawn(PYTHON, [PEER, generated, 'kubelet', path.join(pluginDir, 'kubelet.sock')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let kubeletOut = '';
    let kubeletErr = '';
    kubelet.stdout.setEncoding('utf8').on('data', (d: string) => (kubeletOut += d));
    kubelet.stderr.setEncoding('utf8').on('data', (d: string) => (kubeletErr += d));
    const kubeletDone = new Promise<number | null>((resolve) => kubelet.on('close', resolve));
    for (let i = 0; i < 200 && !kubeletOut.includes('listening'); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(kubeletOut, kubeletErr).toContain('listening');

    running = runKubeletPlugin({ service, pools: parsePoolConfig(POOLS, 'pools.yaml'), pluginDir, signal: stop.signal, log: () => undefined, vfioDir: '/dev/vfio' });
    expect(await kubeletDone, kubeletErr).toBe(0);
    const registered = JSON.parse(kubeletOut.split('\n')[1]!) as { register: Record<string, unknown> };
    expect(registered.register).toEqual({
      version: 'v1beta1',
      endpoint: 'hostdev-igb-vf.sock',
      resource_name: 'hostdev.io/igb-vf',
      options: { get_preferred_allocation_available: true },
    });

    // Not spawnSync: the plugin answering the peer runs on this process's event loop.
    const run = await runPython([PEER, generated, 'client', path.join(pluginDir, 'hostdev-igb-vf.sock'), '0000:01:10.1']);
    expect(run.status, run.stderr).toBe(0);
    const replies = Object.assign({}, ...run.stdout.trim().split('\n').map((line) => JSON.parse(line) as object)) as {
      options: Record<string, unknown>;
      list: { devices: { ID: string; health: string; topology: unknown }[] };
      preferred: { container_responses: { deviceIDs: string[] }[] };
      allocate: { container_responses: { envs: Record<string, string>; devices: { container_path: string; host_path: string; permissions: string }[] }[] };
    };
    expect(replies.options).toEqual({ get_preferred_allocation_available: true });
    expect(replies.list.devices.map((d) => [d.ID, d.health])).toEqual([
      ['0000:01:10.0', 'Healthy'],
      ['0000:01:10.1', 'Healthy'],
      ['0000:01:10.2', 'Healthy'],
      ['0000:01:10.3', 'Healthy'],
    ]);
    expect(replies.list.devices[0]!.topology).toEqual({ nodes: [{}] });
    expect(replies.preferred.container_responses[0]!.deviceIDs).toHaveLength(2);
    const group = (await service.list()).report.find((d) => d.address === '0000:01:10.1')!.iommuGroup;
    expect(replies.allocate.container_responses[0]).toEqual({
      envs: { PCI_RESOURCE_HOSTDEV_IO_IGB_VF: '0000:01:10.1' },
      devices: [
        { container_path: '/dev/vfio/vfio', host_path: '/dev/vfio/vfio', permissions: 'rw' },
        { container_path: `/dev/vfio/${group}`, host_path: `/dev/vfio/${group}`, permissions: 'rw' },
      ],
    });
  });
});
