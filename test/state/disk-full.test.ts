import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StateStore } from '../../src/state/store.js';
import { jsonOf, runCli } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';

// The state directory on a real 1 MiB tmpfs, filled to a few KiB of free space: an assign with VF
// network config either succeeds (the reserve kept in the state directory takes its journal and
// commit) or ends with exit 7 and a hint, never exit 1; and after space is freed the next command
// leaves the VF in a table on vfio-pci or back on igbvf in none: no device is leaked.
const host = simHostPerTest('hostdev-disk-full-', 'sriov-nic');
const VF = '0000:01:10.3';
const mounts: string[] = [];
afterEach(() => {
  for (const mount of mounts.splice(0)) spawnSync('umount', [mount]);
});

const driverOf = (root: string): string | null => {
  try {
    return path.basename(fs.readlinkSync(path.join(root, 'sys/bus/pci/devices', VF, 'driver')));
  } catch {
    return null;
  }
};

/** Fills the filesystem of `dir` until about `free` bytes are left. */
function fillTo(dir: string, free: number): void {
  let n = 0;
  for (;;) {
    const avail = Number(fs.statfsSync(dir).bavail) * Number(fs.statfsSync(dir).bsize);
    if (avail <= free) return;
    const chunk = Math.max(4096, Math.min(65536, avail - free));
    try {
      fs.writeFileSync(path.join(dir, `fill-${n++}`), Buffer.alloc(chunk));
    } catch {
      return;
    }
  }
}

describe('a full state filesystem', () => {
  it('assign with --mac/--vlan: exit 0 or 7, never 1, and no leaked VF, at every free-space level', (context) => {
    const mount = fs.mkdtempSync(path.join(path.dirname(host.root), 'tmpfs-'));
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mount]).status !== 0) {
      console.log('skipped: mounting a tmpfs is not permitted here (the disk-full case needs a real small filesystem)');
      context.skip();
    }
    mounts.push(mount);
    const outcomes: Record<number, number> = {};
    const levels = [0, 4096, 16384, 32768, 65536, 98304, 131072, 262144, 327680];
    for (const [trial, free] of levels.entries()) {
      const stateDir = path.join(mount, `state-${trial}`);
      const fill = path.join(mount, `fill-${trial}`);
      const cli = (...args: string[]) => runCli(['--json', '--root', host.root, '--state-dir', stateDir, '--simulate', ...args]);
      // a first operation makes the database and the reserve
      expect(cli('detach', VF).code).toBe(0);
      expect(cli('reattach', VF).code).toBe(0);
      fs.mkdirSync(fill);
      fillTo(fill, free);
      const run = cli('assign', '--domain', 'vm3', '--mac', '52:54:00:00:00:33', '--vlan', '3', VF);
      outcomes[run.code] = (outcomes[run.code] ?? 0) + 1;
      expect([0, 7], `free ${free}: exit ${run.code} ${run.stderr}`).toContain(run.code);
      if (run.code === 7) {
        const error = JSON.parse(run.stderr.slice(run.stderr.indexOf('{'))).error;
        expect(error.code).toBe('HOSTDEV_STATE');
        expect(error.hint).toContain('Free space');
      }
      fs.rmSync(fill, { recursive: true, force: true });
      const status = cli('status');
      expect(status.code, status.stderr).toBe(0);
      const tables = jsonOf<{ active: Array<{ address: string; stubDriver: string }> }>(status);
      const entry = tables.active.find((e) => e.address === VF);
      if (entry !== undefined) expect(driverOf(host.root)).toBe(entry.stubDriver);
      else expect(driverOf(host.root)).toBe('igbvf');
      const store = StateStore.open(stateDir);
      try {
        expect(store.readJournal()).toEqual([]);
      } finally {
        store.close();
      }
      if (entry !== undefined) expect(cli('release', '--domain', 'vm3').code).toBe(0);
      expect(driverOf(host.root)).toBe('igbvf');
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
    console.log(`disk full: ${levels.length} trials, exits ${JSON.stringify(outcomes)}, no VF leaked`);
  }, 180_000);
});
