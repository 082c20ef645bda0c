import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';

/**
 * A one-node Kubernetes on loopback for the tests: etcd, kube-apiserver, containerd and the kubelet,
 * each started here and stopped by its pid. The kubelet runs in a mount namespace of its own where
 * the kernel settings it would otherwise change (vm.overcommit_memory, kernel.panic,
 * kernel.panic_on_oops) read as the values it wants, so it leaves the machine's own as they are.
 */
export interface ClusterPaths {
  /** etcd and containerd (unpacked Debian packages): test/k8s/fetch-peers.sh */
  readonly debs: string;
  /** kube-apiserver and kubelet: test/k8s/build-k8s.sh */
  readonly k8s: string;
  /** pause.tar and busybox.tar: test/k8s/build-images.sh */
  readonly images: string;
}

export const NODE_NAME = 'hostdev-node';
/** The kubelet's device plugin directory is fixed in the kubelet, whatever its root directory. */
export const DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';

interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly log: string;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | null>, ms: number, logFile?: string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const tail = logFile !== undefined && existsSync(logFile) ? `\n--- ${logFile} (tail) ---\n${readFileSync(logFile, 'utf8').split('\n').slice(-25).join('\n')}` : '';
  throw new Error(`${what} did not happen within ${ms} ms${last === null ? '' : ` (last: ${(last as Error).message})`}${tail}`);
}

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
  json<T = Record<string, unknown>>(): T;
}

export class Cluster {
  private readonly started: Started[] = [];
  private createdKubeletDir = false;
  apiPort = 0;
  private kubeletPort = 0;
  readonly token = 'hostdev-test-token';

  constructor(
    readonly dir: string,
    private readonly paths: ClusterPaths,
  ) {}

  get kubeletRoot(): string {
    return path.join(this.dir, 'kubelet');
  }
  get podResourcesSocket(): string {
    return path.join(this.kubeletRoot, 'pod-resources/kubelet.sock');
  }
  get containerdSocket(): string {
    return path.join(this.dir, 'containerd/containerd.sock');
  }
  /** A kubeconfig with the cluster's admin token (the kubelet's, and the DRA driver's in the tests). */
  get kubeconfigPath(): string {
    return path.join(this.dir, 'kubeconfig');
  }
  /** containerd's CDI spec directory. */
  get cdiDir(): string {
    return path.join(this.dir, 'containerd/cdi');
  }
  get podLogsDir(): string {
    return path.join(this.dir, 'pod-logs');
  }
  get logDir(): string {
    return path.join(this.dir, 'logs');
  }

