import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { StateStore } from '../../src/state/store.js';
import { jsonOf, runCli } from '../support/cli.js';

// `hostdev qemu-args --domain NAME`: the arguments for the domain's active devices, from the tables.
let dir = '';
let root = '';
let stateDir = '';

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-qemu-args-'));
  root = path.join(dir, 'root');
  stateDir = path.join(dir, 'state');
  expect(runCli(['sim', 'create', root, '--preset', 'sriov-nic']).code).toBe(0);
  const store = StateStore.open(stateDir);
  const entry = (address: string, domain: string) => ({
    kind: 'set-active' as const,
    entry: { address: address as PciAddress, usedBy: { driver: 'qemu', domain }, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' },
  });
  await store.exclusive('test-seed', async (op) => {
    op.commit([entry('0000:01:10.2', 'vm1'), entry('0000:01:10.0', 'vm1'), entry('0000:01:10.1', 'vm2')]);
  });
  store.close();
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const globals = () => ['--root', root, '--state-dir', stateDir];

describe('hostdev qemu-args', () => {
  it('prints one vfio-pci device per active device of the domain, behind root ports, as a JSON argv', () => {
    const run = runCli(['qemu-args', '--domain', 'vm1', '--json', ...globals()]);
    expect(run.code, run.stderr).toBe(0);
    expect(jsonOf<string[]>(run)).toEqual([
      '-device', 'pcie-root-port,id=hostdev-0000_01_10_0-rp,chassis=1,slot=0',
      '-device', 'vfio-pci,host=0000:01:10.0,id=hostdev-0000_01_10_0,bus=hostdev-0000_01_10_0-rp',
      '-device', 'pcie-root-port,id=hostdev-0000_01_10_2-rp,chassis=2,slot=0',
      '-device', 'vfio-pci,host=0000:01:10.2,id=hostdev-0000_01_10_2,bus=hostdev-0000_01_10_2-rp',
    ]);
  });

  it('prints a shell line without --json, and honours --machine pc', () => {
    const run = runCli(['qemu-args', '--domain', 'vm2', '--machine', 'pc', ...globals()]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe('-device vfio-pci,host=0000:01:10.1,id=hostdev-0000_01_10_1');
  });

  it('warns and prints nothing for a domain without devices', () => {
    const run = runCli(['qemu-args', '--domain', 'nobody', '--json', ...globals()]);
    expect(run.code).toBe(0);
    expect(jsonOf(run)).toEqual([]);
    expect(run.stderr).toContain('holds no device');
  });

  it('refuses a bad --first-chassis with the usage exit code', () => {
    expect(runCli(['qemu-args', '--domain', 'vm1', '--first-chassis', 'x', ...globals()]).code).toBe(2);
    expect(runCli(['qemu-args', '--domain', 'vm1', '--machine', 'arm', ...globals()]).code).toBe(2);
  });
});
