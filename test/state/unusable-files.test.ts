import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';

// A state database hostdev cannot use is exit 7 (HOSTDEV_STATE) with a message and a hint, never
// exit 1, and is never replaced or read as something it is not.

const host = simHostPerTest('hostdev-unusable-', 'sriov-nic');
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const undo of cleanups.splice(0).reverse()) undo();
});

const run = (stateDir: string, ...args: string[]): CliRun => runCli(['--json', '--root', host.root, '--state-dir', stateDir, '--simulate', ...args]);

function unusable(result: CliRun, says: string): void {
  expect(result.code, result.stderr).toBe(7);
  const error = JSON.parse(result.stderr).error;
  expect(error.code).toBe('HOSTDEV_STATE');
  expect(error.message).toContain(says);
  expect(error.hint.length).toBeGreaterThan(0);
}

describe('state databases hostdev cannot use', () => {
  it('a dangling state.db link: exit 7 naming the link, and no database is created through it', () => {
    fs.mkdirSync(host.stateDir, { mode: 0o700 });
    const gone = path.join(path.dirname(host.root), 'elsewhere', 'state.db');
    fs.symlinkSync(gone, path.join(host.stateDir, 'state.db'));
    for (const command of [['status'], ['detach', '0000:01:10.0'], ['detach', '--dry-run', '0000:01:10.0']]) {
      unusable(run(host.stateDir, ...command), 'which does not exist');
    }
    expect(fs.existsSync(gone)).toBe(false);
  });

  it('a FIFO in place of state.db is named as a FIFO, not "truncated (0 bytes)"', () => {
    fs.mkdirSync(host.stateDir, { mode: 0o700 });
    execFileSync('mkfifo', [path.join(host.stateDir, 'state.db')]);
    unusable(run(host.stateDir, 'status'), 'is a FIFO');
    unusable(run(host.stateDir, 'detach', '--dry-run', '0000:01:10.0'), 'is a FIFO');
  });

  it('an immutable state.db (chattr +i): exit 7 before any sysfs write, the device stays on its driver', (context) => {
    expect(run(host.stateDir, 'status').code).toBe(0);
    const db = path.join(host.stateDir, 'state.db');
    if (spawnSync('chattr', ['+i', db]).status !== 0) {
      console.log('skipped: chattr +i is not permitted here (not root, or the filesystem has no immutable flag)');
      context.skip();
    }
    cleanups.push(() => spawnSync('chattr', ['-i', db]));
    unusable(run(host.stateDir, 'detach', '0000:01:10.0'), 'cannot write');
    const driver = path.basename(fs.readlinkSync(path.join(host.root, 'sys/bus/pci/devices/0000:01:10.0/driver')));
    expect(driver).toBe('igbvf');
  });

  it('a state dir on a read-only filesystem (EROFS): exit 7, fresh or existing', (context) => {
    const mount = fs.mkdtempSync(path.join(path.dirname(host.root), 'ro-'));
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]).status !== 0) {
      console.log('skipped: mounting a tmpfs is not permitted here');
      context.skip();
    }
    cleanups.push(() => spawnSync('umount', [mount]));
    const loose = path.join(mount, 'loose');
    fs.mkdirSync(loose, { mode: 0o755 });
    fs.chmodSync(loose, 0o755);
    expect(spawnSync('mount', ['-o', 'remount,ro', mount]).status).toBe(0);
    unusable(run(path.join(mount, 'fresh'), 'status'), 'cannot create the state directory');
    unusable(run(loose, 'status'), 'read-only file system');
  });
});