  private spawnLogged(name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Started {
    const log = path.join(this.logDir, `${name}.log`);
    const fd = openSync(log, 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    closeSync(fd);
    const started = { name, child, log };
    this.started.push(started);
    return started;
  }

  async start(): Promise<void> {
    mkdirSync(this.logDir, { recursive: true });
    this.certificates();
    await this.startEtcd();
    await this.startApiServer();
    await this.startContainerd();
    await this.startKubelet();
  }

  private certificates(): void {
    const pki = path.join(this.dir, 'pki');
    mkdirSync(pki, { recursive: true });
    const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: pki, stdio: 'ignore' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=hostdev-test-ca');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'apiserver.key', '-out', 'apiserver.csr', '-subj', '/CN=kube-apiserver');
    writeFileSync(path.join(pki, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n');
    ssl('x509', '-req', '-in', 'apiserver.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'apiserver.crt', '-days', '2', '-extfile', 'san.ext');
    ssl('genrsa', '-out', 'sa.key', '2048');
    ssl('rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub');
    writeFileSync(path.join(pki, 'tokens.csv'), `${this.token},hostdev-test,hostdev-test,system:masters\n`);
  }

  private etcdUrl = '';

  private async startEtcd(): Promise<void> {
    const [client, peer] = [await freePort(), await freePort()];
    this.etcdUrl = `http://127.0.0.1:${client}`;
    const etcd = this.spawnLogged('etcd', path.join(this.paths.debs, 'usr/bin/etcd'), [
      `--data-dir=${path.join(this.dir, 'etcd')}`,
      `--listen-client-urls=${this.etcdUrl}`,
      `--advertise-client-urls=${this.etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=default=http://127.0.0.1:${peer}`,
      '--listen-metrics-urls=',
      '--log-level=warn',
    ]);
    await until('etcd health', async () => ((await fetch(`${this.etcdUrl}/health`)).ok ? true : null), 30_000, etcd.log);
  }

  private async startApiServer(): Promise<void> {
    this.apiPort = await freePort();
    const pki = path.join(this.dir, 'pki');
    const api = this.spawnLogged('kube-apiserver', path.join(this.paths.k8s, 'kube-apiserver'), [
      `--etcd-servers=${this.etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${this.apiPort}`,
      `--tls-cert-file=${pki}/apiserver.crt`,
      `--tls-private-key-file=${pki}/apiserver.key`,
      `--client-ca-file=${pki}/ca.crt`,
      `--token-auth-file=${pki}/tokens.csv`,
      '--authorization-mode=RBAC',
      `--service-account-issuer=https://kubernetes.default.svc`,
      `--service-account-key-file=${pki}/sa.pub`,
      `--service-account-signing-key-file=${pki}/sa.key`,
      '--service-cluster-ip-range=10.96.0.0/24',
      '--endpoint-reconciler-type=none',
      // As kubeadm and every distribution set it: node agents (device plugins among them) run privileged.
      '--allow-privileged=true',
      `--cert-dir=${path.join(this.dir, 'apiserver-certs')}`,
      '--profiling=false',
      '--v=1',
    ]);
    await until('kube-apiserver /readyz', async () => ((await this.request('GET', '/readyz')).status === 200 ? true : null), 120_000, api.log);
  }

  private async startContainerd(): Promise<void> {
    const base = path.join(this.dir, 'containerd');
    for (const dir of ['root', 'state', 'opt', 'cni/bin', 'cni/conf', 'cdi']) mkdirSync(path.join(base, dir), { recursive: true });
    const config = `version = 2
root = "${base}/root"
state = "${base}/state"
[grpc]
  address = "${this.containerdSocket}"
[ttrpc]
  address = "${this.containerdSocket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${base}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "hostdev.test/pause:1"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = true
  cdi_spec_dirs = ["${this.cdiDir}"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${base}/cni/bin"
    conf_dir = "${base}/cni/conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`;
    writeFileSync(path.join(base, 'config.toml'), config);
    const bin = path.join(this.paths.debs, 'usr/bin');
    const env = { PATH: `${bin}:${process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin'}` };
    const containerd = this.spawnLogged('containerd', path.join(bin, 'containerd'), ['--config', path.join(base, 'config.toml')], env);
    await until('containerd socket', async () => (existsSync(this.containerdSocket) ? true : null), 30_000, containerd.log);
    for (const image of ['pause.tar', 'busybox.tar']) {
      execFileSync(path.join(bin, 'ctr'), ['--address', this.containerdSocket, '-n', 'k8s.io', 'images', 'import', '--no-unpack', path.join(this.paths.images, image)], {
        stdio: 'ignore',
        env: { ...process.env, ...env },
      });
    }
  }

  /** The kernel settings the kubelet insists on, with the values it wants (container_manager_linux.go). */
  private static readonly KUBELET_SYSCTLS: Readonly<Record<string, string>> = {
    'vm/overcommit_memory': '1',
    'vm/panic_on_oom': '0',
    'kernel/panic': '10',
    'kernel/panic_on_oops': '1',
    'kernel/keys/root_maxkeys': '1000000',
    'kernel/keys/root_maxbytes': '25000000',
  };

  private async startKubelet(): Promise<void> {
    this.kubeletPort = await freePort();
    const healthz = await freePort();
    mkdirSync(this.kubeletRoot, { recursive: true });
    if (!existsSync('/var/lib/kubelet')) this.createdKubeletDir = true;
    const pki = path.join(this.dir, 'pki');
    const kubeconfig = this.kubeconfigPath;
    writeFileSync(kubeconfig, this.kubeconfig(pki));
    const config = path.join(this.dir, 'kubelet.yaml');
    writeFileSync(
      config,
      `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: ${this.kubeletPort}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${healthz}
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: ["none"]
containerRuntimeEndpoint: unix://${this.containerdSocket}
failSwapOn: false
makeIPTablesUtilChains: false
oomScoreAdj: 0
podLogsDir: ${this.podLogsDir}
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`,
    );
    // Files holding the values the kubelet wants, bound over the real ones in its own mount namespace.
    const fake = path.join(this.dir, 'sysctl');
    mkdirSync(fake, { recursive: true });
    const binds: string[] = [];
    for (const [name, value] of Object.entries(Cluster.KUBELET_SYSCTLS)) {
      const real = path.join('/proc/sys', name);
      if (readFileSync(real, 'utf8').trim() === value) continue;
      const file = path.join(fake, name.replace(/\//g, '.'));
      writeFileSync(file, `${value}\n`);
      binds.push(`mount --bind ${file} ${real}`);
    }
    const kubelet = [
      path.join(this.paths.k8s, 'kubelet'),
      `--config=${config}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${this.kubeletRoot}`,
      `--hostname-override=${NODE_NAME}`,
      '--node-ip=127.0.0.1',
      `--cert-dir=${path.join(this.kubeletRoot, 'pki')}`,
      '--v=2',
    ].join(' ');
    const script = [...binds, `exec ${kubelet}`].join(' && ');
    const started = this.spawnLogged('kubelet', 'unshare', ['--mount', '--propagation', 'slave', 'sh', '-c', script], {
      PATH: `${path.join(this.paths.debs, 'usr/bin')}:${process.env['PATH'] ?? ''}`,
    });
    await until(
      'the kubelet registering its node',
      async () => {
        const node = await this.request('GET', `/api/v1/nodes/${NODE_NAME}`);
        return node.status === 200 ? true : null;
      },
      120_000,
      started.log,
    );
    // The API server's ServiceAccount admission wants the namespace's default account (a controller makes it in a full cluster).
    await this.request('POST', '/api/v1/namespaces/default/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  }

  private kubeconfig(pki: string): string {
    return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:${this.apiPort}
    certificate-authority: ${pki}/ca.crt
users:
- name: test
  user:
    token: ${this.token}
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`;
  }

  /** Restarts the kubelet (kill -9, then the same command): it wipes its device plugin directory as it starts. */
  async restartKubelet(): Promise<void> {
    const index = this.started.findIndex((s) => s.name === 'kubelet');
    const old = this.started[index]!;
    this.started.splice(index, 1);
    await stopProcess(old.child, 'SIGKILL');
    await this.startKubelet();
  }

  async request(method: string, urlPath: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse> {
    const ca = readFileSync(path.join(this.dir, 'pki/ca.crt'));
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: this.apiPort,
          path: urlPath,
          method,
          ca,
          headers: {
            authorization: `Bearer ${this.token}`,
            accept: 'application/json',
            ...(payload === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) }),
          },
          timeout: 15_000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, json: <T>() => JSON.parse(text) as T }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer within 15 s`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** Polls the API server until `probe` returns a value; fails with `what` after `ms`. */
  waitFor<T>(what: string, probe: () => Promise<T | null>, ms = 60_000): Promise<T> {
    return until(what, probe, ms);
  }

  async stop(): Promise<void> {
    for (const started of [...this.started].reverse()) await stopProcess(started.child, 'SIGTERM');
    this.started.length = 0;
    // Containers the runtime left (shims survive containerd): stop them by their pids.
    for (const pid of pidsMentioning(this.containerdSocket)) process.kill(pid, 'SIGKILL');
    if (this.createdKubeletDir) rmSync('/var/lib/kubelet', { recursive: true, force: true });
    execFileSync('sh', ['-c', `grep -o ' ${this.dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true`]);
  }
}

/** Processes whose command line names `text` (the shims of this cluster's containerd name its socket). */
function pidsMentioning(text: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(text);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}
