import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { generateSpec, presets } from '../../src/sim/presets.js';
import { BatchResults, encodeResults, errnoName, OpExecutor, opSpec, parseOpSpec, type BatchOp } from '../../src/sysfs/batch-ops.js';
import { collectConfig, configFromBytes, configFromChunks, parseConfigSpace } from '../../src/sysfs/config-space.js';
import { DEVICE_OP_LIST } from '../../src/sysfs/device-ops.js';
import { configSpace, tinyRoot, writeTinyDevices } from '../support/tiny-sysfs.js';

const nativeReader = new URL('../../dist/native/hostdev-sysfs-batch', import.meta.url).pathname;
const nodeReader = new URL('../../dist/sysfs/batch-child.js', import.meta.url).pathname;

let dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

function devicesDir(root: string): string {
  dirs.push(root);
  return path.join(root, 'sys/bus/pci/devices');
}

function simHost(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'hostdev-batch-'));
  buildHost(path.join(dir, 'host'), presets['sriov-nic']!);
  dirs.push(dir);
  return path.join(dir, 'host/sys/bus/pci/devices');
}

function brokenHost(): string {
  const root = tinyRoot();
  const good = { vendor: '0x8086\n', device: '0x10c9\n', class: '0x020000\n', driver_override: '(null)\n' };
  writeTinyDevices(root, [
    { address: '0000:00:01.0', files: { ...good, config: new Uint8Array(10) }, dirs: ['reset_method'] },
    { address: '0000:00:02.0', files: { ...good, config: configSpace({ vendor: 0x8086, device: 0x10c9, flr: true }), sriov_totalvfs: '2\n' } },
    { address: '0000:00:03.0', files: { vendor: good.vendor, device: good.device, class: good.class }, dirs: ['driver_override', 'net'], links: { driver: '../../../bus/pci/drivers/gone', physfn: '../0000:00:02.0' } },
  ]);
  return devicesDir(root);
}

function run(program: string[], dir: string, entries: readonly string[], ops: readonly BatchOp[]) {
  return spawnSync(program[0]!, [...program.slice(1), ...ops.map(opSpec)], { cwd: dir, input: `${entries.join('\0')}\0` });
}

describe('the batch reader programs', () => {
  it.each([
    ['a simulated SR-IOV host', simHost],
    ['a broken tree', brokenHost],
  ])('native, Node.js and in-process executors give the same bytes (%s)', (_name, make) => {
    const dir = make();
    const entries = readdirSync(dir).sort();
    const native = run([nativeReader], dir, entries, DEVICE_OP_LIST);
    const node = run([process.execPath, nodeReader], dir, entries, DEVICE_OP_LIST);
    expect(native.status, native.stderr.toString()).toBe(0);
    expect(node.status, node.stderr.toString()).toBe(0);
    const executor = new OpExecutor();
    const inProcess = Buffer.concat(entries.map((entry) => encodeResults(executor.run(dir, entry, DEVICE_OP_LIST))));
    expect(native.stdout.equals(node.stdout)).toBe(true);
    expect(native.stdout.equals(inProcess)).toBe(true);
    const decoded = BatchResults.decode(native.stdout, entries.length * DEVICE_OP_LIST.length);
    expect(decoded.count).toBe(entries.length * DEVICE_OP_LIST.length);
  });

  it('gives the same bytes in two jobs as in one, in entry order', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hostdev-batch-'));
    dirs.push(dir);
    buildHost(path.join(dir, 'host'), generateSpec(600));
    const devices = path.join(dir, 'host/sys/bus/pci/devices');
    const entries = readdirSync(devices).sort();
    const one = run([nativeReader], devices, entries, DEVICE_OP_LIST);
    const two = run([nativeReader, '-j', '2'], devices, entries, DEVICE_OP_LIST);
    expect(two.status, two.stderr.toString()).toBe(0);
    expect(two.stdout.length).toBeGreaterThan(entries.length * DEVICE_OP_LIST.length * 8);
    expect(two.stdout.equals(one.stdout)).toBe(true);
  });

  it('reports errno names for what failed', () => {
    const dir = brokenHost();
    const ops: BatchOp[] = [
      { kind: 'read', file: 'reset_method' },
      { kind: 'read', file: 'nothing' },
      { kind: 'list', file: 'vendor' },
    ];
    const native = run([nativeReader], dir, ['0000:00:01.0'], ops);
    const results = BatchResults.decode(native.stdout, 3);
    expect([results.errno(0), results.errno(1), results.errno(2)]).toEqual(['EISDIR', 'ENOENT', 'ENOTDIR']);
  });

  it.each([
    ['an unknown op', ['X:vendor'], ['0000:00:01.0']],
    ['an op with a path', ['R:../../vendor'], ['0000:00:01.0']],
    ['an entry that leaves the directory', ['R:vendor'], ['..']],
    ['an entry with a slash', ['R:vendor'], ['0000:00:01.0/..']],
  ])('refuses %s (exit 2)', (_name, ops, entries) => {
    const dir = brokenHost();
    for (const program of [[nativeReader], [process.execPath, nodeReader]]) {
      const result = spawnSync(program[0]!, [...program.slice(1), ...ops], { cwd: dir, input: `${entries.join('\0')}\0` });
      expect(result.status, `${program.join(' ')}: ${result.stderr.toString()}`).toBe(2);
    }
  });
});

