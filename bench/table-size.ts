/**
 * One-device assign and release, and `status --json`, through the command line, with empty tables and with 4,000 table
 * entries (4,000 VFs assigned to another domain), on a simulated host of 4,096 VFs: the per-call
 * time must not grow with the tables (target: 4,000 entries at most 1.1x empty). Each call is a
 * whole process (start-up, open with recovery, the operation). Every case runs in each round,
 * interleaved; min and median wall time, and the ratios.
 *
 * Environment: BENCH_ROUNDS=7  BENCH_ENTRIES=4000
 *   BENCH_BASE_CLI=/path/to/other/dist/cli/bin.js  also times that build in the same rounds, on its
 *   own copy of each tree (a build leaves its own bookkeeping in the state).
 */
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostdevManager } from '../src/manager/hostdev-manager.js';
import { buildHost } from '../src/sim/builder.js';
import { SimKernel } from '../src/sim/kernel.js';
import { median, timeCommand } from './lib/timing.js';
import { vfHost } from './vf-host.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'dist/cli/bin.js');
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 7);
const entries = Number(process.env['BENCH_ENTRIES'] ?? 4000);
const baseCli = process.env['BENCH_BASE_CLI'];
const scratch = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

const env: NodeJS.ProcessEnv = { ...process.env, HOSTDEV_NO_DAEMON: '1' };
delete env['NODE_EXTRA_CA_CERTS'];

const base = mkdtempSync(path.join(scratch, 'hostdev-bench-table-size-'));
try {
  const { spec, vfs } = vfHost(4096);
  const probe = vfs[vfs.length - 1]!;
  const trees = new Map<string, string>();
  for (const size of [0, entries]) {
    const root = path.join(base, `hostdev-${size}`);
    buildHost(root, spec);
    if (size > 0) {
      const manager = await HostdevManager.open({ root, stateDir: path.join(root, '.hostdev-sim/state'), kernel: new SimKernel(root) });
      try {
        await manager.assign({ domain: 'big', addresses: vfs.slice(0, size) });
      } finally {
        manager.close();
      }
    }
    trees.set(`hostdev ${size}`, root);
    if (baseCli) {
      const copy = path.join(base, `base-${size}`);
      cpSync(root, copy, { recursive: true, verbatimSymlinks: true });
      trees.set(`base ${size}`, copy);
    }
  }
  const builds: Array<[string, string]> = [['hostdev', cli], ...(baseCli ? [['base', baseCli] as [string, string]] : [])];
  const times = new Map<string, number[]>();
  const cpuTimes = new Map<string, number[]>();
  const call = (name: string, file: string, root: string, args: string[]): void => {
    const { ms, cpuMs } = timeCommand({ name, file: process.execPath, args: [file, '--root', root, '--simulate', ...args] }, env, { cpu: true });
    times.set(name, [...(times.get(name) ?? []), ms]);
    if (cpuMs !== null) cpuTimes.set(name, [...(cpuTimes.get(name) ?? []), cpuMs]);
  };
  for (let round = 0; round <= rounds; round++) {
    for (const [label, file] of builds) {
      for (const size of [0, entries]) {
        const root = trees.get(`${label} ${size}`)!;
        call(`${label} assign (${size} entries)`, file, root, ['assign', '--domain', 'probe', probe]);
        call(`${label} release (${size} entries)`, file, root, ['release', '--domain', 'probe']);
        call(`${label} status (${size} entries)`, file, root, ['status', '--json']);
      }
    }
    if (round === 0) {
      times.clear(); // the first round warms the page cache
      cpuTimes.clear();
    }
  }
  const med = (name: string): number => median(times.get(name)!);
  const min = (name: string): number => Math.min(...times.get(name)!);
  console.log(`rounds: ${rounds}; wall time of one command-line call, ${entries} entries vs none`);
  const cpu = (name: string): string => (cpuTimes.has(name) ? `  cpu med ${median(cpuTimes.get(name)!).toFixed(0).padStart(5)} ms` : '');
  for (const name of times.keys()) console.log(`${name.padEnd(36)} min ${min(name).toFixed(1).padStart(7)} ms  med ${med(name).toFixed(1).padStart(7)} ms${cpu(name)}`);
  for (const [label] of builds) {
    for (const op of ['assign', 'release', 'status']) {
      const big = `${label} ${op} (${entries} entries)`;
      const empty = `${label} ${op} (0 entries)`;
      const cpuRatio = cpuTimes.has(big) ? `, cpu ${(median(cpuTimes.get(big)!) / median(cpuTimes.get(empty)!)).toFixed(2)}x (med)` : '';
      console.log(`${label} ${op}: ${entries} / 0 entries ${(med(big) / med(empty)).toFixed(2)}x (med), ${(min(big) / min(empty)).toFixed(2)}x (min)${cpuRatio}   target <= 1.1x`);
    }
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
