import type BetterSqlite3 from 'better-sqlite3';
import { lazyPackage } from '../platform/lazy-package.js';

export type SqliteDatabase = BetterSqlite3.Database;

/** better-sqlite3 and its native binding load when a table is first opened: --help or `sim` never open one. */
const betterSqlite3 = lazyPackage<typeof BetterSqlite3>('better-sqlite3');

export function openSqlite(file: string | Buffer, options?: BetterSqlite3.Options): SqliteDatabase {
  const Database = betterSqlite3();
  return new Database(file, options);
}
