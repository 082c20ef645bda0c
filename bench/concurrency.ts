/**
 * Throughput of command-line assign + release of disjoint VFs: one process at a time against 8
 * processes at once (each its own domain and VF), on one simulated host of 64 VFs; target 8
 * processes >= 3x one. Besides the wall time, the CPU time (user + system, GNU time) of each call:
 * on a machine of C cores, calls cannot finish faster than C / (CPU time per call), whatever the
 * locking; wall time per call far above its CPU time is waiting (the state lock, or the cores).
 *
 * Environment: BENCH_CALLS=8 (assign + release pairs per process)  BENCH_PROCESSES=8
 *   BENCH_BASE_CLI=/path/to/other/dist/cli/bin.js  also times that build, interleaved.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHost } from '../src/sim/builder.js';
import { median } from './lib/timing.js';
import { vfHost } from './vf-host.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'dist/cli/bin.js');
const calls = Number(process.env['BENCH_CALLS'] ?? 8);
const processes = Number(process.env['BENCH_PROCESSES'] ?? 8);
const baseCli = process.env['BENCH_BASE_CLI'];
const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const TIME = '/usr/bin/time';

const env: NodeJS.ProcessEnv = { ...process.env, HOSTDEV_NO_DAEMON: '1' };
delete env['NODE_EXTRA_CA_CERTS'];

interface Call {
  readonly wallMs: number;
  readonly cpuMs: number | null;
}

/** One CLI call, asynchronously (so that 8 run at once); its wall and CPU time. */
function call(file: string, root: string, args: readonly string[], timeFile: string): Promise<Call> {
  const withTime = existsSync(TIME);
  const argv = [file, '--root', root, '--simulate', ...args];
  const [command, commandArgs] = withTime ? [TIME, ['-f', '%U %S', '-o', timeFile, process.execPath, ...argv]] : [process.execPath, argv];
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, commandArgs, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - start;
      if (code !== 0) return reject(new Error(`${args.join(' ')} failed (${code}): ${stderr}`));
      const cpuMs = withTime ? readFileSync(timeFile, 'utf8').trim().split(/\s+/).slice(-2).reduce((sum, s) => sum + Number(s) * 1000, 0) : null;
      resolve({ wallMs, cpuMs });
    });
  });
}

/** `count` processes, each doing `calls` assign + release pairs of its own VF one after another. */
async function run(file: string, root: string, vfs: readonly string[], count: number, dir: string): Promise<{ wallMs: number; calls: Call[] }> {
  const all: Call[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, worker) => {
      const timeFile = path.join(dir, `time-${worker}`);
      for (let i = 0; i < calls; i++) {
        all.push(await call(file, root, ['assign', '--domain', `vm${worker}`, vfs[worker]!], timeFile));
        all.push(await call(file, root, ['release', '--domain', `vm${worker}`], timeFile));
      }
    }),
  );
  return { wallMs: performance.now() - start, calls: all };
}

const base = mkdtempSync(path.join(scratch, 'hostdev-bench-concurrency-'));
try {
  const { spec, vfs } = vfHost(64);
  const builds: Array<[string, string]> = [['hostdev', cli], ...(baseCli ? [['base', baseCli] as [string, string]] : [])];
  const roots = new Map<string, string>();
  for (const [label] of builds) {
    const root = path.join(base, label);
    buildHost(root, spec);
    roots.set(label, root);
  }
  console.log(`cores: ${availableParallelism()}; ${calls} assign + release pairs per process; 1 process vs ${processes} at once`);
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? 2);
  const results = new Map<string, Array<{ wallMs: number; calls: Call[] }>>();
  for (let round = 0; round < rounds; round++) {
    for (const [label, file] of builds) {
      for (const count of [1, processes]) {
        const result = await run(file, roots.get(label)!, vfs, count, base);
        const key = `${label} ${count}`;
        results.set(key, [...(results.get(key) ?? []), result]);
      }
    }
  }
  for (const [label] of builds) {
    const rate = (count: number): number => median(results.get(`${label} ${count}`)!.map((r) => (r.calls.length / r.wallMs) * 1000));
    for (const count of [1, processes]) {
      const flat = results.get(`${label} ${count}`)!.flatMap((r) => r.calls);
      const cpu = flat.flatMap((c) => (c.cpuMs === null ? [] : [c.cpuMs]));
      console.log(
        `${label} ${String(count).padStart(2)} process(es): ${rate(count).toFixed(1)} calls/s; per call wall med ${median(flat.map((c) => c.wallMs)).toFixed(0)} ms` +
          (cpu.length > 0 ? `, cpu med ${median(cpu).toFixed(0)} ms (bound at ${availableParallelism()} cores: ${((availableParallelism() * 1000) / median(cpu)).toFixed(1)} calls/s)` : ''),
      );
    }
    console.log(`${label}: ${processes} processes / 1 process throughput ${(rate(processes) / rate(1)).toFixed(2)}x   target >= 3x`);
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
