/**
 * What the daemon benchmarks share (bench/daemon.ts, daemon-load.ts, daemon-soak.ts): a `hostdev
 * daemon` process on a simulated host in scratch space, requests over its socket, the mixed load of
 * 64 clients, its figures and the consistency check of the tables. Not a benchmark itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHost } from '../src/sim/builder.js';
import type { HostSpec } from '../src/sim/spec.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'dist/cli/bin.js');
const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

export interface Answer {
  readonly status: number;
  readonly body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export function request(socketPath: string, method: string, url: string, body?: unknown): Promise<Answer> {
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

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const ms = (value: number): string => `${value.toFixed(2)} ms`;

export interface Daemon {
  readonly child: ChildProcess;
  readonly socket: string;
  stop(): Promise<void>;
}

async function startDaemon(base: string, root: string, extra: readonly string[]): Promise<Daemon> {
  const socketDir = path.join(base, 'run');
  const socket = path.join(socketDir, 'hostdev.sock');
  // BENCH_CPU_PROF=DIR: the daemon writes a V8 CPU profile there when it stops (node --cpu-prof).
  const profile = process.env['BENCH_CPU_PROF'];
  const child = spawn(process.execPath, [...(profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile]), cli, '--root', root, '--state-dir', path.join(base, 'state'), '--simulate', 'daemon', '--socket-dir', socketDir, ...extra], {
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

export function usage(pid: number): { rssMb: number; fds: number } {
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0';
  return { rssMb: Number(rss) / 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
}

export async function withHost<T>(spec: HostSpec, run: (daemon: Daemon, root: string) => Promise<T>, daemonArgs: readonly string[] = []): Promise<T> {
  const base = mkdtempSync(path.join(SCRATCH, 'hd-bench-'));
  try {
    const root = path.join(base, 'root');
    buildHost(root, spec);
    const daemon = await startDaemon(base, root, daemonArgs);
    try {
      return await run(daemon, root);
    } finally {
      await daemon.stop();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}


/** What a mixed load did: latencies by kind, answers, unexpected errors by code. */
export interface LoadFigures {
  readonly seconds: number;
  readonly latencies: Map<string, number[]>;
  readonly outcomes: Map<string, number>;
  readonly errors: Map<string, number>;
  readonly unexpected: string[];
  readonly followed: number;
}

/**
 * `clients` clients send `requests` requests in all (or until `until` passes): reads of one VF
 * (50 %), status (20 %), assigns of a random VF to the client's own domain (20 %) and releases of
 * its domain (10 %). Only an assign's 409 (another client holds the VF) and a release's 404
 * HOSTDEV_DOMAIN_NOT_FOUND (the client holds nothing) are expected.
 */
export async function mixedLoad(daemon: Daemon, vfs: readonly string[], options: { clients: number; requests?: number; until?: number }): Promise<LoadFigures> {
  const latencies = new Map<string, number[]>();
  const outcomes = new Map<string, number>();
  const errors = new Map<string, number>();
  const unexpected: string[] = [];
  let next = 0;
  let followed = 0;
  const more = (): boolean => (options.requests === undefined || next < options.requests) && (options.until === undefined || Date.now() < options.until);
  const pick = (): string => vfs[Math.floor(Math.random() * vfs.length)]!;
  const worker = async (id: number): Promise<void> => {
    const domain = `vm-${id}`;
    while (more()) {
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
      if (answer.status >= 400) {
        const code = errorCode(answer.body);
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
      // Expected refusals: an assign of a VF another client holds (409), a release by a client that holds nothing (404).
      const expected = (kind === 'assign' && answer.status === 409) || (kind === 'release' && answer.status === 404 && errorCode(answer.body) === 'HOSTDEV_DOMAIN_NOT_FOUND');
      if (answer.status !== 200 && !expected) unexpected.push(`${method} ${url}: ${answer.status} ${answer.body.slice(0, 200)}`);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: options.clients }, (_, id) => worker(id)));
  return { seconds: (performance.now() - start) / 1000, latencies, outcomes, errors, unexpected, followed };
}

function errorCode(body: string): string {
  try {
    return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? 'no error body';
  } catch {
    return 'not JSON';
  }
}

export function printLoad(figures: LoadFigures, clients: number, vfCount: number): void {
  const all = [...figures.latencies.values()].flat();
  console.log(`${clients} clients, ${all.length} requests on ${vfCount} VFs in ${figures.seconds.toFixed(1)} s: ${(all.length / figures.seconds).toFixed(1)} requests/s`);
  console.log(`  all: p50 ${ms(percentile(all, 50))}  p99 ${ms(percentile(all, 99))}`);
  for (const [kind, values] of [...figures.latencies].sort()) {
    console.log(`  ${kind.padEnd(12)} ${String(values.length).padStart(6)}  p50 ${ms(percentile(values, 50))}  p99 ${ms(percentile(values, 99))}`);
  }
  console.log(`  operations answered 202 and followed on /wait: ${figures.followed}`);
  console.log(`  answers: ${[...figures.outcomes].sort().map(([outcome, n]) => `${outcome}: ${n}`).join(', ')}`);
  console.log(`  errors by code: ${figures.errors.size === 0 ? 'none' : [...figures.errors].sort().map(([code, n]) => `${code}: ${n}`).join(', ')}`);
  console.log(`  unexpected errors: ${figures.unexpected.length}${figures.unexpected.length > 0 ? `\n    ${figures.unexpected.slice(0, 5).join('\n    ')}` : ''}`);
}

/** The tables against sysfs: no journal row, every entry on vfio-pci and nothing else on it, no address twice. */
export async function checkTables(daemon: Daemon): Promise<boolean> {
  const status = JSON.parse((await request(daemon.socket, 'GET', '/v1/status')).body) as {
    active: Array<{ address: string }>;
    inactive: Array<{ address: string }>;
    journal: { unfinished: number };
  };
  const onVfio = (JSON.parse((await request(daemon.socket, 'GET', '/v1/devices?driver=vfio-pci')).body) as Array<{ address: string }>).map((d) => d.address).sort();
  const inTables = [...status.active, ...status.inactive].map((e) => e.address).sort();
  const consistent = status.journal.unfinished === 0 && JSON.stringify(onVfio) === JSON.stringify(inTables) && new Set(inTables).size === inTables.length;
  console.log(`  tables afterwards: ${status.active.length} active, ${status.inactive.length} inactive, journal ${status.journal.unfinished}; on vfio-pci: ${onVfio.length} -> ${consistent ? 'consistent' : 'INCONSISTENT'}`);
  return consistent;
}

/** Closes the kept-alive connections (at the end of a benchmark). */
export function closeRequests(): void {
  agent.destroy();
}

/** `--name VALUE` of the command line, as a number; `fallback` when absent. */
export function numberArg(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} takes a positive number, not ${process.argv[at + 1]}`);
  return value;
}
