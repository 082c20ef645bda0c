// Benchmark: what one look at the host costs `hostdev watch` (every poll tick, every uevent), on
// generated trees of 1,024 and 4,096 functions: the device states it compares (readDeviceStates,
// five ops per function) against the whole inventory it read before (readInventory: twelve ops and
// the config walk), both in this process, interleaved; then the snapshot child's round trip
// (ChildSnapshotReader.read(), what the watcher waits for). Figures only: `npm run bench -- watch-snapshot`.
// Environment: BENCH_SIZES=1024,4096  BENCH_ROUNDS=9
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChildSnapshotReader } from '../src/events/snapshot-reader.js';
import { buildHost } from '../src/sim/builder.js';
import { generateSpec } from '../src/sim/presets.js';
import { readDeviceStates } from '../src/sysfs/device-states.js';
import { SysfsLayout } from '../src/sysfs/paths.js';
import { readInventory, readVirtfnLinks } from '../src/sysfs/reader.js';

const sizes = (process.env['BENCH_SIZES'] ?? '1024,4096').split(',').map(Number);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 9);

/** What the watcher read before: the whole inventory, and each PF's virtfnN links besides. */
function inventoryStates(layout: SysfsLayout): number {
  const devices = readInventory(layout, { names: null }).devices;
  for (const device of devices) if (device.sriov !== null) readVirtfnLinks(layout, device.address);
  return devices.length;
}

function timed(run: () => unknown): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const min = (values: readonly number[]): number => Math.min(...values);
const figure = (values: readonly number[]): string => `${min(values).toFixed(1)}/${median(values).toFixed(1)} ms`;

const base = mkdtempSync(path.join(tmpdir(), 'hostdev-bench-snapshot-'));
try {
  console.log(`rounds: ${rounds}; ms min/median; in-process reads interleaved, then the child's round trips`);
  for (const size of sizes) {
    const root = path.join(base, String(size));
    buildHost(root, generateSpec(size));
    const layout = new SysfsLayout(root);
    if (readDeviceStates(layout).length !== inventoryStates(layout)) throw new Error('the two reads disagree on the function count');
    const states: number[] = [];
    const inventory: number[] = [];
    for (let round = 0; round < rounds; round++) {
      states.push(timed(() => readDeviceStates(layout)));
      inventory.push(timed(() => inventoryStates(layout)));
    }
    const reader = new ChildSnapshotReader(root, 60_000);
    const child: number[] = [];
    try {
      await reader.read(); // the fork and the module loading, once per watch
      for (let round = 0; round < rounds; round++) {
        const start = performance.now();
        await reader.read();
        child.push(performance.now() - start);
      }
    } finally {
      await reader.close();
    }
    const ratio = median(inventory) / median(states);
    console.log(
      `${size} functions: device states ${figure(states)}, whole inventory ${figure(inventory)} (${ratio.toFixed(1)}x the states), ` +
        `snapshot child round trip ${figure(child)} (${((median(child) * 1000) / size).toFixed(1)} µs/function)`,
    );
  }
} finally {
  rmSync(base, { recursive: true, force: true });
}
