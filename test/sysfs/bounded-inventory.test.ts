import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { generateSpec, presets } from '../../src/sim/presets.js';
import { opSpec } from '../../src/sysfs/batch-ops.js';
import { BatchReader, readInventoryBounded } from '../../src/sysfs/bounded-inventory.js';
import { DEVICE_OP_LIST } from '../../src/sysfs/device-ops.js';
import { readInventory } from '../../src/sysfs/inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { runCli } from '../support/cli.js';
import { tinyRoot, writeTinyDevices } from '../support/tiny-sysfs.js';

/** Building a 1,100-function host takes seconds, and many on a loaded 2-core machine. */
const LARGE_HOST_MS = 120_000;

const nativeReader = new URL('../../dist/native/hostdev-sysfs-batch', import.meta.url).pathname;

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
}, LARGE_HOST_MS);

function host(): string {
  dir = mkdtempSync(path.join(os.tmpdir(), 'hostdev-bounded-'));
  const root = path.join(dir, 'host');
  buildHost(root, presets['sriov-nic']!);
  return root;
}

/** A FIFO in place of a file blocks every read of it, as the kernel does while a VM holds a VF
 * whose removal is pending (the PF's sriov_numvfs, the VF's driver_override) or a reset waits. */
function block(layout: SysfsLayout, address: string, file: string): void {
  const target = layout.device(address as never, file);
  rmSync(target);
  execFileSync('mkfifo', [target]);
}

function blockSriovNumvfs(root: string): void {
  const layout = new SysfsLayout(root);
  const pf = readInventory(layout).devices.find((d) => d.sriov !== null)!;
  block(layout, pf.address, 'sriov_numvfs');
}

/** Blocks every file the kernel can hold up: the PF's sriov_numvfs, a VF's driver_override, a config. */
function blockAllLocked(root: string): void {
  const layout = new SysfsLayout(root);
  const devices = readInventory(layout).devices;
  block(layout, devices.find((d) => d.sriov !== null)!.address, 'sriov_numvfs');
  block(layout, devices.find((d) => d.physfn !== null)!.address, 'driver_override');
  block(layout, devices.find((d) => d.physfn === null && d.sriov === null)!.address, 'config');
}

/** Runs `body` with the Node.js reader instead of the native program. */
async function withNodeReader<T>(body: () => Promise<T> | T): Promise<T> {
  const before = process.env['HOSTDEV_BATCH_READER'];
  process.env['HOSTDEV_BATCH_READER'] = 'node';
  try {
    return await body();
  } finally {
    if (before === undefined) delete process.env['HOSTDEV_BATCH_READER'];
    else process.env['HOSTDEV_BATCH_READER'] = before;
  }
}

const READERS = [
  ['the native reader', <T>(body: () => Promise<T> | T): Promise<T> => Promise.resolve(body())],
  ['the Node.js reader', withNodeReader],
] as const;

