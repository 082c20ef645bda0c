import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CLI_BIN, runCli } from '../support/cli.js';
import { Cluster, DEVICE_PLUGIN_DIR, NODE_NAME, type ClusterPaths } from './cluster.js';

// hostdev's device plugin against a real kubelet, API server, etcd and containerd on loopback, with
// the devices on a simulated host: what the cluster sees is checked from the API server's side.

const RESOURCE = 'hostdev.io/igb-vf';
const PF0 = '0000:01:00.0';
const PF0_VFS = ['0000:01:10.0', '0000:01:10.2'];
const ALL_VFS = ['0000:01:10.0', '0000:01:10.1', '0000:01:10.2', '0000:01:10.3'];

export function clusterPaths(): ClusterPaths {
  const cache = process.env['HOSTDEV_K8S_CACHE'] ?? '/var/cache/hostdev-k8s';
  return {
    debs: process.env['HOSTDEV_K8S_DEBS'] ?? path.join(cache, 'debs'),
    k8s: process.env['HOSTDEV_K8S_BIN'] ?? path.join(cache, process.env['HOSTDEV_K8S_VERSION'] ?? 'v1.34.4'),
    images: process.env['HOSTDEV_K8S_IMAGES'] ?? path.join(cache, 'images'),
  };
}

const base = mkdtempSync(path.join(tmpdir(), 'hostdev-k8s-cluster-'));
const cluster = new Cluster(path.join(base, 'cluster'), clusterPaths());
const sim = path.join(base, 'host');
const state = path.join(base, 'state');
const pools = path.join(base, 'pools.yaml');
const hostdev = (...args: string[]) => runCli(['--root', sim, '--state-dir', state, '--simulate', ...args]);
let plugin: ChildProcess | null = null;
const draArgs = ['--cdi-dir', cluster.cdiDir, '--dra', '--node-name', NODE_NAME, '--kubelet-dir', cluster.kubeletRoot, '--kubeconfig', cluster.kubeconfigPath];

function startPlugin(extra: readonly string[] = []): ChildProcess {
  const fd = openSync(path.join(cluster.logDir, 'hostdev-plugin.log'), 'a');
  const child = spawn(
    process.execPath,
    [CLI_BIN, '--root', sim, '--state-dir', state, '--simulate', 'kubelet-plugin', '--config', pools, '--pod-resources-socket', cluster.podResourcesSocket, '--pod-grace', '3000', ...extra],
    { stdio: ['ignore', fd, fd] },
  );
  closeSync(fd);
  return child;
}

async function stopPlugin(signal: NodeJS.Signals): Promise<void> {
  const child = plugin;
  plugin = null;
  if (child === null || child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

/**
 * The VFIO nodes of the simulated host are plain files; the container runtime passes only device
 * nodes, so they are made character devices (the null device's numbers) as devtmpfs would.
 */
function makeVfioNodes(): void {
  const dir = path.join(sim, 'dev/vfio');
  for (const name of readdirSync(dir)) {
    const node = path.join(dir, name);
    if (statSync(node).isCharacterDevice()) continue;
    rmSync(node);
    execFileSync('mknod', [node, 'c', '1', '3']);
  }
}

interface Node {
  status: { allocatable: Record<string, string>; capacity: Record<string, string> };
}
interface Pod {
  metadata: { uid: string };
  status: { phase?: string; containerStatuses?: { state?: { running?: object; waiting?: { reason?: string; message?: string } } }[] };
}

const allocatable = async (): Promise<string | undefined> => (await cluster.request('GET', `/api/v1/nodes/${NODE_NAME}`)).json<Node>().status.allocatable[RESOURCE];

function owners(): Map<string, string> {
  const run = hostdev('status', '--json');
  const status = JSON.parse(run.stdout) as { active: { address: string; usedBy: { hypervisor: string; vm: string } }[] };
  return new Map(status.active.map((entry) => [entry.address, `${entry.usedBy.hypervisor}/${entry.usedBy.vm}`]));
}

/**
 * A pod on the node, in the host's network namespace, whose container prints its device addresses
 * and the VFIO nodes it sees; by default it asks the device plugin for one VF.
 */
async function createPod(name: string, claim?: string): Promise<Pod> {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      nodeName: NODE_NAME,
      hostNetwork: true,
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 1,
      restartPolicy: 'Never',
      ...(claim === undefined ? {} : { resourceClaims: [{ name: 'vf', resourceClaimName: claim }] }),
      containers: [
        {
          name: 'app',
          image: 'hostdev.test/busybox:1',
          imagePullPolicy: 'Never',
          command: ['sh', '-c', 'echo "PCI=${PCI_RESOURCE_HOSTDEV_IO_IGB_VF:-claim}"; for f in /dev/vfio/*; do echo "node $f"; done; exec sleep 3600'],
          resources: claim === undefined ? { limits: { [RESOURCE]: '1' } } : { claims: [{ name: 'vf' }] },
        },
      ],
    },
  };
  const created = await cluster.request('POST', '/api/v1/namespaces/default/pods', pod);
  expect(created.status, created.body).toBe(201);
  return created.json<Pod>();
}

