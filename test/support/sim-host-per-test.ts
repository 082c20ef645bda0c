import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { runCli, type CliRun } from './cli.js';

/**
 * Registers hooks that give each test of the file its own simulated host (`hostdev sim create`)
 * and state dir, so one failure cannot cascade into the next. Read `root`/`stateDir` inside tests.
 */
export function simHostPerTest(prefix: string, preset: string): { readonly root: string; readonly stateDir: string } {
  let base = '';
  let hosts = 0;
  const current = { root: '', stateDir: '' };
  beforeAll(() => {
    base = mkdtempSync(path.join(tmpdir(), prefix));
  });
  beforeEach(() => {
    hosts += 1;
    current.root = path.join(base, `root-${hosts}`);
    current.stateDir = path.join(base, `state-${hosts}`);
    expect(runCli(['sim', 'create', current.root, '--preset', preset]).code).toBe(0);
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  return current;
}

/** `hostdev --root ROOT --state-dir DIR --simulate ARGS...` on the test's host: `cli` runs, `ok` also expects exit 0. */
export function simHostCli(host: { readonly root: string; readonly stateDir: string }): {
  cli: (...args: string[]) => CliRun;
  ok: (...args: string[]) => CliRun;
} {
  const cli = (...args: string[]): CliRun => runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', ...args]);
  const ok = (...args: string[]): CliRun => {
    const run = cli(...args);
    expect(run.code, `${args.join(' ')}\n${run.stderr}`).toBe(0);
    return run;
  };
  return { cli, ok };
}

/** One host copy of `simHostCopies`, with a `cli` that runs on it (`env` added to the process's). */
export interface SimHostCopy {
  readonly root: string;
  readonly stateDir: string;
  readonly cli: (args: string[], env?: NodeJS.ProcessEnv) => CliRun;
}

/**
 * Registers hooks that make one simulated host of `preset` for the file (`sim create` is the slow
 * part) and returns `fresh(name)`: a copy of it with an empty state dir, for one case.
 */
export function simHostCopies(prefix: string, preset: string): (name: string) => SimHostCopy {
  let base = '';
  let template = '';
  beforeAll(() => {
    base = mkdtempSync(path.join(tmpdir(), prefix));
    template = path.join(base, 'template');
    expect(runCli(['sim', 'create', template, '--preset', preset]).code).toBe(0);
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  return (name) => {
    const root = path.join(base, name, 'root');
    const stateDir = path.join(base, name, 'state');
    cpSync(template, root, { recursive: true, verbatimSymlinks: true });
    return { root, stateDir, cli: (args, env) => runCli(['--root', root, '--state-dir', stateDir, '--simulate', ...args], env ? { env } : {}) };
  };
}