describe('reading the inventory in bounded reader processes', () => {
  it.each(READERS)('gives exactly what the in-process reader gives (%s)', async (_name, using) => {
    const layout = new SysfsLayout(host());
    expect(await using(() => readInventoryBounded(layout, { pciIdsPath: '/nonexistent' }))).toEqual(
      JSON.parse(JSON.stringify(readInventory(layout, { pciIdsPath: '/nonexistent' }))),
    );
  });

  it.each(READERS)('fails with HOSTDEV_TIMEOUT, and does not hang, when a sysfs read blocks (%s)', async (_name, using) => {
    const root = host();
    blockSriovNumvfs(root);
    const started = Date.now();
    await using(() =>
      // The stall bound (500 ms by default, as the whole-read bound here) would end the read first on a
      // loaded machine and give the PF as held by the kernel, a resolved read: this is about the whole-read bound.
      expect(readInventoryBounded(new SysfsLayout(root), { timeoutMs: 500, stallMs: 60_000 })).rejects.toMatchObject({ code: 'HOSTDEV_TIMEOUT' }),
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.each(READERS)('names the file it was reading when the whole-read bound hit (%s)', async (_name, using) => {
    const root = host();
    const layout = new SysfsLayout(root);
    const pf = readInventory(layout).devices.find((d) => d.sriov !== null)!;
    block(layout, pf.address, 'sriov_numvfs');
    const error = await using(() => readInventoryBounded(layout, { timeoutMs: 500, stallMs: 60_000 }).then(() => null, (e: unknown) => e));
    expect(error).toMatchObject({ code: 'HOSTDEV_TIMEOUT' });
    const blocked = layout.device(pf.address, 'sriov_numvfs');
    expect((error as Error).message).toContain(`reading ${blocked} did not finish within 500 ms`);
    expect((error as { details: { files: string[] } }).details.files).toEqual([blocked]);
  });

  it.each(READERS)('names the file of each job that is held up on a large host read in two (%s)', async (_name, using) => {
    dir ??= mkdtempSync(path.join(os.tmpdir(), 'hostdev-bounded-'));
    const root = path.join(dir, 'host');
    buildHost(root, generateSpec(1100));
    const layout = new SysfsLayout(root);
    const entries = readdirSync(layout.pciDevicesDir).sort();
    // One blocked file in each half of the functions.
    const first = entries[10]!;
    const second = entries[entries.length - 10]!;
    block(layout, first, 'config');
    block(layout, second, 'config');
    const reader = new BatchReader(layout, DEVICE_OP_LIST);
    expect(reader.entryByEntry).toBe(false);
    const error = await using(() => reader.forEach(layout, 1_500, () => {}).then(() => null, (e: unknown) => e));
    expect(error).toMatchObject({ code: 'HOSTDEV_TIMEOUT' });
    const files = (error as { details: { files: string[] } }).details.files;
    expect(files).toEqual([layout.device(first as never, 'config'), layout.device(second as never, 'config')]);
    expect((error as Error).message).toContain(`${files[0]} and ${files[1]}`);
  }, LARGE_HOST_MS);

  it('hostdev list exits with the kernel exit code and a hint instead of hanging', () => {
    const root = host();
    blockSriovNumvfs(root);
    const run = runCli(['--root', root, 'list'], { env: { HOSTDEV_READ_TIMEOUT_MS: '500' }, timeoutMs: 10_000 });
    expect(run.code).toBe(6);
    expect(run.stderr).toMatch(/blocked in the kernel/);
    expect(run.stderr).toMatch(/hint: .*VM/);
  });

  it.each(READERS)('gives what the in-process reader gives on a broken tree, warnings in order (%s)', async (_name, using) => {
    dir = tinyRoot();
    const good = { vendor: '0x8086\n', device: '0x10c9\n', class: '0x020000\n', driver_override: '(null)\n' };
    writeTinyDevices(dir, [
      { address: '0000:00:01.0', files: { ...good, vendor: 'x\n', config: new Uint8Array(10) } },
      { address: '0000:00:02.0', files: { ...good, numa_node: 'lots\n', sriov_totalvfs: '2\n', sriov_numvfs: 'two\n' } },
      { address: '0000:00:03.0', files: { vendor: good.vendor, device: good.device, class: good.class }, dirs: ['driver_override'], links: { driver: '../../../bus/pci/drivers/gone' } },
    ]);
    writeTinyDevices(dir, [{ address: 'junk', files: {} }]);
    const layout = new SysfsLayout(dir);
    const inProcess = readInventory(layout, { pciIdsPath: '/nonexistent' });
    expect(inProcess.warnings.length).toBeGreaterThan(5);
    expect(await using(() => readInventoryBounded(layout, { pciIdsPath: '/nonexistent' }))).toEqual(JSON.parse(JSON.stringify(inProcess)));
  });

  it.each(READERS)('keeps address order on a large host, read in two processes (%s)', async (_name, using) => {
    dir ??= mkdtempSync(path.join(os.tmpdir(), 'hostdev-bounded-'));
    const root = path.join(dir, 'host');
    buildHost(root, generateSpec(1100));
    const layout = new SysfsLayout(root);
    const seen: string[] = [];
    await using(() => new BatchReader(layout, DEVICE_OP_LIST).forEach(layout, 20_000, (entry) => seen.push(entry)));
    expect(seen.length).toBe(1100);
    expect(seen).toEqual([...seen].sort());
    expect(await using(() => readInventoryBounded(layout, { pciIdsPath: '/nonexistent' }))).toEqual(
      JSON.parse(JSON.stringify(readInventory(layout, { pciIdsPath: '/nonexistent' }))),
    );
  }, LARGE_HOST_MS);

  it('does not use a head-start reader that reads another root', async () => {
    const layout = new SysfsLayout(host());
    const other = new BatchReader(new SysfsLayout(path.join(dir!, 'elsewhere')), DEVICE_OP_LIST);
    expect(await readInventoryBounded(layout, { pciIdsPath: '/nonexistent', started: other })).toEqual(
      JSON.parse(JSON.stringify(readInventory(layout, { pciIdsPath: '/nonexistent' }))),
    );
  });

  it('makes sense of the results without opening a file the kernel can hold up', () => {
    const root = host();
    const layout = new SysfsLayout(root);
    const entries = readdirSync(layout.pciDevicesDir).sort();
    // The readers' output while nothing blocks, then every lockable file blocked.
    const wire = spawnSync(nativeReader, DEVICE_OP_LIST.map(opSpec), { cwd: layout.pciDevicesDir, input: `${entries.join('\0')}\0` });
    expect(wire.status).toBe(0);
    const wireFile = path.join(dir!, 'wire');
    writeFileSync(wireFile, wire.stdout);
    blockAllLocked(root);
    // In a separate process: were one of them opened there, the open would never return.
    const module = (name: string): string => JSON.stringify(new URL(`../../dist/sysfs/${name}`, import.meta.url).href);
    const run = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { BatchResults } = await import(${module('batch-ops.js')});\n` +
          `const { DeviceReadContext, interpretDevice } = await import(${module('read-device.js')});\n` +
          `const { SysfsLayout } = await import(${module('paths.js')});\n` +
          `const { readFileSync } = await import('node:fs');\n` +
          `const entries = ${JSON.stringify(entries)};\n` +
          `const width = ${DEVICE_OP_LIST.length};\n` +
          `const { results } = BatchResults.decodeEntries(readFileSync(${JSON.stringify(wireFile)}), width, entries.length);\n` +
          `const context = new DeviceReadContext(new SysfsLayout(${JSON.stringify(root)}), null, () => {});\n` +
          `console.log(entries.filter((entry, i) => interpretDevice(context, entry, results, i * width) !== null).length);`,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(run.signal, 'a blocked file was opened in-process').toBeNull();
    expect(Number(run.stdout.trim())).toBe(entries.length);
  });

  it('hostdev list, show and groups exit 6 instead of hanging on a blocked driver_override or config', () => {
    const root = host();
    blockAllLocked(root);
    for (const args of [['list'], ['show', '0000:01:00.0'], ['groups', '--json']]) {
      const run = runCli(['--root', root, ...args], { env: { HOSTDEV_READ_TIMEOUT_MS: '500' }, timeoutMs: 15_000 });
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(6);
      expect(run.stderr).toMatch(/blocked in the kernel/);
    }
  });

  it('a command that fails before reading does not wait for the head-start child', () => {
    const root = host();
    blockAllLocked(root);
    for (const args of [['list', '--no-such-option'], ['show', 'not-an-address']]) {
      const run = runCli(['--root', root, ...args], { timeoutMs: 15_000 });
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(2);
    }
  });
});