async function runningPod(name: string): Promise<Pod> {
  return cluster.waitFor(`pod ${name} running`, async () => {
    const pod = (await cluster.request('GET', `/api/v1/namespaces/default/pods/${name}`)).json<Pod>();
    const waiting = pod.status.containerStatuses?.[0]?.state?.waiting;
    if (waiting?.reason !== undefined && /Err|Invalid|Failed/.test(waiting.reason)) throw new Error(`${waiting.reason}: ${waiting.message ?? ''}`);
    if (pod.status.phase === 'Failed') throw new Error(`pod ${name} failed: ${JSON.stringify(pod.status)}`);
    return pod.status.phase === 'Running' ? pod : null;
  });
}

/**
 * What the pod's container printed, from the kubelet's log of it (CRI format, one file per
 * container). The API server's log endpoint would need the node to have an address, and a kubelet
 * refuses a loopback one: this node has none.
 */
async function podLog(pod: Pod, name: string): Promise<string> {
  const file = path.join(cluster.podLogsDir, `default_${name}_${pod.metadata.uid}`, 'app/0.log');
  return cluster.waitFor(`the log of ${name}`, async () => {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    return text.includes('PCI=') ? text : null;
  });
}

async function deletePod(name: string): Promise<void> {
  await cluster.request('DELETE', `/api/v1/namespaces/default/pods/${name}`);
  await cluster.waitFor(`pod ${name} gone`, async () => ((await cluster.request('GET', `/api/v1/namespaces/default/pods/${name}`)).status === 404 ? true : null));
}

const waitOwner = (address: string, owner: string, ms = 30_000): Promise<true> =>
  cluster.waitFor(`${address} held by ${owner} (now ${owners().get(address) ?? 'nobody'})`, async () => (owners().get(address) === owner ? true : null), ms);

beforeAll(async () => {
  expect(runCli(['sim', 'create', sim, '--preset', 'sriov-nic']).code).toBe(0);
  writeFileSync(pools, `pools:\n  - name: igb-vf\n    resourceName: ${RESOURCE}\n    selectors:\n      - { driver: igbvf }\n`);
  await cluster.start();
  plugin = startPlugin();
  await cluster.waitFor('the pool offered to the kubelet', async () => ((await allocatable()) === '4' ? true : null), 60_000);
  makeVfioNodes();
});

afterAll(async () => {
  await stopPlugin('SIGTERM');
  await cluster.stop();
  if (process.env['HOSTDEV_K8S_KEEP'] === undefined) rmSync(base, { recursive: true, force: true });
  else console.log(`kept ${base}`);
});

