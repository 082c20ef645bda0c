// Benchmark: how long after VFs leave the host (`echo 0 > sriov_numvfs` on the PF while domains
// hold them) `hostdev watch` has them out of the tables, per event source:
//   poll (every 1,000 ms and every 250 ms), sim (the simulator's uevent log through inotify), and
//   udev-shaped (`--source udev` with a stand-in udevadm that prints the simulator's uevents in
//   `udevadm monitor --kernel --property` format, so the udev parsing path is what is timed).
// The real udev source cannot be timed here: no real SR-IOV device may be touched on this machine
// and the simulated tree produces no kernel uevents. Figures only; `npm run bench -- prune-latency`.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PciAddress } from '../src/core/address.js';
import { HostdevManager } from '../src/manager/hostdev-manager.js';
import { buildHost } from '../src/sim/builder.js';
import { SimKernel } from '../src/sim/kernel.js';
import { presets } from '../src/sim/presets.js';
import { StateStore } from '../src/state/store.js';

const ROUNDS = 3;
const PF = '0000:01:00.0';
const VFS = ['0000:01:10.0', '0000:01:10.2'] as PciAddress[];
const CLI = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));

interface Source {
  readonly label: string;
  readonly args: readonly string[];
  readonly fakeUdev?: boolean;
}
const SOURCES: readonly Source[] = [
  { label: 'poll 1000 ms', args: ['--source', 'poll', '--interval', '1000'] },
  { label: 'poll 250 ms', args: ['--source', 'poll', '--interval', '250'] },
  { label: 'sim (inotify)', args: ['--source', 'sim', '--interval', '1000'] },
  { label: 'udev-shaped', args: ['--source', 'udev', '--interval', '1000'], fakeUdev: true },
];

/** A stand-in udevadm: follows events.jsonl and prints each entry as `udevadm monitor` would. */
function writeFakeUdevadm(dir: string, root: string): void {
  const script = `#!${process.execPath}
const fs = require('node:fs');
const file = ${JSON.stringify(path.join(root, '.hostdev-sim', 'events.jsonl'))};
let offset = fs.existsSync(file) ? fs.statSync(file).size : 0;
let partial = '';
process.stdout.write('monitor will print the received events for:\\nKERNEL - the kernel uevent\\n\\n');
const drain = () => {
  const size = fs.existsSync(file) ? fs.statSync(file).size : 0;
  if (size <= offset) return;
  const fd = fs.openSync(file, 'r');
  const buffer = Buffer.alloc(size - offset);
  fs.readSync(fd, buffer, 0, buffer.length, offset);
  fs.closeSync(fd);
  offset = size;
  const lines = (partial + buffer.toString('utf8')).split('\\n');
  partial = lines.pop();
  for (const line of lines) {
    if (!line) continue;
    const e = JSON.parse(line);
    process.stdout.write('KERNEL[' + (Date.now() / 1000).toFixed(6) + '] ' + e.action + ' /devices/pci0000:00/' + e.address + ' (pci)\\n' +
      'ACTION=' + e.action + '\\nPCI_SLOT_NAME=' + e.address + '\\n' + (e.driver ? 'DRIVER=' + e.driver + '\\n' : '') + 'SUBSYSTEM=pci\\n\\n');
  }
};
fs.watch(require('node:path').dirname(file), drain);
setInterval(drain, 1000);
`;
  const target = path.join(dir, 'udevadm');
  writeFileSync(target, script);
  chmodSync(target, 0o755);
}

async function until(probe: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!probe()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(source: Source): Promise<number[]> {
  const base = mkdtempSync(path.join(tmpdir(), 'hostdev-bench-prune-'));
  const root = path.join(base, 'root');
  const stateDir = path.join(base, 'state');
  buildHost(root, presets['sriov-nic']!);
  const kernel = new SimKernel(root);
  const env = { ...process.env };
  if (source.fakeUdev) {
    writeFakeUdevadm(base, root);
    env['PATH'] = `${base}:${env['PATH'] ?? ''}`;
  }
  let watch: ChildProcess | null = null;
  const latencies: number[] = [];
  try {
    watch = spawn(process.execPath, [CLI, '--root', root, '--state-dir', stateDir, 'watch', '--json', ...source.args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    watch.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    watch.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    await until(() => stderr.includes('watching PCI devices'), 'watch to start');
    const store = StateStore.open(stateDir);
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const manager = await HostdevManager.open({ root, stateDir, kernel });
        try {
          for (const [i, vf] of VFS.entries()) await manager.assign({ domain: `vm${i + 1}`, addresses: [vf] });
        } finally {
          manager.close();
        }
        const returnedBefore = stdout.split('"kind":"returned"').length;
        const write = kernel.write(`/sys/bus/pci/devices/${PF}/sriov_numvfs`, '0');
        const vfDir = path.join(root, 'sys/bus/pci/devices', VFS[0]!);
        await until(() => !existsSync(vfDir), 'the VFs to go');
        const removedAt = performance.now();
        await until(() => store.readTables().active.length === 0, 'a clean table');
        latencies.push(performance.now() - removedAt);
        await write;
        await kernel.write(`/sys/bus/pci/devices/${PF}/sriov_numvfs`, '2');
        await until(() => stdout.split('"kind":"returned"').length >= returnedBefore + VFS.length, '"returned" events');
      }
    } finally {
      store.close();
    }
  } finally {
    watch?.kill('SIGTERM');
    kernel.close();
    await new Promise((resolve) => setTimeout(resolve, 200));
    rmSync(base, { recursive: true, force: true });
  }
  return latencies;
}

const results: Array<{ label: string; median: number; all: number[] }> = [];
for (const source of SOURCES) {
  const all = await measure(source);
  results.push({ label: source.label, median: median(all), all });
  console.log(`${source.label.padEnd(14)} removal -> clean table: median ${median(all).toFixed(0)} ms  (runs: ${all.map((ms) => ms.toFixed(0)).join(', ')})`);
}
const poll = results[0]!.median;
for (const result of results.slice(1)) console.log(`ratio ${result.label} / poll 1000 ms: ${(result.median / poll).toFixed(3)}`);
console.log('real udev source: not measurable here (no SR-IOV hardware may be touched; a simulated tree emits no kernel uevents)');
