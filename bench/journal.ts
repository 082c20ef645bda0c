/**
 * The intent journal's cost (issue 5): assign+release operations per second on the simulated
 * kernel, in one process and in 8 concurrent processes, with the journal on and off
 * (StoreOptions.journal = false, which exists for this benchmark only).
 *
 * Each worker process opens the manager once and runs assign/release pairs on its own device
 * and domain, so concurrent workers contend only for the state lock. Throughput counts the
 * operations between the first worker's start and the last worker's end (process start-up
 * excluded). Run: npm run bench -- journal   (PAIRS=N changes the pairs per worker).
 */
import fs from 'node:fs';
import { isolatedSpec, runWorkerOk, simSetup, type WorkerOp } from '../test/manager/recovery-support.js';

const PAIRS = Number(process.env['PAIRS'] ?? 25);

async function measure(processes: number, journal: boolean): Promise<number> {
  const { spec, addresses } = isolatedSpec(processes);
  const setup = simSetup(spec);
  try {
    const runs = await Promise.all(
      addresses.map((address, worker) => {
        const domain = `vm${worker + 1}`;
        const script: WorkerOp[] = [];
        for (let i = 0; i < PAIRS; i++) script.push({ op: 'assign', domain, addresses: [address] }, { op: 'release', domain });
        return runWorkerOk({ root: setup.root, stateDir: setup.stateDir, script, journal, lockTimeoutMs: 300_000 });
      }),
    );
    const done = runs.map((lines) => lines.find((line) => line.done)!);
    const failed = runs.flat().filter((line) => line.ok === false);
    if (failed.length > 0) throw new Error(`operations failed: ${JSON.stringify(failed.slice(0, 3))}`);
    const start = Math.min(...done.map((line) => line.startedAt!));
    const end = Math.max(...done.map((line) => line.endedAt!));
    return (processes * PAIRS * 2) / ((end - start) / 1000);
  } finally {
    fs.rmSync(setup.base, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const processes of [1, 8]) {
  const on = await measure(processes, true);
  const off = await measure(processes, false);
  rows.push(
    `${String(processes).padStart(2)} process(es): journal on ${on.toFixed(1)} ops/s, off ${off.toFixed(1)} ops/s, ` +
      `on/off = ${(on / off).toFixed(2)} (the journal costs ${((1 - on / off) * 100).toFixed(0)}% of throughput)`,
  );
}
console.log(`assign+release on the simulated kernel, ${PAIRS} pairs per process`);
for (const row of rows) console.log(row);
