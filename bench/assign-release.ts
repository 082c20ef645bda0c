// Benchmark: assign + release of N VFs across N/4 domains (4 VFs each) on the simulated kernel,
// N = 256, 1,024, 4,096. Per-device time must stay flat: ratio 4,096 vs 256 <= 1.2.
// Figures only; not a pass/fail test. Run with `npm run bench -- assign-release`.
// Tree and state live on tmpfs (/dev/shm) when there is one: fsync is then free, and what is
// measured is hostdev's own work per device (plus the simulated kernel's), not the disk.
// The ratio uses the median per-device time over the domains, which a burst of load on a shared
// machine moves less than the mean.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HostdevManager } from '../src/manager/hostdev-manager.js';
import { buildHost } from '../src/sim/builder.js';
import { SimKernel } from '../src/sim/kernel.js';
import { vfHost } from './vf-host.js';

// BENCH_SIZES=256,1024 runs only those sizes (for quick interleaved before/after runs).
const SIZES = (process.env['BENCH_SIZES'] ?? '256,1024,4096').split(',').map(Number);

const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

interface Figures {
  n: number;
  assignMs: number;
  releaseMs: number;
  meanPerDeviceMs: number;
  medianPerDeviceMs: number;
}

async function run(n: number): Promise<Figures> {
  const base = mkdtempSync(path.join(SCRATCH, `hostdev-bench-${n}-`));
  try {
    const root = path.join(base, 'root');
    const { spec, vfs } = vfHost(n);
    buildHost(root, spec);
    const manager = await HostdevManager.open({ root, stateDir: path.join(base, 'state'), kernel: new SimKernel(root) });
    try {
      const domains = n / 4;
      const perDomain: number[] = new Array<number>(domains).fill(0);
      const t0 = performance.now();
      for (let d = 0; d < domains; d++) {
        const start = performance.now();
        await manager.assign({ domain: `vm${d}`, addresses: vfs.slice(d * 4, d * 4 + 4) });
        perDomain[d]! += performance.now() - start;
      }
      const t1 = performance.now();
      for (let d = 0; d < domains; d++) {
        const start = performance.now();
        const report = await manager.release({ domain: `vm${d}` });
        perDomain[d]! += performance.now() - start;
        if (report.failures.length > 0) throw new Error(`release of vm${d} failed: ${report.failures[0]!.message}`);
      }
      const t2 = performance.now();
      const tables = manager.tables();
      if (tables.active.length + tables.inactive.length !== 0) throw new Error('tables not empty after release');
      return {
        n,
        assignMs: t1 - t0,
        releaseMs: t2 - t1,
        meanPerDeviceMs: (t2 - t0) / n,
        medianPerDeviceMs: median(perDomain) / 4,
      };
    } finally {
      manager.close();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

console.log(`scratch dir: ${SCRATCH}`);
const results: Figures[] = [];
for (const n of SIZES) {
  const result = await run(n);
  results.push(result);
  console.log(
    `N=${String(n).padStart(5)}  domains=${String(n / 4).padStart(5)}  assign ${result.assignMs.toFixed(0)} ms  release ${result.releaseMs.toFixed(0)} ms  ` +
      `per device: mean ${result.meanPerDeviceMs.toFixed(2)} ms, median ${result.medianPerDeviceMs.toFixed(2)} ms`,
  );
}
const first = results[0]!;
const last = results[results.length - 1]!;
const ratio = last.medianPerDeviceMs / first.medianPerDeviceMs;
const meanRatio = last.meanPerDeviceMs / first.meanPerDeviceMs;
console.log(
  `per-device ratio ${last.n} vs ${first.n}: median ${ratio.toFixed(2)}, mean ${meanRatio.toFixed(2)} (target <= 1.2) ${ratio <= 1.2 ? 'OK' : 'ABOVE TARGET'}`,
);
