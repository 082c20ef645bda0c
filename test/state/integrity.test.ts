import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HostdevError } from '../../src/core/errors.js';
import { DB_FILE, StateStore } from '../../src/state/store.js';
import { SCHEMA_VERSION } from '../../src/state/schema.js';
import { active, tempDir } from './helpers.js';

function openError(dir: string): HostdevError {
  try {
    StateStore.open(dir).close();
  } catch (error) {
    if (error instanceof HostdevError) return error;
    throw error;
  }
  throw new Error('open() succeeded');
}

/** A state dir whose database holds `entries` active entries (several pages), checkpointed. */
async function populated(entries: number): Promise<string> {
  const dir = tempDir();
  const store = StateStore.open(dir);
  await store.exclusive('assign', async (op) => {
    op.commit(Array.from({ length: entries }, (_, i) => ({ kind: 'set-active' as const, entry: active(i % 256, `vm-${i}`) })));
    op.commit(Array.from({ length: entries }, (_, i) => ({ kind: 'set-active' as const, entry: active(i % 256, `domain-with-a-long-name-${i}`.repeat(4)) })));
  });
  store.close();
  return dir;
}

function expectRefusedAndKept(dir: string, pattern: RegExp): void {
  const dbPath = path.join(dir, DB_FILE);
  const before = fs.readFileSync(dbPath);
  const error = openError(dir);
  expect(error.code).toBe('HOSTDEV_STATE');
  expect(error.exitCode).toBe(7);
  expect(error.message).toContain(dbPath);
  expect(error.message).toMatch(pattern);
  expect(error.hint).toMatch(/refuses to start from an empty state/);
  // Never replaced by a fresh one:
  expect(fs.readFileSync(dbPath).equals(before)).toBe(true);
}

describe('state integrity on open', () => {
  it('a missing database is created fresh', () => {
    const dir = tempDir();
    const store = StateStore.open(dir);
    expect(store.readTables()).toEqual({ active: [], inactive: [] });
    store.close();
  });

  it('refuses a file that is not a database', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, DB_FILE), 'this is not sqlite, just some text that got here '.repeat(100));
    expectRefusedAndKept(dir, /corrupt or truncated/);
  });

  it('refuses an empty (0 byte) database', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, DB_FILE), '');
    expectRefusedAndKept(dir, /is empty \(0 bytes\)/);
  });

  it('refuses a truncated database', async () => {
    const dir = await populated(256);
    const dbPath = path.join(dir, DB_FILE);
    const size = fs.statSync(dbPath).size;
    expect(size).toBeGreaterThan(8 * 4096);
    fs.truncateSync(dbPath, Math.floor(size / 2));
    expectRefusedAndKept(dir, /corrupt|truncated/);
  });

  it('refuses a database whose pages were overwritten', async () => {
    const dir = await populated(256);
    const dbPath = path.join(dir, DB_FILE);
    const fd = fs.openSync(dbPath, 'r+');
    fs.writeSync(fd, Buffer.alloc(4096 * 3, 0xa5), 0, 4096 * 3, 4096 * 2);
    fs.closeSync(fd);
    expectRefusedAndKept(dir, /corrupt/);
  });

  it('refuses a database written by a newer schema version, saying so', () => {
    const dir = tempDir();
    StateStore.open(dir).close();
    const db = new Database(path.join(dir, DB_FILE));
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const error = openError(dir);
    expect(error.code).toBe('HOSTDEV_STATE');
    expect(error.message).toMatch(new RegExp(`schema version ${SCHEMA_VERSION + 1}, written by a newer hostdev`));
    expect(error.hint).toMatch(/never downgrades/);
  });

  it('refuses a database without hostdev schema', () => {
    const dir = tempDir();
    const db = new Database(path.join(dir, DB_FILE));
    db.exec('CREATE TABLE other (x)');
    db.close();
    expectRefusedAndKept(dir, /no hostdev schema/);
  });

  it('refuses a current-version database that lost a table', () => {
    const dir = tempDir();
    StateStore.open(dir).close();
    const db = new Database(path.join(dir, DB_FILE));
    db.exec('DROP TABLE inactive');
    db.close();
    expectRefusedAndKept(dir, /missing the table\(s\) inactive/);
  });
});
