import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { jsonOf, runCli } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';

// A process holding the state database open (a `watch`) must not keep every commit in the WAL:
// each commit is copied into state.db, and a WAL lost before that is reported by the next open.
const host = simHostPerTest('hostdev-wal-', 'sriov-nic');
const VF = '0000:01:10.0';
const REPO = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) => runCli(['--json', '--root', host.root, '--state-dir', host.stateDir, '--simulate', ...args]);

/** A process with the database open (and, with `snapshot`, a read transaction that pins the WAL). */
async function holder(snapshot: boolean): Promise<{ kill: () => void }> {
  const code = `import Database from 'better-sqlite3';
    const db = new Database(${JSON.stringify(path.join(host.stateDir, 'state.db'))});
    ${snapshot ? "db.prepare('BEGIN').run(); db.prepare('SELECT count(*) FROM active').get();" : ''}
    console.log('ready'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
  return { kill: () => child.kill('SIGKILL') };
}

describe('the WAL while another process holds the database open', () => {
  it('a copy of state.db alone has the entries committed meanwhile', async () => {
    expect(cli('status').code).toBe(0);
    const watch = await holder(false);
    try {
      expect(cli('assign', '--domain', 'vm1', VF).code).toBe(0);
      const copy = path.join(path.dirname(host.stateDir), 'copy.db');
      fs.copyFileSync(path.join(host.stateDir, 'state.db'), copy);
      const db = new Database(copy, { readonly: true });
      try {
        expect(db.prepare('SELECT key FROM active').all()).toEqual([{ key: `pci:${VF}` }]);
      } finally {
        db.close();
      }
    } finally {
      watch.kill();
    }
  });

  it('a WAL deleted before it was copied in is reported by status as an integrity warning', async () => {
    expect(cli('status').code).toBe(0);
    const reader = await holder(true);
    expect(cli('detach', VF).code).toBe(0);
    for (const suffix of ['-wal', '-shm']) fs.rmSync(path.join(host.stateDir, `state.db${suffix}`), { force: true });
    reader.kill();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const status = cli('status');
    expect(status.code, status.stderr).toBe(0);
    expect(jsonOf<{ inactive: unknown[] }>(status).inactive).toEqual([]);
    expect(status.stderr).toMatch(/integrity: the state database .* holds \d+ commits but \d+ were made: its write-ahead log/);
  });
});
