import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The manager and the service read sysfs only asynchronously and bounded (HostReader, the serving
 * reader process): on Linux a read of driver_override or sriov_numvfs blocks while a VM holds a VF
 * whose removal is pending, and one such read on the event loop would freeze a daemon and every
 * client. A synchronous fs call in those layers is allowed only where this list says why.
 */
const SYNC_FS = /\b(readFileSync|readlinkSync|existsSync|readdirSync|statSync|lstatSync|opendirSync|realpathSync|openSync|readSync)\b/g;
const ALLOWED: Readonly<Record<string, string>> = {
  'manager/table-lookup.ts existsSync': 'the state database file, not sysfs',
};

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function syncCalls(layer: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(path.join(SRC, layer))) {
    if (!name.endsWith('.ts')) continue;
    const text = readFileSync(path.join(SRC, layer, name), 'utf8');
    for (const line of text.split('\n')) {
      if (/^\s*import\b/.test(line)) continue;
      for (const match of line.matchAll(SYNC_FS)) found.push(`${layer}/${name} ${match[1]}`);
    }
  }
  return found;
}

describe('service operations read sysfs asynchronously', () => {
  it('src/manager and src/service make no synchronous fs call but the ones listed with a reason', () => {
    const calls = [...syncCalls('manager'), ...syncCalls('service')];
    expect([...new Set(calls.filter((call) => ALLOWED[call] === undefined))]).toEqual([]);
  });
});
