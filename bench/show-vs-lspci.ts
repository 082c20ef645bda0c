/**
 * `hostdev show ADDR --json` against `lspci -s ADDR -vvv` on generated sysfs trees of 16 to 4,096
 * functions: interleaved rounds, min and median wall time, the ratio per size. Targets: flat in the
 * host size, at most 2x lspci at every size.
 *
 * Environment: BENCH_SIZES=16,256,1024,4096  BENCH_ROUNDS=9
 *   BENCH_BASE_CLI=/path/to/other/dist/cli/bin.js  also times that build in the same rounds.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildHost } from '../src/sim/builder.js';
import { generateSpec } from '../src/sim/presets.js';
import { median, timeCommand, type TimedCommand } from './lib/timing.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(repo, 'dist/cli/bin.js');
const sizes = (process.env['BENCH_SIZES'] ?? '16,256,1024,4096').split(',').map(Number);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 9);
const baseCli = process.env['BENCH_BASE_CLI'];
const env: NodeJS.ProcessEnv = { ...process.env };
delete env['NODE_EXTRA_CA_CERTS'];

const fmt = (values: readonly number[]): string => `min ${Math.min(...values).toFixed(1).padStart(6)}  med ${median(values).toFixed(1).padStart(6)}`;

console.log(`rounds: ${rounds}; wall time of the whole process (ms)`);
for (const size of sizes) {
  const root = mkdtempSync(path.join(tmpdir(), `hostdev-bench-show-${size}-`));
  const stateDir = mkdtempSync(path.join(tmpdir(), 'hostdev-bench-show-state-'));
  try {
    buildHost(root, generateSpec(size));
    const functions = readdirSync(path.join(root, 'sys/bus/pci/devices')).sort();
    // A function in the middle of the host: behind bridges, in a group of its own or not.
    const address = functions[functions.length >> 1]!;
    const args = ['--root', root, 'show', '--json', address];
    const commands: TimedCommand[] = [
      { name: 'hostdev', file: cli, args, env: { HOSTDEV_STATE_DIR: stateDir } },
      { name: 'lspci', file: 'lspci', args: ['-A', 'linux-sysfs', '-O', `sysfs.path=${root}/sys/bus/pci`, '-s', address, '-vvv'] },
      ...(baseCli ? [{ name: 'base', file: process.execPath, args: [baseCli, ...args], env: { HOSTDEV_STATE_DIR: stateDir } }] : []),
    ];
    const times = new Map<string, number[]>(commands.map((command) => [command.name, []]));
    for (const command of commands) timeCommand(command, env);
    for (let round = 0; round < rounds; round++) {
      for (const command of commands) times.get(command.name)!.push(timeCommand(command, env).ms);
    }
    const ratio = (name: string): string => `${(median(times.get(name)!) / median(times.get('lspci')!)).toFixed(2)}x lspci (med)`;
    console.log(`${String(functions.length).padStart(5)} functions, show ${address}`);
    for (const command of commands) {
      console.log(`  ${command.name.padEnd(8)} ${fmt(times.get(command.name)!)}${command.name === 'lspci' ? '' : `  ${ratio(command.name)}`}`);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  }
}
