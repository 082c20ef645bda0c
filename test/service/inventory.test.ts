import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { isHostdevError } from '../../src/core/errors.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { jsonOf, runCli } from '../support/cli.js';

// The service's inventory reports are the CLI's `--json`, byte for byte: one builder for both.
let base = '';
let root = '';
let stateDir = '';
let service: HostdevService;
const VF = '0000:01:10.1' as PciAddress;
const cli = (args: string[]): unknown => jsonOf(runCli(['--root', root, '--state-dir', stateDir, '--simulate', '--json', ...args]));

beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-service-inventory-'));
  root = path.join(base, 'host');
  stateDir = path.join(base, 'state');
  createSimulatedHost(root, { preset: 'sriov-nic' });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir });
  await service.assign({ domain: 'vm1', addresses: [VF] });
});
afterAll(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

describe('HostdevService inventory', () => {
  it('list, list by class and driver, show and groups equal the CLI --json', async () => {
    expect((await service.list()).report).toEqual(cli(['list']));
    expect((await service.list({ class: 'net', driver: 'igbvf' })).report).toEqual(cli(['list', '--class', 'net', '--driver', 'igbvf']));
    expect((await service.show(VF)).report).toEqual(cli(['show', VF]));
    expect((await service.groups()).report).toEqual(cli(['groups']));
  });

  it('reports the owner of an assigned VF, and refuses a device that is not on the host', async () => {
    const listed = (await service.list()).report.find((device) => device.address === VF);
    expect(listed).toMatchObject({ owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, table: 'active', driver: 'vfio-pci' });
    const error = await service.show('0000:09:00.0' as PciAddress).catch((caught: unknown) => caught);
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_DEVICE_NOT_FOUND');
  });
});
