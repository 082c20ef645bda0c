/**
 * `hostdev list --json` (the real CLI process) against `lspci -Dnnk` on the same generated
 * sysfs trees of 1,024 / 2,048 / 4,096 functions: several interleaved rounds, min and median wall
 * time, the ratio, and the cost per function (linearity). Target: hostdev <= 1.0x lspci.
 *
 * Environment: BENCH_SIZES=1024,2048,4096  BENCH_ROUNDS=7
 *   BENCH_BASE_CLI=/path/to/other/dist/cli/bin.js  also times that build (e.g. the last commit's, from
 *   `git archive`), interleaved in the same rounds: before and after under one machine state.
 *   BENCH_NODE_READER=1  also times this build with its Node.js reader (HOSTDEV_BATCH_READER=node), the
 *   one a host without a C compiler gets.
 *
 * hostdev is run as the installed command is (dist/cli/hostdev: the start-up snapshot), which starts Node.js
 * without NODE_EXTRA_CA_CERTS. When this environment sets that variable, `node dist/cli/bin.js` with
 * it is timed too, so the figures show what it costs.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHost } from '../src/sim/builder.js';
import { generateSpec } from '../src/sim/presets.js';
import { median, timeCommand, type TimedCommand } from './lib/timing.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'dist/cli/hostdev');
const plainCli = path.join(repo, 'dist/cli/bin.js');
const sizes = (process.env['BENCH_SIZES'] ?? '1024,2048,4096').split(',').map(Number);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 7);
const baseCli = process.env['BENCH_BASE_CLI'];
const nodeReader = process.env['BENCH_NODE_READER'] === '1';
const caCerts = process.env['NODE_EXTRA_CA_CERTS'];

type Command = TimedCommand;
const time = (command: Command): { ms: number; stdout: string } => timeCommand(command);

const fmt = (ms: number): string => `${ms.toFixed(1)} ms`.padStart(10);

interface Figures {
  readonly min: number;
  readonly median: number;
}

interface Row {
  readonly functions: number;
  readonly hostdev: Figures;
  readonly lspci: Figures;
  readonly base: Figures | null;
  readonly nodeReader: Figures | null;
  readonly withCaCerts: Figures | null;
}

function measure(functions: number): Row {
  const root = mkdtempSync(path.join(tmpdir(), `hostdev-bench-${functions}-`));
  try {
    buildHost(root, generateSpec(functions));
    const count = readdirSync(path.join(root, 'sys/bus/pci/devices')).length;
    const stateDir = mkdtempSync(path.join(tmpdir(), 'hostdev-bench-state-'));
    const hostdev: Command = {
      name: 'hostdev list --json',
      file: cli,
      args: ['--root', root, 'list', '--json'],
      env: { HOSTDEV_STATE_DIR: stateDir },
    };
    const lspci: Command = {
      name: 'lspci -Dnnk',
      file: 'lspci',
      args: ['-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`, '-Dnnk'],
    };
    // Warm the page cache and check both see every function.
    const listed = (JSON.parse(time(hostdev).stdout) as unknown[]).length;
    const lspciListed = time(lspci).stdout.split('\n').filter((line) => /^[0-9a-f]{4}:/.test(line)).length;
    if (listed !== count || lspciListed !== count) {
      throw new Error(`tree has ${count} functions; hostdev listed ${listed}, lspci ${lspciListed}`);
    }
    const base: Command | null = baseCli
      ? { ...hostdev, name: 'base hostdev list --json', file: process.execPath, args: [baseCli, ...hostdev.args] }
      : null;
    if (base) time(base);
    const withCaCerts: Command | null = caCerts
      ? { ...hostdev, name: 'node bin.js list --json (NODE_EXTRA_CA_CERTS set)', file: process.execPath, args: [plainCli, ...hostdev.args] }
      : null;
    if (withCaCerts) time(withCaCerts);
    const slow: Command | null = nodeReader ? { ...hostdev, name: 'hostdev list --json (Node.js reader)', env: { ...hostdev.env, HOSTDEV_BATCH_READER: 'node' } } : null;
    if (slow) time(slow);
    const slowTimes: number[] = [];
    const ours: number[] = [];
    const theirs: number[] = [];
    const before: number[] = [];
    const caTimes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      // Interleaved, so that load from other processes hits all alike.
      ours.push(time(hostdev).ms);
      theirs.push(time(lspci).ms);
      if (base) before.push(time(base).ms);
      if (withCaCerts) caTimes.push(time(withCaCerts).ms);
      if (slow) slowTimes.push(time(slow).ms);
    }
    rmSync(stateDir, { recursive: true, force: true });
    const figures = (values: number[]): Figures => ({ min: Math.min(...values), median: median(values) });
    return {
      functions: count,
      hostdev: figures(ours),
      lspci: figures(theirs),
      base: base ? figures(before) : null,
      nodeReader: slow ? figures(slowTimes) : null,
      withCaCerts: withCaCerts ? figures(caTimes) : null,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const rows: Row[] = [];
const reader = path.join(repo, 'dist/native/hostdev-sysfs-batch');
console.log(
  `rounds: ${rounds}; wall time of the whole process, output piped; reader: ` +
    (existsSync(reader) ? 'native (dist/native/hostdev-sysfs-batch)' : 'Node.js (no native reader built)'),
);
console.log(
  `${'functions'.padStart(9)}  ${'hostdev min'.padStart(11)}  ${'hostdev med'.padStart(11)}  ${'lspci min'.padStart(10)}  ${'lspci med'.padStart(10)}  ratio(med)  ratio(min)`,
);
for (const size of sizes) {
  const row = measure(size);
  rows.push(row);
  console.log(
    `${String(row.functions).padStart(9)}  ${fmt(row.hostdev.min).padStart(11)}  ${fmt(row.hostdev.median).padStart(11)}  ` +
      `${fmt(row.lspci.min)}  ${fmt(row.lspci.median)}  ${(row.hostdev.median / row.lspci.median).toFixed(2).padStart(9)}x  ` +
      `${(row.hostdev.min / row.lspci.min).toFixed(2).padStart(9)}x`,
  );
  if (row.nodeReader) {
    console.log(
      `${''.padStart(9)}  Node.js reader: ${fmt(row.nodeReader.min)} min ${fmt(row.nodeReader.median)} med  ` +
        `ratio(med) ${(row.nodeReader.median / row.lspci.median).toFixed(2)}x`,
    );
  }
  if (row.withCaCerts) {
    console.log(
      `${''.padStart(9)}  node bin.js with NODE_EXTRA_CA_CERTS: ${fmt(row.withCaCerts.min)} min ${fmt(row.withCaCerts.median)} med  ` +
        `ratio(med) ${(row.withCaCerts.median / row.lspci.median).toFixed(2)}x`,
    );
  }
  if (row.base) {
    console.log(
      `${''.padStart(9)}  base: ${fmt(row.base.min)} min ${fmt(row.base.median)} med  ` +
        `ratio(med) ${(row.base.median / row.lspci.median).toFixed(2)}x  ratio(min) ${(row.base.min / row.lspci.min).toFixed(2)}x`,
    );
  }
}
if (rows.length >= 2) {
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  const perFunction = (a: Row, b: Row, pick: (r: Row) => number): number =>
    ((pick(b) - pick(a)) / (b.functions - a.functions)) * 1000;
  console.log(
    `marginal cost per function (${first.functions} -> ${last.functions}, min times): ` +
      `hostdev ${perFunction(first, last, (r) => r.hostdev.min).toFixed(1)} us, lspci ${perFunction(first, last, (r) => r.lspci.min).toFixed(1)} us`,
  );
  for (let i = 1; i < rows.length; i++) {
    const a = rows[i - 1]!;
    const b = rows[i]!;
    console.log(
      `  ${a.functions} -> ${b.functions}: hostdev ${perFunction(a, b, (r) => r.hostdev.min).toFixed(1)} us/function, ` +
        `lspci ${perFunction(a, b, (r) => r.lspci.min).toFixed(1)} us/function`,
    );
  }
}
