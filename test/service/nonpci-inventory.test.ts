import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { jsonOf, runCli } from '../support/cli.js';

// The service's reports of USB, mdev, NVMe and SCSI devices are the CLI's `--json`: one builder for both.
let base = '';
let root = '';
let stateDir = '';
let service: HostdevService;
const cli = (args: string[]): unknown => jsonOf(runCli(['--root', root, '--state-dir', stateDir, '--simulate', '--json', ...args]));

beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-service-nonpci-'));
  root = path.join(base, 'host');
  stateDir = path.join(base, 'state');
  createSimulatedHost(root, { preset: 'virt-host' });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir });
  // a state database exists: both sides print owner and table
  await service.assign({ domain: 'vm1', addresses: ['0000:00:19.0'] });
});
afterAll(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

describe('HostdevService: devices of the other kinds', () => {
  it.each(['usb', 'mdev', 'nvme', 'scsi'] as const)('listKind(%s) equals list --kind --json', async (kind) => {
    const { report, warnings } = await service.listKind(kind);
    expect(report.length).toBeGreaterThan(0);
    expect(report).toEqual(cli(['list', '--kind', kind]));
    expect(warnings).toEqual([]);
  });

  it('showKey equals show KEY --json; a PCI key is refused by name', async () => {
    expect((await service.showKey('usb:1-4')).report).toEqual(cli(['show', 'usb:1-4']));
    await expect(service.showKey('0000:00:19.0')).rejects.toMatchObject({ code: 'HOSTDEV_BAD_ADDRESS' });
  });
});
