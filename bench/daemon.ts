/**
 * The daemon (`hostdev daemon` in its own process, simulated hosts on tmpfs when there is one):
 *
 * 1. Read latency: GET /v1/devices on a 4,096-function host, BENCH_READS (1,000) requests one after
 *    the other on a keep-alive connection, p50/p99 to the last byte of the body, against
 *    `lspci -Dnnk` on the same tree (BENCH_LSPCI_ROUNDS runs, median). Goal: p50 under 5 ms.
 * 2. Reads after a change: GET /v1/devices right after each of BENCH_CHANGES (20) detaches and
 *    reattaches of a VF on the same host: the cache reads again only what the change touched.
 * 3. Concurrency: BENCH_CLIENTS (64) clients, BENCH_REQUESTS (4,000; the full run is 20,000)
 *    requests in all, on a host with 1,024 VFs: reads of one VF, status, assigns of a random VF to
 *    the client's own domain and releases of it. Only 409 conflicts are expected; any other error is
 *    counted and printed. Afterwards the tables must be consistent: no journal row, every table entry
 *    on vfio-pci and nothing else on vfio-pci. The daemon's RSS and open fds before and after.
 *
 * Figures only; not a pass/fail test. Run with `npm run bench -- daemon` (BENCH_PARTS=reads,
 * after-changes or concurrency for one of them).
 */
import { spawnSync } from 'node:child_process';
import { generateSpec } from '../src/sim/presets.js';
import { checkTables, closeRequests, mixedLoad, ms, percentile, printLoad, request, usage, withHost } from './daemon-support.js';
import { vfHost } from './vf-host.js';

const READS = Number(process.env['BENCH_READS'] ?? 1_000);
const LSPCI_ROUNDS = Number(process.env['BENCH_LSPCI_ROUNDS'] ?? 7);
const CHANGES = Number(process.env['BENCH_CHANGES'] ?? 20);
const CLIENTS = Number(process.env['BENCH_CLIENTS'] ?? 64);
const REQUESTS = Number(process.env['BENCH_REQUESTS'] ?? 4_000);

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

async function readsAfterChanges(): Promise<void> {
  await withHost(generateSpec(4_096), async (daemon) => {
    const devices = JSON.parse((await request(daemon.socket, 'GET', '/v1/devices')).body) as Array<{ address: string; driver: string | null; headerType: string | null }>;
    const vf = devices.find((d) => d.driver !== null && d.headerType === 'endpoint' && d.driver !== 'vfio-pci')?.address;
    if (vf === undefined) throw new Error('no endpoint with a driver on the generated host');
    const steady: number[] = [];
    const after: number[] = [];
    const time = async (into: number[]): Promise<void> => {
      const start = performance.now();
      const answer = await request(daemon.socket, 'GET', '/v1/devices');
      into.push(performance.now() - start);
      if (answer.status !== 200) throw new Error(`GET /v1/devices: ${answer.status}`);
    };
    for (let i = 0; i < CHANGES; i++) {
      for (const kind of ['detach', 'reattach']) {
        const change = await request(daemon.socket, 'POST', `/v1/devices/${vf}/${kind}`, {});
        if (change.status !== 200) throw new Error(`${kind} ${vf}: ${change.status} ${change.body.slice(0, 200)}`);
        await time(after);
        await time(steady);
      }
    }
    console.log(`GET /v1/devices on ${devices.length} functions right after each of ${after.length} detaches/reattaches of ${vf}:`);
    console.log(`  first read after the change: p50 ${ms(percentile(after, 50))}  p99 ${ms(percentile(after, 99))}`);
    console.log(`  the read after that:         p50 ${ms(percentile(steady, 50))}  p99 ${ms(percentile(steady, 99))}`);
  });
}

async function concurrency(): Promise<void> {
  const { spec, vfs } = vfHost(1_024);
  await withHost(spec, async (daemon) => {
    const before = usage(daemon.child.pid!);
    printLoad(await mixedLoad(daemon, vfs, { clients: CLIENTS, requests: REQUESTS }), CLIENTS, vfs.length);
    await checkTables(daemon);
    const after = usage(daemon.child.pid!);
    console.log(`  daemon RSS ${before.rssMb.toFixed(0)} -> ${after.rssMb.toFixed(0)} MB, open fds ${before.fds} -> ${after.fds}`);
  });
}

const parts = (process.env['BENCH_PARTS'] ?? 'reads,after-changes,concurrency').split(',');
if (parts.includes('reads')) await readLatency();
if (parts.includes('after-changes')) await readsAfterChanges();
if (parts.includes('concurrency')) await concurrency();
closeRequests();
