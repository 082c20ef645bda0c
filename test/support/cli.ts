import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI bundle; test/support/global-setup.ts builds it before the suite. */
export const CLI_BIN = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));
/** The installed command (package.json "bin"): the launcher that runs the start-up snapshot, or CLI_BIN without one. */
export const CLI_COMMAND = fileURLToPath(new URL('../../dist/cli/hostdev', import.meta.url));

/**
 * How runCli starts the CLI: as a user's shell does, by the installed command, so the tests run the
 * start-up snapshot; HOSTDEV_TEST_CLI=bin runs the plain bundle (`node dist/cli/bin.js`) instead.
 */
export function cliProcess(args: readonly string[]): [string, string[]] {
  return process.env['HOSTDEV_TEST_CLI'] === 'bin' ? [process.execPath, [CLI_BIN, ...args]] : [CLI_COMMAND, [...args]];
}

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly input?: string;
  readonly timeoutMs?: number;
}

/** Runs `hostdev ARGS...` in a child process and returns its exit code and output. */
export function runCli(args: readonly string[], options: CliOptions = {}): CliRun {
  const result = spawnSync(...cliProcess(args), {
    encoding: 'utf8',
    env: { ...process.env, ...options.env },
    input: options.input ?? '',
    timeout: options.timeoutMs ?? 30_000,
  });
  if (result.error) throw result.error;
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Like runCli, but does not block the test's event loop (for tests that run several at once). */
export function runCliAsync(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(...cliProcess(args), {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** Parses stdout of a `--json` run. */
export function jsonOf<T = unknown>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${run.code}):\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  }
}