describe('the device plugin on a real kubelet', () => {
  it('the node offers the pool: four VFs readied on vfio-pci under kubelet/pool-igb-vf', async () => {
    expect(await allocatable()).toBe('4');
    expect([...owners().entries()].sort()).toEqual(ALL_VFS.map((vf) => [vf, 'kubelet/pool-igb-vf']));
    expect(readdirSync(DEVICE_PLUGIN_DIR)).toContain('hostdev-igb-vf.sock');
  });

  let vf = '';
  it('a pod asking for one VF runs with its address and its VFIO nodes; the tables name the pod', async () => {
    await createPod('vf-pod');
    const log = await podLog(await runningPod('vf-pod'), 'vf-pod');
    const match = /PCI=(\S+)/.exec(log);
    expect(match, log).not.toBeNull();
    vf = match![1]!;
    expect(ALL_VFS).toContain(vf);
    const group = path.basename(readlinkSync(path.join(sim, 'sys/bus/pci/devices', vf, 'iommu_group')));
    expect(log).toContain('node /dev/vfio/vfio');
    expect(log).toContain(`node /dev/vfio/${group}`);
    await waitOwner(vf, 'kubelet/pod:default:vf-pod:app');
    expect(await allocatable()).toBe('4');
  });

  it('killing the plugin loses no allocation: restarted (now with CDI specs and the DRA driver), it re-registers and the pod keeps its VF', async () => {
    await stopPlugin('SIGKILL');
    plugin = startPlugin(draArgs);
    await cluster.waitFor('the plugin registered again', async () => (readdirSync(DEVICE_PLUGIN_DIR).includes('hostdev-igb-vf.sock') && (await allocatable()) === '4' ? true : null));
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(owners().get(vf)).toBe('kubelet/pod:default:vf-pod:app');
    await runningPod('vf-pod');
  });

  it('restarting the kubelet loses no allocation: the plugin registers again within seconds', async () => {
    const registrations = (): number => (readFileSync(path.join(cluster.logDir, 'hostdev-plugin.log'), 'utf8').match(/registered hostdev\.io\/igb-vf with the kubelet/g) ?? []).length;
    const before = registrations();
    await cluster.restartKubelet();
    const restarted = Date.now();
    await cluster.waitFor('the plugin registered with the new kubelet', async () => (registrations() > before && readdirSync(DEVICE_PLUGIN_DIR).includes('hostdev-igb-vf.sock') ? true : null), 10_000);
    console.log(`registered again ${Date.now() - restarted} ms after the kubelet's node came back`);
    await cluster.waitFor('allocatable back after the kubelet restart', async () => ((await allocatable()) === '4' ? true : null));
    // Longer than the plugin's grace: a kubelet that has just started must not make it give the VF back.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    expect(owners().get(vf)).toBe('kubelet/pod:default:vf-pod:app');
    await runningPod('vf-pod');
  });

  it('a pod gets its VFIO nodes through CDI: the runtime injects the devices Allocate named', async () => {
    expect(existsSync(path.join(cluster.cdiDir, 'hostdev-igb-vf.json'))).toBe(true);
    await createPod('cdi-pod');
    const log = await podLog(await runningPod('cdi-pod'), 'cdi-pod');
    const other = /PCI=(\S+)/.exec(log)![1]!;
    expect(other).not.toBe(vf);
    const group = path.basename(readlinkSync(path.join(sim, 'sys/bus/pci/devices', other, 'iommu_group')));
    expect(log).toContain('node /dev/vfio/vfio');
    expect(log).toContain(`node /dev/vfio/${group}`);
    await waitOwner(other, 'kubelet/pod:default:cdi-pod:app');
    await deletePod('cdi-pod');
    await waitOwner(other, 'kubelet/pool-igb-vf');
  });

  it('DRA: a ResourceSlice lists the pool; a pod with a ResourceClaim is prepared (its VF under the claim, its nodes through CDI) and unprepared when it goes', async () => {
    interface Slice {
      spec: { driver: string; nodeName: string; pool: { name: string }; devices: { name: string; attributes: Record<string, { string?: string; int?: number }> }[] };
    }
    const slices = async (): Promise<Slice[]> =>
      (await cluster.request('GET', '/apis/resource.k8s.io/v1/resourceslices')).json<{ items: Slice[] }>().items.filter((s) => s.spec.driver === 'hostdev.io');
    // vf-pod holds one VF through the device plugin: the scheduler is not offered it.
    const slice = await cluster.waitFor('a ResourceSlice of hostdev.io for the node with 3 devices', async () => {
      const found = (await slices()).find((s) => s.spec.nodeName === NODE_NAME);
      return found !== undefined && found.spec.devices.length === 3 ? found : null;
    });
    expect(slice.spec.devices.map((d) => d.attributes['pciAddress']?.string)).not.toContain(vf);
    const device = slice.spec.devices[0]!;
    const address = device.attributes['pciAddress']!.string!;
    expect(device.attributes['iommuGroup']?.int).toBe(Number(path.basename(readlinkSync(path.join(sim, 'sys/bus/pci/devices', address, 'iommu_group')))));
    const created = [
      await cluster.request('POST', '/apis/resource.k8s.io/v1/deviceclasses', {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'DeviceClass',
        metadata: { name: 'hostdev-vf-test' },
        spec: { selectors: [{ cel: { expression: 'device.driver == "hostdev.io"' } }] },
      }),
      await cluster.request('POST', '/apis/resource.k8s.io/v1/namespaces/default/resourceclaims', {
        apiVersion: 'resource.k8s.io/v1',
        kind: 'ResourceClaim',
        metadata: { name: 'vf-claim' },
        spec: { devices: { requests: [{ name: 'vf', exactly: { deviceClassName: 'hostdev-vf-test' } }] } },
      }),
    ];
    for (const c of created) expect(c.status, c.body).toBe(201);
    const uid = (await createPod('dra-pod', 'vf-claim')).metadata.uid;
    // No scheduler runs here: the test allocates the claim and reserves it for the pod as kube-scheduler would.
    const claim = (await cluster.request('GET', '/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/vf-claim')).json<Record<string, unknown>>();
    const allocated = await cluster.request('PUT', '/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/vf-claim/status', {
      ...claim,
      status: {
        allocation: {
          devices: { results: [{ request: 'vf', driver: 'hostdev.io', pool: slice.spec.pool.name, device: device.name }] },
          nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [NODE_NAME] }] }] },
        },
        reservedFor: [{ resource: 'pods', name: 'dra-pod', uid }],
      },
    });
    expect(allocated.status, allocated.body).toBe(200);
    const log = await podLog(await runningPod('dra-pod'), 'dra-pod');
    const group = path.basename(readlinkSync(path.join(sim, 'sys/bus/pci/devices', address, 'iommu_group')));
    expect(log).toContain(`node /dev/vfio/${group}`);
    await waitOwner(address, 'kubelet/claim:default:vf-claim');
    // A claim's device is still the scheduler's to see as allocated: the slice keeps it.
    expect((await slices())[0]!.spec.devices.map((d) => d.name)).toContain(device.name);
    // A killed driver loses no prepared claim: the tables hold it, and the kubelet unprepares through the new one.
    const registrations = (): number => (readFileSync(path.join(cluster.logDir, 'hostdev-plugin.log'), 'utf8').match(/DRA driver hostdev\.io registered/g) ?? []).length;
    const before = registrations();
    await stopPlugin('SIGKILL');
    plugin = startPlugin(draArgs);
    await cluster.waitFor('the DRA driver registered again', async () => (registrations() > before ? true : null));
    expect(owners().get(address)).toBe('kubelet/claim:default:vf-claim');
    await deletePod('dra-pod');
    await waitOwner(address, 'kubelet/pool-igb-vf');
  });

  it('deleting the pod gives its VF back to the pool', async () => {
    await deletePod('vf-pod');
    await waitOwner(vf, 'kubelet/pool-igb-vf');
  });

  it('VFs that leave the host turn Unhealthy: the node offers fewer', async () => {
    expect(hostdev('sim', 'write', `/sys/bus/pci/devices/${PF0}/sriov_numvfs`, '0').code).toBe(0);
    await cluster.waitFor('allocatable down to 2', async () => ((await allocatable()) === '2' ? true : null), 30_000);
    const slice = await cluster.waitFor('the ResourceSlice follows the host', async () => {
      const items = (await cluster.request('GET', '/apis/resource.k8s.io/v1/resourceslices')).json<{ items: { spec: { driver: string; devices: { attributes: Record<string, { string?: string }> }[] } }[] }>().items;
      const ours = items.find((s) => s.spec.driver === 'hostdev.io');
      return ours !== undefined && ours.spec.devices.length === 2 ? ours : null;
    });
    expect(slice.spec.devices.map((d) => d.attributes['pciAddress']?.string).sort()).toEqual(ALL_VFS.filter((a) => !PF0_VFS.includes(a)));
    const node = (await cluster.request('GET', `/api/v1/nodes/${NODE_NAME}`)).json<Node>();
    expect(node.status.capacity[RESOURCE]).toBe('4');
    for (const gone of PF0_VFS) expect(owners().has(gone)).toBe(false);
  });
});

