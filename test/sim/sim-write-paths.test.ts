import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { cleanupRoots, presetRoot } from './helpers.js';

// `sim write` is `echo VALUE > /sys/...`: only sysfs takes it, and what is not an attribute
// fails with the errno open(2) gives, as exit 6 with a hint, never exit 1.

afterAll(() => cleanupRoots());

describe('sim write takes paths under /sys only', () => {
  it('refuses the simulator\'s own files and anything outside /sys with exit 2; the database is untouched', () => {
    const root = presetRoot('sriov-nic');
    const db = path.join(root, '.hostdev-sim/state.db');
    const before = fs.readFileSync(db);
    for (const target of ['/.hostdev-sim/state.db', '/sys/../.hostdev-sim/state.db', '/dev/vfio/vfio', '/proc/sys/kernel/osrelease', 'sys/bus/pci/rescan']) {
      const run = runCli(['--root', root, 'sim', 'write', target, '1']);
      expect(run.code, `${target}: ${run.stderr}`).toBe(2);
      expect(run.stderr).toContain('under /sys');
    }
    expect(fs.readFileSync(db).equals(before)).toBe(true);
    expect(runCli(['--root', root, 'list']).code).toBe(0);
  });

  it('a directory is EISDIR, a socket in place of driver_override ENXIO: exit 6 with a hint', async () => {
    const root = presetRoot('sriov-nic');
    const dir = runCli(['--json', '--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:01:10.0/net', '1']);
    expect(dir.code, dir.stderr).toBe(6);
    expect(JSON.parse(dir.stderr).error.details.errno).toBe('EISDIR');
    const override = path.join(fs.realpathSync(path.join(root, 'sys/bus/pci/devices/0000:01:10.0')), 'driver_override');
    fs.rmSync(override);
    const server = net.createServer().listen(override);
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const sock = runCli(['--json', '--root', root, 'sim', 'write', '/sys/bus/pci/devices/0000:01:10.0/driver_override', 'vfio-pci']);
      expect(sock.code, sock.stderr).toBe(6);
      expect(JSON.parse(sock.stderr).error.details.errno).toBe('ENXIO');
      const state = path.join(path.dirname(root), 'state');
      const detach = runCli(['--json', '--root', root, '--state-dir', state, 'detach', '0000:01:10.0']);
      expect(detach.code, detach.stderr).toBe(6);
      expect(JSON.parse(detach.stderr).error.details.errno).toBe('ENXIO');
    } finally {
      server.close();
    }
  });
});
