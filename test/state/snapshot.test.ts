import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isHostdevError } from '../../src/core/errors.js';
import { MIGRATIONS, SCHEMA_VERSION, migrate } from '../../src/state/schema.js';
import { DB_FILE, StateStore } from '../../src/state/store.js';
import { active, inactive, tempDir } from './helpers.js';
import { removeChange } from '../../src/core/tables.js';

/** The names and bytes of every file in a directory. */
function filesOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) out[name] = fs.readFileSync(path.join(dir, name)).toString('base64');
  return out;
}

async function seeded(): Promise<string> {
  const dir = tempDir();
  const store = StateStore.open(dir);
  await store.exclusive('assign', async (op) => op.commit([{ kind: 'set-active', entry: active(1) }]));
  store.close();
  return dir;
}

describe('StateStore.openSnapshot (dry runs)', () => {
  it('reads the committed tables, and commits to the snapshot stay in memory', async () => {
    const dir = await seeded();
    const before = filesOf(dir);
    const snapshot = StateStore.openSnapshot(dir);
    expect(snapshot.snapshot).toBe(true);
    expect(snapshot.readTables()).toEqual({ active: [active(1)], inactive: [] });
    await snapshot.exclusive('assign', async (op) =>
      op.commit([removeChange(active(1).address), { kind: 'set-inactive', entry: inactive(2) }]),
    );
    expect(snapshot.readTables()).toEqual({ active: [], inactive: [inactive(2)] });
    snapshot.close();
    expect(filesOf(dir)).toEqual(before);
    const real = StateStore.open(dir);
    expect(real.readTables()).toEqual({ active: [active(1)], inactive: [] });
    real.close();
  });

  it('sees commits still in the WAL of a store another connection holds open', async () => {
    const dir = tempDir();
    const store = StateStore.open(dir);
    await store.exclusive('assign', async (op) => op.commit([{ kind: 'set-inactive', entry: inactive(3) }]));
    expect(fs.existsSync(path.join(dir, `${DB_FILE}-wal`))).toBe(true);
    const snapshot = StateStore.openSnapshot(dir);
    expect(snapshot.readTables().inactive).toEqual([inactive(3)]);
    snapshot.close();
    store.close();
  });

  it('creates nothing when the state directory does not exist, and starts from empty tables', () => {
    const dir = path.join(tempDir(), 'absent');
    const snapshot = StateStore.openSnapshot(dir);
    expect(snapshot.readTables()).toEqual({ active: [], inactive: [] });
    expect(snapshot.schemaVersion()).toBe(SCHEMA_VERSION);
    snapshot.close();
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('brings an older schema up to date in memory only: the file keeps its version', () => {
    const dir = tempDir();
    const dbPath = path.join(dir, DB_FILE);
    const old = new Database(dbPath);
    migrate(old, MIGRATIONS.slice(0, 1));
    old.prepare("INSERT INTO active VALUES ('0000:01:00.0', 'qemu', 'vm1', 1, 'vfio-pci', 'e1000e', ?)").run(new Date(0).toISOString());
    old.close();
    const before = filesOf(dir);
    const snapshot = StateStore.openSnapshot(dir);
    expect(snapshot.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(snapshot.openWarnings).toEqual([]);
    expect(snapshot.readTables().active).toEqual([active(1)]);
    snapshot.close();
    expect(filesOf(dir)).toEqual(before);
  });

  it.each([
    ['empty', (dbPath: string) => fs.writeFileSync(dbPath, '')],
    ['garbage', (dbPath: string) => fs.writeFileSync(dbPath, 'this is not a database, just text long enough to be read')],
    ['a directory', (dbPath: string) => fs.mkdirSync(dbPath)],
  ])('refuses a state.db that is %s with HOSTDEV_STATE, as open does', (_name, damage) => {
    const dir = tempDir();
    damage(path.join(dir, DB_FILE));
    let caught: unknown = null;
    try {
      StateStore.openSnapshot(dir).close();
    } catch (error) {
      caught = error;
    }
    expect(isHostdevError(caught) && caught.code).toBe('HOSTDEV_STATE');
  });

  it('refuses a database written by a newer hostdev', () => {
    const dir = tempDir();
    const db = new Database(path.join(dir, DB_FILE));
    migrate(db);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => StateStore.openSnapshot(dir)).toThrow(/written by a newer hostdev/);
  });
});