describe('op specs and the wire form', () => {
  it('op specs read back', () => {
    for (const op of DEVICE_OP_LIST) expect(parseOpSpec(opSpec(op))).toEqual({ kind: op.kind, file: op.file });
    expect(parseOpSpec('R')).toBeNull();
    expect(parseOpSpec('R:a/b')).toBeNull();
    expect(parseOpSpec('Q:x')).toBeNull();
  });

  it('errno numbers and names agree with the OS', () => {
    expect(errnoName(os.constants.errno.ENOENT)).toBe('ENOENT');
    expect(errnoName(os.constants.errno.EACCES)).toBe('EACCES');
    expect(errnoName(100000)).toBe('errno 100000');
  });

  it('decodes whole entries only, and refuses a cut or padded stream', () => {
    const one = encodeResults([
      { errno: null, data: Buffer.from('0x8086\n') },
      { errno: 'ENOENT', data: new Uint8Array(0) },
    ]);
    const two = Buffer.concat([one, one]);
    for (let cut = 0; cut <= two.length; cut++) {
      const { entries, bytes } = BatchResults.decodeEntries(two.subarray(0, cut), 2, 2);
      expect(entries).toBe(cut >= two.length ? 2 : cut >= one.length ? 1 : 0);
      expect(bytes).toBe(entries * one.length);
    }
    expect(() => BatchResults.decode(one.subarray(0, one.length - 1), 2)).toThrow(/stopped/);
    expect(() => BatchResults.decode(Buffer.concat([one, Buffer.from([0])]), 2)).toThrow(/more/);
    const results = BatchResults.decode(one, 2);
    expect([results.text(0), results.errno(0), results.errno(1)]).toEqual(['0x8086', null, 'ENOENT']);
  });
});

describe('config space as chunks', () => {
  it('parses the same from the chunks as from the whole image', () => {
    const images = [
      configSpace({ vendor: 0x8086, device: 1, flr: true }),
      configSpace({ vendor: 0x8086, device: 1, flr: false }),
      configSpace({ vendor: 0x8086, device: 1, headerType: 1 }),
      configSpace({ vendor: 0x8086, device: 1, headerType: 2 }),
      configSpace({ vendor: 0x8086, device: 1 }).subarray(0, 64),
      new Uint8Array(10),
    ];
    for (const image of images) {
      expect(parseConfigSpace(configFromChunks(collectConfig(configFromBytes(image))))).toEqual(parseConfigSpace(configFromBytes(image)));
    }
  });

  it('any config image: chunks parse like the image (and a looping list ends)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 256 }), (image) => {
        expect(parseConfigSpace(configFromChunks(collectConfig(configFromBytes(image))))).toEqual(parseConfigSpace(configFromBytes(image)));
      }),
      { numRuns: 300 },
    );
  });
});
