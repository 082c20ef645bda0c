import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isHostdevError } from '../../src/core/errors.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { jsonOf, runCli } from '../support/cli.js';

// Wherever the service or the CLI names a device, a pci: key and a bare address in any spelling mean the same.
let base = '';
let root = '';
let stateDir = '';
let service: HostdevService;
const PF = '0000:01:00.0';
const VF0 = '0000:01:10.0';
const VF1 = '0000:01:10.1';
const cli = (args: string[]) => runCli(['--root', root, '--state-dir', stateDir, '--simulate', '--json', ...args]);

beforeAll(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-service-keys-'));
  root = path.join(base, 'host');
  stateDir = path.join(base, 'state');
  createSimulatedHost(root, { preset: 'sriov-nic' });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir });
});
afterAll(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  if (!isHostdevError(error)) throw new Error(`expected a HostdevError, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

describe('device keys at the service and the CLI', () => {
  it('assign, vf config, release and detach take pci: keys; entries and reports carry key beside address', async () => {
    const assigned = await service.assign({
      domain: 'vm1',
      addresses: [`pci:${VF0}`, '01:10.1'],
      vf: { [`pci:${VF0}`]: { mac: '52:54:00:00:00:01', vlan: 10 } },
    });
    expect(assigned.failures).toEqual([]);
    const status = await service.status();
    expect(status.active.map((entry) => [entry.key, entry.address])).toEqual([
      [`pci:${VF0}`, VF0],
      [`pci:${VF1}`, VF1],
    ]);
    const vfs = await service.vf.list({ pf: `pci:${PF}` });
    expect(vfs.vfs.every((vf) => vf.key === `pci:${vf.address}`)).toBe(true);
    expect(vfs.vfs.find((vf) => vf.address === VF0)).toMatchObject({ key: `pci:${VF0}`, owner: { domain: 'vm1' }, mac: '52:54:00:00:00:01' });

    const args = await service.qemuArgs({ domain: 'vm1' });
    expect([args.devices, args.keys, args.missingKeys]).toEqual([[VF0, VF1], [`pci:${VF0}`, `pci:${VF1}`], []]);

    const released = await service.release({ domain: 'vm1', addresses: [`pci:${VF1}`] });
    expect(released.released).toEqual([VF1]);
    expect(released.changes).toContainEqual({ kind: 'remove', key: `pci:${VF1}`, address: VF1 });

    const detached = await service.detach({ device: `pci:${VF1}` });
    expect(detached.changes).toEqual([{ kind: 'set-inactive', entry: expect.objectContaining({ key: `pci:${VF1}`, address: VF1 }) }]);
    const reattached = await service.reattach({ device: 'pci_0000_01_10_1' });
    expect(reattached.changes).toEqual([{ kind: 'remove', key: `pci:${VF1}`, address: VF1 }]);
    await service.release({ domain: 'vm1' });
    expect((await service.status()).active).toEqual([]);
  });

  it('list, show and groups print key beside address', async () => {
    const listed = (await service.list()).report;
    expect(listed.every((device) => device.key === `pci:${device.address}`)).toBe(true);
    const shown = (await service.show(`pci:${VF0}`)).report;
    expect(shown).toMatchObject({ key: `pci:${VF0}`, address: VF0 });
    expect(shown.groupMembers.every((member) => member['key'] === `pci:${String(member['address'])}`)).toBe(true);
    const groups = (await service.groups()).report;
    expect(groups.flatMap((group) => group.members).every((member) => member['key'] === `pci:${String(member['address'])}`)).toBe(true);
  });

  it('a key of another kind is refused by name, a malformed key by its kind', async () => {
    expect(await refusal(service.detach({ device: 'usb:1-2' }))).toEqual({
      code: 'HOSTDEV_BAD_ADDRESS',
      message: '"usb:1-2" names a usb device; this operation takes PCI devices only',
    });
    // assign takes keys of every kind beside PCI functions (test/service/mixed-assign.test.ts); a malformed one is refused by its kind.
    expect(await refusal(service.assign({ domain: 'vm1', addresses: [VF0, 'scsi:0:0:0'] }))).toEqual({
      code: 'HOSTDEV_BAD_ADDRESS',
      message: '"scsi:0:0:0" is not a valid scsi: key',
    });
    expect(await refusal(service.show('pci:0000:01:20.0'))).toEqual({
      code: 'HOSTDEV_BAD_ADDRESS',
      message: '"pci:0000:01:20.0" is not a valid pci: key',
    });
  });

  it('the CLI takes a key where it takes an address, and refuses another kind with exit 2', () => {
    const shown = cli(['show', `pci:${VF0}`]);
    expect(shown.code).toBe(0);
    expect(jsonOf<{ key: string; address: string }>(shown)).toMatchObject({ key: `pci:${VF0}`, address: VF0 });
    const refused = cli(['detach', 'scsi:0:0:0:0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('HOSTDEV_BAD_ADDRESS');
  });
});
