/**
 * What a user feels on a small host: `hostdev --help` against `node -e 0`, and `hostdev list` on a
 * simulated host of 16 functions and on this machine's own /sys against `lspci -Dnnk` on the same
 * tree. Every command is run in each round, interleaved, so load from other processes hits all alike;
 * min and median wall time and the ratios. Targets: list at most 2x lspci, --help at most 1.5x node.
 * hostdev is the installed command (dist/cli/hostdev: the V8 start-up snapshot when it was built for
 * this node); `plain` is the bundle without the snapshot (`node dist/cli/bin.js`), timed in the same rounds.
 *
 * Environment: BENCH_ROUNDS=11
 *   BENCH_BASE_CLI=/path/to/other/dist/cli/bin.js  also times that build in the same rounds (before
 *   and after under one machine state).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHost } from '../src/sim/builder.js';
import { generateSpec } from '../src/sim/presets.js';
import { median, timeCommand, type TimedCommand } from './lib/timing.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'dist/cli/hostdev');
const plainCli = path.join(repo, 'dist/cli/bin.js');
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 11);
const baseCli = process.env['BENCH_BASE_CLI'];

type Case = TimedCommand;

// Without NODE_EXTRA_CA_CERTS for every command (the installed hostdev drops it by its #! line): when
// set, Node.js parses the CA bundle at start-up, which would make node -e 0 and another build slow.
const baseEnv: NodeJS.ProcessEnv = { ...process.env };
delete baseEnv['NODE_EXTRA_CA_CERTS'];
// Also the CPU time (GNU time, when installed): on a machine shared with other work it moves far less than the wall time.
const cpuTimes = new Map<string, number[]>();
const run = (command: Case): number => {
  const { ms, cpuMs } = timeCommand(command, baseEnv, { cpu: true });
  if (cpuMs !== null) cpuTimes.set(command.name, [...(cpuTimes.get(command.name) ?? []), cpuMs]);
  return ms;
};

const root = mkdtempSync(path.join(tmpdir(), 'hostdev-bench-startup-'));
const stateDir = mkdtempSync(path.join(tmpdir(), 'hostdev-bench-startup-state-'));
try {
  buildHost(root, generateSpec(16));
  const env = { HOSTDEV_STATE_DIR: stateDir };
  const hostdevCases = (label: string, file: string): Case[] => {
    // The installed command is run as a shell runs it; a bundle is run by this node.
    const exec = (args: string[]): Pick<Case, 'file' | 'args'> =>
      file === cli ? { file, args } : { file: process.execPath, args: [file, ...args] };
    return [
      { name: `${label} --help`, ...exec(['--help']), env },
      { name: `${label} list (16 functions)`, ...exec(['--root', root, 'list']), env },
      { name: `${label} list (this host)`, ...exec(['list']), env },
      { name: `${label} list --json (16)`, ...exec(['--root', root, 'list', '--json']), env },
    ];
  };
  const peers: Case[] = [
    { name: 'node -e 0', file: process.execPath, args: ['-e', '0'] },
    { name: 'lspci -Dnnk (16 functions)', file: 'lspci', args: ['-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`, '-Dnnk'] },
    { name: 'lspci -Dnnk (this host)', file: 'lspci', args: ['-Dnnk'] },
  ];
  const cases = [...peers, ...hostdevCases('hostdev', cli), ...hostdevCases('plain', plainCli), ...(baseCli ? hostdevCases('base', baseCli) : [])];
  const times = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (const c of cases) run(c); // warm the page cache
  cpuTimes.clear();
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) times.get(c.name)!.push(run(c));
  }
  const med = (name: string): number => median(times.get(name)!);
  const min = (name: string): number => Math.min(...times.get(name)!);
  console.log(`rounds: ${rounds}; wall time of the whole process`);
  for (const c of cases) {
    const cpu = cpuTimes.has(c.name) ? `  cpu med ${median(cpuTimes.get(c.name)!).toFixed(0).padStart(4)} ms` : '';
    console.log(`${c.name.padEnd(36)} min ${min(c.name).toFixed(1).padStart(7)} ms  med ${med(c.name).toFixed(1).padStart(7)} ms${cpu}`);
  }
  const cpuMed = (name: string): number => median(cpuTimes.get(name)!);
  const ratio = (a: string, b: string): string =>
    `${a} / ${b}: ${(med(a) / med(b)).toFixed(2)}x (med), ${(min(a) / min(b)).toFixed(2)}x (min)` +
    (cpuTimes.has(a) && cpuTimes.has(b) && cpuMed(b) > 0 ? `, cpu ${(cpuMed(a) / cpuMed(b)).toFixed(2)}x (med)` : '');
  for (const label of ['hostdev', 'plain', ...(baseCli ? ['base'] : [])]) {
    console.log(ratio(`${label} --help`, 'node -e 0') + '   target <= 1.5x');
    console.log(ratio(`${label} list (16 functions)`, 'lspci -Dnnk (16 functions)') + '   target <= 2x');
    console.log(ratio(`${label} list (this host)`, 'lspci -Dnnk (this host)') + '   target <= 2x');
  }
  for (const what of ['--help', 'list (16 functions)', 'list (this host)', 'list --json (16)']) console.log(ratio(`hostdev ${what}`, `plain ${what}`) + '   snapshot / plain');
} finally {
  rmSync(root, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
}
