/**
 * The daemon (`hostdev daemon` in its own process, simulated hosts on tmpfs when there is one):
 *
 * 1. Read latency: GET /v1/devices on a 4,096-function host, BENCH_READS (1,000) requests one after
 *    the other on a keep-alive connection, p50/p99 to the last byte of the body, against
 *    `lspci -Dnnk` on the same tree (BENCH_LSPCI_ROUNDS runs, median). Goal: p50 under 5 ms.
 * 2. Concurrency: BENCH_CLIENTS (64) clients, BENCH_REQUESTS (4,000; the issue's full run is 20,000)
 *    requests in all, on a host with 1,024 VFs: reads of one VF, status, assigns of a random VF to
 *    the client's own domain and releases of it. Only 409 conflicts are expected; any other error is
 *    counted and printed. Afterwards the tables must be consistent: no journal row, every table entry
 *    on vfio-pci and nothing else on vfio-pci. The daemon's RSS and open fds before and after.
 *
 * Figures only; not a pass/fail test. Run with `npm run bench -- daemon` (BENCH_PARTS=reads or
 * concurrency for one of the two).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHost } from '../src/sim/builder.js';
import { generateSpec } from '../src/sim/presets.js';
import type { HostSpec } from '../src/sim/spec.js';
import { vfHost } from './vf-host.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'dist/cli/bin.js');
const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const READS = Number(process.env['BENCH_READS'] ?? 1_000);
const LSPCI_ROUNDS = Number(process.env['BENCH_LSPCI_ROUNDS'] ?? 7);
const CLIENTS = Number(process.env['BENCH_CLIENTS'] ?? 64);
const REQUESTS = Number(process.env['BENCH_REQUESTS'] ?? 4_000);

interface Answer {
  readonly status: number;
  readonly body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function request(socketPath: string, method: string, url: string, body?: unknown): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path: url, method, agent, headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const ms = (value: number): string => `${value.toFixed(2)} ms`;

interface Daemon {
  readonly child: ChildProcess;
  readonly socket: string;
  stop(): Promise<void>;
}

async function startDaemon(base: string, root: string): Promise<Daemon> {
  const socketDir = path.join(base, 'run');
  const socket = path.join(socketDir, 'hostdev.sock');
  const child = spawn(process.execPath, [cli, '--root', root, '--state-dir', path.join(base, 'state'), '--simulate', 'daemon', '--socket-dir', socketDir], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const up = existsSync(path.join(socketDir, 'hostdev-ro.sock')) && (await request(socket, 'GET', '/v1').then((a) => a.status === 200, () => false));
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the daemon did not come up');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    child,
    socket,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('close', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

function usage(pid: number): { rssMb: number; fds: number } {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0';
  return { rssMb: Number(rss) / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

async function withHost<T>(spec: HostSpec, run: (daemon: Daemon, root: string) => Promise<T>): Promise<T> {
  const base = mkdtempSync(path.join(SCRATCH, 'hd-bench-'));
  try {
    const root = path.join(base, 'root');
    buildHost(root, spec);
    const daemon = await startDaemon(base, root);
    try {
      return await run(daemon, root);
    } finally {
      await daemon.stop();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function readLatency(): Promise<void> {
  await withHost(generateSpec(4_096), async (daemon, root) => {
    const first = await request(daemon.socket, 'GET', '/v1/devices');
    const count = (JSON.parse(first.body) as unknown[]).length;
    const times: number[] = [];
    for (let i = 0; i < READS; i++) {
      const start = performance.now();
      const answer = await request(daemon.socket, 'GET', '/v1/devices');
      times.push(performance.now() - start);
      if (answer.status !== 200) throw new Error(`GET /v1/devices: ${answer.status}`);
    }
    const lspci: number[] = [];
    const args = ['-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`, '-Dnnk'];
    spawnSync('lspci', args, { maxBuffer: 256 * 1024 * 1024 });
    for (let i = 0; i < LSPCI_ROUNDS; i++) {
      const start = performance.now();
      const run = spawnSync('lspci', args, { maxBuffer: 256 * 1024 * 1024 });
      if (run.status !== 0) throw new Error(`lspci failed: ${String(run.stderr)}`);
      lspci.push(performance.now() - start);
    }
    const p50 = percentile(times, 50);
    const lspciMedian = percentile(lspci, 50);
    console.log(`GET /v1/devices, ${count} functions (${(first.body.length / 1e6).toFixed(1)} MB), ${READS} requests in a row:`);
    console.log(`  p50 ${ms(p50)}  p99 ${ms(percentile(times, 99))}  max ${ms(Math.max(...times))}`);
    console.log(`lspci -Dnnk on the same tree, median of ${LSPCI_ROUNDS}: ${ms(lspciMedian)}  -> daemon p50 is ${(lspciMedian / p50).toFixed(1)}x faster`);
  });
}

async function concurrency(): Promise<void> {
  const { spec, vfs } = vfHost(1_024);
  await withHost(spec, async (daemon) => {
    const before = usage(daemon.child.pid!);
    const latencies = new Map<string, number[]>();
    const outcomes = new Map<string, number>();
    const unexpected: string[] = [];
    let next = 0;
    let followed = 0;
    const pick = (): string => vfs[Math.floor(Math.random() * vfs.length)]!;
    const worker = async (id: number): Promise<void> => {
      const domain = `vm-${id}`;
      while (next < REQUESTS) {
        next += 1;
        const dice = Math.random();
        const [kind, method, url, body]: [string, string, string, unknown] =
          dice < 0.5
            ? ['read-device', 'GET', `/v1/devices/pci:${pick()}`, undefined]
            : dice < 0.7
              ? ['status', 'GET', '/v1/status', undefined]
              : dice < 0.9
                ? ['assign', 'POST', '/v1/assignments', { domain, devices: [pick()] }]
                : ['release', 'DELETE', `/v1/assignments/qemu/${domain}`, undefined];
        const start = performance.now();
        let answer = await request(daemon.socket, method, url, body);
        // Still queued after the daemon's wait (30 s): follow it to its end, as a client does.
        while (answer.status === 202) {
          const op = JSON.parse(answer.body) as { id: string; state: string; error: { code: string } | null };
          const waited = await request(daemon.socket, 'GET', `/v1/operations/${op.id}/wait?timeout=600000`);
          const final = JSON.parse(waited.body) as typeof op;
          if (final.state === 'running') continue;
          answer = { status: final.state === 'completed' ? 200 : final.error?.code === 'HOSTDEV_IN_USE' || final.error?.code === 'HOSTDEV_GROUP_CONFLICT' ? 409 : 500, body: waited.body };
          followed += 1;
        }
        (latencies.get(kind) ?? latencies.set(kind, []).get(kind)!).push(performance.now() - start);
        const outcome = `${kind} ${answer.status}`;
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (answer.status !== 200 && !(kind === 'assign' && answer.status === 409)) unexpected.push(`${method} ${url}: ${answer.status} ${answer.body.slice(0, 200)}`);
      }
    };
    const start = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, id) => worker(id)));
    const seconds = (performance.now() - start) / 1000;
    const all = [...latencies.values()].flat();
    console.log(`${CLIENTS} clients, ${all.length} requests on ${vfs.length} VFs in ${seconds.toFixed(1)} s: ${(all.length / seconds).toFixed(0)} requests/s`);
    console.log(`  all: p50 ${ms(percentile(all, 50))}  p99 ${ms(percentile(all, 99))}`);
    for (const [kind, values] of [...latencies].sort()) {
      console.log(`  ${kind.padEnd(12)} ${String(values.length).padStart(6)}  p50 ${ms(percentile(values, 50))}  p99 ${ms(percentile(values, 99))}`);
    }
    console.log(`  operations answered 202 and followed on /wait: ${followed}`);
    console.log(`  answers: ${[...outcomes].sort().map(([outcome, n]) => `${outcome}: ${n}`).join(', ')}`);
    console.log(`  unexpected errors: ${unexpected.length}${unexpected.length > 0 ? `\n    ${unexpected.slice(0, 5).join('\n    ')}` : ''}`);
    const status = JSON.parse((await request(daemon.socket, 'GET', '/v1/status')).body) as {
      active: Array<{ address: string }>;
      inactive: Array<{ address: string }>;
      journal: { unfinished: number };
    };
    const onVfio = (JSON.parse((await request(daemon.socket, 'GET', '/v1/devices?driver=vfio-pci')).body) as Array<{ address: string }>).map((d) => d.address).sort();
    const inTables = [...status.active, ...status.inactive].map((e) => e.address).sort();
    const consistent = status.journal.unfinished === 0 && JSON.stringify(onVfio) === JSON.stringify(inTables) && new Set(inTables).size === inTables.length;
    console.log(`  tables afterwards: ${status.active.length} active, ${status.inactive.length} inactive, journal ${status.journal.unfinished}; on vfio-pci: ${onVfio.length} -> ${consistent ? 'consistent' : 'INCONSISTENT'}`);
    const after = usage(daemon.child.pid!);
    console.log(`  daemon RSS ${before.rssMb.toFixed(0)} -> ${after.rssMb.toFixed(0)} MB, open fds ${before.fds} -> ${after.fds}`);
  });
}

const parts = (process.env['BENCH_PARTS'] ?? 'reads,concurrency').split(',');
if (parts.includes('reads')) await readLatency();
if (parts.includes('concurrency')) await concurrency();
agent.destroy();
