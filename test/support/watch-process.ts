import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cliProcess } from './cli.js';

/** `hostdev watch` running in a child process, its stdout collected line by line. */
export interface Watching {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[];
  stderr: string;
  readonly exited: Promise<number | null>;
}

export function startWatch(root: string, stateDir: string, args: readonly string[]): Watching {
  const child = spawn(...cliProcess(['--root', root, '--state-dir', stateDir, 'watch', ...args]), { stdio: 'pipe' });
  const watching: Watching = {
    child,
    lines: [],
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    watching.lines.push(...parts.filter((line) => line !== ''));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (watching.stderr += chunk));
  return watching;
}

/** Polls `probe` until it gives a value; the bound only tells "live" from "hung". */
export async function until<T>(probe: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
