/**
 * What the intent journal costs per sysfs write, next to what the simulated kernel's write costs,
 * in the 1,024-VF assign profile: 1,024 VFs assigned four to a domain, then released, with the tree
 * and the state on this machine's disk (the journal's commits are fsynced). Time inside the
 * journal calls (Operation.intend/intendAll/done) and inside SimKernel.write are summed; the ratio is
 * measured within one run, so load on a shared machine moves both alike. Target: journal per write
 * under a tenth of the kernel's write.
 *
 * Environment: BENCH_VFS=1024  BENCH_SCRATCH=DIR (default the OS temp dir; /dev/shm takes fsync out)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HostdevManager } from '../src/manager/hostdev-manager.js';
import { buildHost } from '../src/sim/builder.js';
import { SimKernel } from '../src/sim/kernel.js';
import { StateStore } from '../src/state/store.js';
import { vfHost } from './vf-host.js';

const n = Number(process.env['BENCH_VFS'] ?? 1024);
const scratch = process.env['BENCH_SCRATCH'] ?? tmpdir();
const spent = { journal: 0, kernel: 0, writes: 0 };

/** Wraps a prototype method so the time spent in it (sync or async) is added to `spent[bucket]`. */
function timed(proto: object, name: string, bucket: 'journal' | 'kernel'): void {
  const target = proto as Record<string, unknown>;
  const original = target[name];
  if (typeof original !== 'function') return; // a method this build does not have
  target[name] = function (this: unknown, ...args: unknown[]): unknown {
    const start = performance.now();
    const result = (original as (...a: unknown[]) => unknown).apply(this, args);
    if (result instanceof Promise) {
      return result.finally(() => {
        spent[bucket] += performance.now() - start;
      });
    }
    spent[bucket] += performance.now() - start;
    return result;
  };
}

const base = mkdtempSync(path.join(scratch, `hostdev-bench-journal-${n}-`));
// The store's Operation class is not exported: its prototype is that of any operation.
const probe = StateStore.open(path.join(base, 'probe'));
const operationProto = (await probe.exclusive('status', async (op) => Object.getPrototypeOf(op))) as object;
probe.close();
for (const method of ['intend', 'intendAll', 'done']) timed(operationProto, method, 'journal');
timed(SimKernel.prototype, 'write', 'kernel');
const write = SimKernel.prototype.write;
SimKernel.prototype.write = function (this: SimKernel, ...args: Parameters<typeof write>) {
  spent.writes += 1;
  return write.apply(this, args);
};

try {
  const root = path.join(base, 'root');
  const { spec, vfs } = vfHost(n);
  buildHost(root, spec);
  const manager = await HostdevManager.open({ root, stateDir: path.join(base, 'state'), kernel: new SimKernel(root) });
  const started = performance.now();
  try {
    for (let d = 0; d < n / 4; d++) await manager.assign({ domain: `vm${d}`, addresses: vfs.slice(d * 4, d * 4 + 4) });
    for (let d = 0; d < n / 4; d++) await manager.release({ domain: `vm${d}` });
  } finally {
    manager.close();
  }
  const total = performance.now() - started;
  const perWrite = (ms: number): string => `${((ms / spent.writes) * 1000).toFixed(0)} us`;
  console.log(`${n} VFs assigned 4 to a domain and released (state on ${scratch}): ${spent.writes} sysfs writes, ${total.toFixed(0)} ms in all`);
  console.log(`  journal per write ${perWrite(spent.journal)} (${((spent.journal / total) * 100).toFixed(1)}% of the time)`);
  console.log(`  kernel write      ${perWrite(spent.kernel)} (${((spent.kernel / total) * 100).toFixed(1)}% of the time)`);
  console.log(`  journal / kernel write: ${(spent.journal / spent.kernel).toFixed(3)}   target < 0.1`);
} finally {
  rmSync(base, { recursive: true, force: true });
}
