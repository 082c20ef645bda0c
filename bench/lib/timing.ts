import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A command a benchmark runs as its own process. */
export interface TimedCommand {
  readonly name: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

const TIME = '/usr/bin/time';

/**
 * Runs the command once, output captured as a user's pipe would; milliseconds of wall time and stdout.
 * With `cpu` (and GNU time installed) also the command's CPU time, user + system, which a machine
 * shared with other work moves far less than the wall time.
 */
export function timeCommand(
  command: TimedCommand,
  baseEnv: NodeJS.ProcessEnv = process.env,
  options: { readonly cpu?: boolean } = {},
): { ms: number; stdout: string; cpuMs: number | null } {
  const cpu = options.cpu === true && existsSync(TIME);
  const dir = cpu ? mkdtempSync(path.join(tmpdir(), 'hostdev-bench-time-')) : null;
  const out = dir === null ? null : path.join(dir, 'time');
  const [file, args] = out === null ? [command.file, command.args] : [TIME, ['-f', '%U %S', '-o', out, command.file, ...command.args]];
  const start = process.hrtime.bigint();
  const run = spawnSync(file, args, {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...baseEnv, ...command.env },
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  try {
    if (run.status !== 0) throw new Error(`${command.name} failed (${run.status}): ${run.stderr}`);
    const cpuMs = out === null ? null : readFileSync(out, 'utf8').trim().split(/\s+/).slice(-2).reduce((sum, seconds) => sum + Number(seconds) * 1000, 0);
    return { ms, stdout: run.stdout, cpuMs };
  } finally {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
