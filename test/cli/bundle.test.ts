import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN, CLI_COMMAND } from '../support/cli.js';

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

/**
 * The installed command (dist/cli/hostdev) runs the V8 start-up snapshot (dist/cli/hostdev.blob) only with
 * the node binary that built it, and dist/cli/bin.js otherwise. Shown with a stand-in `node` on PATH
 * that prints how it was started, beside a copy of the launcher.
 */
describe('the start-up snapshot', () => {
  let cli: string;
  let fakeNode: string;

  /** The launcher's copy run with ARGS: the stand-in node's argv, one word a line. */
  const started = (file: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): string[] => {
    const run = spawnSync(file, args, { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', PATH: `${path.dirname(fakeNode)}:${process.env['PATH']}`, ...env } });
    expect(run.status, run.stderr).toBe(0);
    return run.stdout.split('\n').filter((line) => line !== '');
  };

  beforeAll(() => {
    cli = path.join(dir, 'launch/dist/cli');
    mkdirSync(cli, { recursive: true });
    copyFileSync(CLI_COMMAND, path.join(cli, 'hostdev'));
    chmodSync(path.join(cli, 'hostdev'), 0o755);
    fakeNode = path.join(dir, 'launch/bin/node');
    mkdirSync(path.dirname(fakeNode));
    writeFileSync(fakeNode, '#!/bin/sh\nfor arg in "$@"; do echo "$arg"; done\n');
    chmodSync(fakeNode, 0o755);
    utimesSync(fakeNode, new Date('2026-01-02T03:04:05Z'), new Date('2026-01-02T03:04:05Z'));
  });

  it('the build made the blob for this node: the command runs it', () => {
    expect(existsSync(path.join(path.dirname(CLI_COMMAND), 'hostdev.blob'))).toBe(true);
    const run = spawnSync('sh', ['-x', CLI_COMMAND, '--version'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain(`--snapshot-blob ${path.join(path.dirname(CLI_COMMAND), 'hostdev.blob')} -- --version`);
  });

  it('runs the blob when the node on PATH has the mtime the build stamped', () => {
    writeFileSync(path.join(cli, 'hostdev.blob'), '');
    writeFileSync(path.join(cli, 'hostdev.blob.node'), '');
    utimesSync(path.join(cli, 'hostdev.blob.node'), statSync(fakeNode).atime, statSync(fakeNode).mtime);
    expect(started(path.join(cli, 'hostdev'), ['list', '--json'])).toEqual(['--snapshot-blob', path.join(cli, 'hostdev.blob'), '--', 'list', '--json']);
    // Through a symbolic link, as npm installs the command.
    symlinkSync(path.join(cli, 'hostdev'), path.join(dir, 'launch/hostdev-link'));
    expect(started(path.join(dir, 'launch/hostdev-link'), ['status'])).toEqual(['--snapshot-blob', path.join(cli, 'hostdev.blob'), '--', 'status']);
  });

  it('runs bin.js when NODE_OPTIONS is set (Node.js refuses a blob under V8 flags it was not built with)', () => {
    writeFileSync(path.join(cli, 'hostdev.blob'), '');
    writeFileSync(path.join(cli, 'hostdev.blob.node'), '');
    utimesSync(path.join(cli, 'hostdev.blob.node'), statSync(fakeNode).atime, statSync(fakeNode).mtime);
    expect(started(path.join(cli, 'hostdev'), ['list'], { NODE_OPTIONS: '--max-semi-space-size=16' })).toEqual([path.join(cli, 'bin.js'), 'list']);
    const run = spawnSync(CLI_COMMAND, ['--version'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=16' } });
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(run.status, run.stderr).toBe(0);
  });

  it('runs bin.js when the blob was built by another node, or is missing', () => {
    writeFileSync(path.join(cli, 'hostdev.blob'), '');
    writeFileSync(path.join(cli, 'hostdev.blob.node'), '');
    utimesSync(path.join(cli, 'hostdev.blob.node'), new Date('2025-05-05T00:00:00Z'), new Date('2025-05-05T00:00:00Z'));
    expect(started(path.join(cli, 'hostdev'), ['list'])).toEqual([path.join(cli, 'bin.js'), 'list']);
    utimesSync(path.join(cli, 'hostdev.blob.node'), statSync(fakeNode).atime, statSync(fakeNode).mtime);
    rmSync(path.join(cli, 'hostdev.blob'));
    expect(started(path.join(cli, 'hostdev'), ['list'])).toEqual([path.join(cli, 'bin.js'), 'list']);
  });

  it('prints what bin.js prints, byte for byte', () => {
    const blob = path.join(path.dirname(CLI_COMMAND), 'hostdev.blob');
    for (const args of [['--help'], ['list', '--help'], ['--root', root, 'list', '--json'], ['--root', root, 'groups'], ['--root', root, 'nosuchcommand']]) {
      const plain = spawnSync(process.execPath, [CLI_BIN, ...args], { encoding: 'utf8' });
      const snapshot = spawnSync(process.execPath, ['--snapshot-blob', blob, '--', ...args], { encoding: 'utf8' });
      expect({ status: snapshot.status, stdout: snapshot.stdout, stderr: snapshot.stderr }).toEqual({ status: plain.status, stdout: plain.stdout, stderr: plain.stderr });
    }
  });
});
