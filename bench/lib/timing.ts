import { spawnSync } from 'node:child_process';

/** A command a benchmark runs as its own process. */
export interface TimedCommand {
  readonly name: string;
  readonly file: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs the command once, output captured as a user's pipe would; milliseconds of wall time and stdout. */
export function timeCommand(command: TimedCommand, baseEnv: NodeJS.ProcessEnv = process.env): { ms: number; stdout: string } {
  const start = process.hrtime.bigint();
  const run = spawnSync(command.file, command.args, {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...baseEnv, ...command.env },
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (run.status !== 0) throw new Error(`${command.name} failed (${run.status}): ${run.stderr}`);
  return { ms, stdout: run.stdout };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
