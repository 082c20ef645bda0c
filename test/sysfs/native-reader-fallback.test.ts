import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { BatchReader, nativeReaderMismatch } from '../../src/sysfs/batch-reader.js';
import { readInventoryBounded } from '../../src/sysfs/bounded-inventory.js';
import { DEVICE_OP_LIST } from '../../src/sysfs/device-ops.js';
import { readInventory } from '../../src/sysfs/inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const builtReader = path.join(repo, 'dist/native/hostdev-sysfs-batch');
const base = mkdtempSync(path.join(os.tmpdir(), 'hostdev-native-fallback-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const root = path.join(base, 'host');
buildHost(root, presets['sriov-nic']!);
const layout = new SysfsLayout(root);

/** The built reader with its ELF e_machine changed: what a dist/ copied from another architecture holds. */
function otherArchitecture(): string {
  const bytes = readFileSync(builtReader);
  bytes.writeUInt16LE(bytes.readUInt16LE(18) === 183 ? 62 : 183, 18);
  const file = path.join(base, 'other-arch');
  writeFileSync(file, bytes, { mode: 0o755 });
  return file;
}

/** The built reader asking for an ELF interpreter that is not there (a glibc build on a musl host): execve gives ENOENT. */
function missingInterpreter(): string {
  const bytes = readFileSync(builtReader);
  expect(bytes[4], 'an ELF64 reader').toBe(2);
  expect(bytes[5], 'a little-endian reader').toBe(1);
  const phoff = Number(bytes.readBigUInt64LE(0x20));
  const phentsize = bytes.readUInt16LE(0x36);
  let patched = false;
  for (let i = 0; i < bytes.readUInt16LE(0x38); i++) {
    const at = phoff + i * phentsize;
    if (bytes.readUInt32LE(at) !== 3 /* PT_INTERP */) continue;
    const offset = Number(bytes.readBigUInt64LE(at + 8));
    bytes.write('/nonexistent/ld.so\0', offset, 'latin1');
    patched = true;
  }
  expect(patched, 'the reader is linked dynamically').toBe(true);
  const file = path.join(base, 'no-interpreter');
  writeFileSync(file, bytes, { mode: 0o755 });
  return file;
}

function garbage(): string {
  const file = path.join(base, 'garbage');
  writeFileSync(file, 'echo this is not a sysfs reader\n', { mode: 0o755 });
  return file;
}

const expected = (): unknown => JSON.parse(JSON.stringify(readInventory(layout, { pciIdsPath: '/nonexistent' })));

describe('a native reader that cannot run here gives way to the Node.js reader, with a warning', () => {
  it('the built reader is fit for this machine', () => {
    expect(nativeReaderMismatch(builtReader)).toBeNull();
  });

  it.each([
    ['built for another architecture', otherArchitecture, /built for another machine \(ELF machine \d+, this is \w+\)/],
    ['not an ELF executable', garbage, /not an ELF executable/],
    ['missing its ELF interpreter (spawn fails with ENOENT)', missingInterpreter, /ENOENT/],
  ])('%s', async (_name, make, why) => {
    const file = make();
    const started = new BatchReader(layout, DEVICE_OP_LIST, { nativeReader: file });
    const inventory = await readInventoryBounded(layout, { pciIdsPath: '/nonexistent', started });
    const { warnings, ...rest } = inventory;
    const { warnings: expectedWarnings, ...expectedRest } = expected() as typeof inventory;
    expect(rest).toEqual(expectedRest);
    expect(warnings.slice(1)).toEqual(expectedWarnings);
    expect(warnings[0]!.message).toContain(`the native sysfs reader ${file} cannot run here`);
    expect(warnings[0]!.message).toMatch(why);
    expect(warnings[0]!.message).toContain('npm run build');
  });

  it('hostdev list from a dist/ whose reader was built for another machine lists the host and says so', async () => {
    const copy = path.join(base, 'copy');
    cpSync(path.join(repo, 'dist'), path.join(copy, 'dist'), { recursive: true });
    symlinkSync(path.join(repo, 'node_modules'), path.join(copy, 'node_modules'));
    cpSync(otherArchitecture(), path.join(copy, 'dist/native/hostdev-sysfs-batch'));
    const { spawnSync } = await import('node:child_process');
    const run = (bin: string) =>
      spawnSync(process.execPath, [bin, '--root', root, 'list', '--json'], { encoding: 'utf8', env: { ...process.env, HOSTDEV_PCI_IDS: '/nonexistent' }, timeout: 30_000 });
    const broken = run(path.join(copy, 'dist/cli/bin.js'));
    const good = run(path.join(repo, 'dist/cli/bin.js'));
    expect(broken.status, broken.stderr).toBe(0);
    expect(broken.stdout).toBe(good.stdout);
    expect(broken.stderr).toMatch(/^warning: the native sysfs reader .* cannot run here \(built for another machine/m);
    expect(good.stderr).not.toMatch(/native sysfs reader/);
  });
});
