import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';

/** A command left running while the test goes on: its exit and output once it ends. */
export interface Background {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  finished(): boolean;
  /** What it has written to stderr so far. */
  stderr(): string;
}

const children: ChildProcess[] = [];

/** Registers the kill of every command still running after each test of the file that calls it. */
export function killBackgroundAfterEach(): void {
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

export function background(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Background {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  let over = false;
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      over = true;
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done, finished: () => over, stderr: () => stderr };
}

/** Polls `check` every 20 ms until it holds; fails after `ms`. */
export async function waitFor(check: () => boolean, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
