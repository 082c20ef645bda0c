import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN } from '../support/cli.js';

/**
 * The built CLI is the bundle of scripts/bundle-cli.mjs: a run loads dist/cli/bin.js and its chunks,
 * not tsc's ~60 modules, and the npm packages only a few commands need are loaded only by them.
 */
let dir: string;
let hooks: string;
let root: string;

/** The files (under dist/ or node_modules/) a CLI run loads, as paths relative to the checkout. */
function loadedBy(args: readonly string[]): string[] {
  const run = spawnSync(process.execPath, ['--import', pathToFileURL(hooks).href, CLI_BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, HOSTDEV_STATE_DIR: path.join(dir, 'state') },
    timeout: 30_000,
  });
  expect(run.status, run.stderr).toBe(0);
  const repo = path.resolve(path.dirname(CLI_BIN), '../..');
  return run.stderr
    .split('\n')
    .filter((line) => line.startsWith('LOADED file://'))
    .map((line) => path.relative(repo, new URL(line.slice('LOADED '.length)).pathname));
}

const packageOf = (file: string): string | null => /node_modules\/((@[^/]+\/)?[^/]+)/.exec(file)?.[1] ?? null;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-bundle-'));
  writeFileSync(
    path.join(dir, 'hooks.mjs'),
    'export async function load(url, context, next) { process.stderr.write(`LOADED ${url}\\n`); return next(url, context); }\n',
  );
  hooks = path.join(dir, 'register.mjs');
  writeFileSync(hooks, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(path.join(dir, 'hooks.mjs')).href)});\n`);
  root = path.join(dir, 'host');
  expect(spawnSync(process.execPath, [CLI_BIN, 'sim', 'create', root, '--preset', 'sriov-nic'], { encoding: 'utf8' }).status).toBe(0);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the bundled CLI', () => {
  it('--help loads only the bundle: bin.js and its chunks, no npm package', () => {
    const loaded = loadedBy(['--help']);
    expect(loaded).toContain('dist/cli/bin.js');
    expect(loaded.filter((file) => !/^dist\/cli\/(bin|chunk-[^/]+)\.js$/.test(file))).toEqual([]);
  });

  it('list and status under --simulate load no daemon, kubelet or schema package', () => {
    const heavy = new Set(['zod', 'fastify', 'pino', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'prom-client', 'yaml']);
    for (const args of [
      ['--root', root, 'list'],
      ['--root', root, '--simulate', 'status', '--json'],
    ]) {
      const loaded = loadedBy(args);
      expect(loaded.filter((file) => !file.startsWith('dist/cli/') && packageOf(file) === null)).toEqual([]);
      expect(loaded.map(packageOf).filter((name) => name !== null && heavy.has(name))).toEqual([]);
    }
  });
});