describe('deploy/: the manifests the README gives', () => {
  const collection: Record<string, string> = {
    'v1/Namespace': '/api/v1/namespaces',
    'v1/ConfigMap': '/api/v1/namespaces/NS/configmaps',
    'v1/Pod': '/api/v1/namespaces/NS/pods',
    'apps/v1/DaemonSet': '/apis/apps/v1/namespaces/NS/daemonsets',
    'v1/ServiceAccount': '/api/v1/namespaces/NS/serviceaccounts',
    'rbac.authorization.k8s.io/v1/ClusterRole': '/apis/rbac.authorization.k8s.io/v1/clusterroles',
    'rbac.authorization.k8s.io/v1/ClusterRoleBinding': '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    'resource.k8s.io/v1/DeviceClass': '/apis/resource.k8s.io/v1/deviceclasses',
    'resource.k8s.io/v1/ResourceClaimTemplate': '/apis/resource.k8s.io/v1/namespaces/NS/resourceclaimtemplates',
  };
  const deployDir = path.join(path.dirname(new URL(import.meta.url).pathname), '../../deploy');

  it('every document of every manifest is accepted by the API server (its schema and admission)', async () => {
    const files = readdirSync(deployDir).filter((name) => name.endsWith('.yaml')).sort((a, b) => (a === 'namespace.yaml' ? -1 : b === 'namespace.yaml' ? 1 : a.localeCompare(b)));
    expect(files).toEqual(['namespace.yaml', 'device-plugin.yaml', 'dra.yaml', 'example-claim.yaml', 'example-pod.yaml']);
    let checked = 0;
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(path.join(deployDir, file), 'utf8'))) {
        const object = doc.toJS() as { apiVersion: string; kind: string; metadata: { namespace?: string } };
        const where = collection[`${object.apiVersion}/${object.kind}`];
        expect(where, `${file}: ${object.apiVersion} ${object.kind}`).toBeDefined();
        // The namespace is made for real (the others name it); the rest only as a server-side dry run.
        const url = where!.replace('NS', object.metadata.namespace ?? 'default') + (object.kind === 'Namespace' ? '' : '?dryRun=All&fieldValidation=Strict');
        const created = await cluster.request('POST', url, object);
        expect(created.status, `${file}: ${object.kind}: ${created.body}`).toBe(201);
        checked++;
      }
    }
    expect(checked).toBe(10);
  });
});
