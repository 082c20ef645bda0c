import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { pciKey } from '../../src/core/device-key.js';
import { ERROR_CATALOG, HostdevError, type ErrorCode } from '../../src/core/errors.js';
import { runCli, type CliRun } from '../support/cli.js';

const A = '0000:01:10.0' as PciAddress;

describe('an error that names a PCI function carries its device key beside its address', () => {
  it('for every code of the catalog, and only when an address is named', () => {
    for (const code of Object.keys(ERROR_CATALOG) as ErrorCode[]) {
      const named = new HostdevError(code, 'm', { hint: 'h', details: { address: A, driver: 'igbvf' } });
      expect(named.details, code).toEqual({ key: pciKey(A), address: A, driver: 'igbvf' });
      expect(new HostdevError(code, 'm', { hint: 'h', details: { path: '/x' } }).details, code).toEqual({ path: '/x' });
    }
  });

  it('keeps a key it was given (an error read back from the daemon)', () => {
    const back = HostdevError.fromJSON({ code: 'HOSTDEV_IN_USE', message: 'm', details: { key: 'pci:0000:01:10.0', address: A } });
    expect(back.details).toEqual({ key: 'pci:0000:01:10.0', address: A });
  });
});

describe('device errors printed by the CLI with --json have details.key', () => {
  let base = '';
  const cli = (args: readonly string[]): CliRun =>
    runCli(['--root', path.join(base, 'root'), '--state-dir', path.join(base, 'state'), '--simulate', ...args]);

  beforeAll(() => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-error-key-'));
    expect(runCli(['sim', 'create', path.join(base, 'root'), '--preset', 'sriov-nic']).code).toBe(0);
    expect(cli(['assign', '--domain', 'vm1', '0000:01:10.0']).code).toBe(0);
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  const cases: ReadonlyArray<{ code: ErrorCode; args: readonly string[]; address: string }> = [
    { code: 'HOSTDEV_DEVICE_NOT_FOUND', args: ['detach', '0000:05:00.0'], address: '0000:05:00.0' },
    { code: 'HOSTDEV_NOT_ENDPOINT', args: ['detach', '0000:00:01.0'], address: '0000:00:01.0' },
    { code: 'HOSTDEV_IN_USE', args: ['assign', '--domain', 'vm2', '0000:01:10.0'], address: '0000:01:10.0' },
    { code: 'HOSTDEV_NOT_SRIOV', args: ['vf', 'set-count', '0000:01:10.2', '1'], address: '0000:01:10.2' },
    { code: 'HOSTDEV_VF_RANGE', args: ['vf', 'set-count', '0000:01:00.0', '9'], address: '0000:01:00.0' },
    { code: 'HOSTDEV_VF_BUSY', args: ['vf', 'set-count', '0000:01:00.0', '1'], address: '0000:01:00.0' },
  ];
  for (const { code, args, address } of cases) {
    it(`${code} (${args.join(' ')})`, () => {
      const run = cli([...args, '--json']);
      expect(run.code, run.stderr).not.toBe(0);
      const { error } = JSON.parse(run.stderr) as { error: { code: string; details: Record<string, unknown> } };
      expect(error.code).toBe(code);
      expect(error.details).toMatchObject({ key: `pci:${address}`, address });
    });
  }
});
