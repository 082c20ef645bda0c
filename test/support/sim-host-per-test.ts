import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import { runCli } from './cli.js';

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
