import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';

// What a dry run must leave as it was: a tree (the simulated host, the state directory) and the
// state database's content.

/** Every entry under a directory: type, mode, and the bytes or link target, hashed. */
export function treeDigest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: string): void => {
    for (const name of readdirSync(at).sort()) {
      const full = path.join(at, name);
      const stat = lstatSync(full);
      const rel = path.relative(dir, full);
      if (stat.isSymbolicLink()) out.set(rel, `link ${readlinkSync(full)}`);
      else if (stat.isDirectory()) {
        out.set(rel, `dir ${stat.mode.toString(8)}`);
        walk(full);
      } else if (stat.isFile()) {
        out.set(rel, `file ${stat.mode.toString(8)} ${createHash('sha256').update(readFileSync(full)).digest('hex')}`);
      } else out.set(rel, `special ${stat.mode.toString(8)}`);
    }
  };
  walk(dir);
  return out;
}

/**
 * The database's logical content: every table's rows in a stable order. Read from a copy (with its
 * write-ahead log): opening a WAL database in place, even read-only, would leave -shm and -wal
 * files in the state directory that a tree digest then sees.
 */
export function logicalDump(dbPath: string): string {
  const copy = mkdtempSync(path.join(tmpdir(), 'hostdev-dump-'));
  for (const suffix of ['', '-wal']) {
    if (existsSync(`${dbPath}${suffix}`)) copyFileSync(`${dbPath}${suffix}`, path.join(copy, `state.db${suffix}`));
  }
  if (!existsSync(path.join(copy, 'state.db'))) throw new Error(`no database at ${dbPath}`);
  const db = new Database(path.join(copy, 'state.db'), { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name").all() as Array<{
      name: string;
      sql: string | null;
    }>;
    const lines = tables.map((table) => `schema ${table.name}: ${table.sql ?? ''}`);
    for (const table of tables.filter((entry) => entry.sql?.startsWith('CREATE TABLE'))) {
      const rows = db.prepare(`SELECT * FROM "${table.name}"`).all();
      lines.push(...rows.map((row) => `${table.name} ${JSON.stringify(row)}`).sort());
    }
    return lines.join('\n');
  } finally {
    db.close();
    rmSync(copy, { recursive: true, force: true });
  }
}
