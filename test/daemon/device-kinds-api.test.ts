import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OperationRecordJson } from '../../src/daemon/schemas.js';
import { cleanUpAfterEach, cli, daemonHost, startTestDaemon } from './daemon-host.js';

cleanUpAfterEach();

// The API takes keys of every kind where it takes a PCI address: assign, release, show; status lists them.
const NIC = '0000:00:19.0';
const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';

interface StatusJson {
  active: { key: string }[];
  devices?: { key: string; usedBy: { vm: string } }[];
}

describe('the API with mediated and USB devices beside PCI functions', () => {
  it('one assign of PCI + mdev + USB, status, show of each kind, and a release by keys of every kind', async () => {
    const host = daemonHost('virt-host');
    const { app } = await startTestDaemon(host);
    const assign = await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1', devices: [NIC, MDEV, 'usb:1050:0407'] } });
    expect(assign.statusCode, assign.body).toBe(200);
    const record = assign.json<OperationRecordJson>();
    expect(record.devices).toEqual([`pci:${NIC}`, MDEV, 'usb:1050:0407']);
    expect(record.result).toMatchObject({ operation: 'assign', devices: { assigned: [MDEV, 'usb:1-1.2'] } });

    const status = (await app.inject({ method: 'GET', url: '/v1/status' })).json<StatusJson>();
    expect(status.active.map((entry) => entry.key)).toEqual([`pci:${NIC}`]);
    expect(status.devices?.map((entry) => [entry.key, entry.usedBy.vm])).toEqual([
      [MDEV, 'vm1'],
      ['usb:1-1.2', 'vm1'],
    ]);
    for (const key of ['usb:1-1.2', MDEV, 'scsi:2:0:1:0', `pci:${NIC}`]) {
      const shown = await app.inject({ method: 'GET', url: `/v1/devices/${encodeURIComponent(key)}` });
      expect(shown.statusCode, key).toBe(200);
      expect(shown.json(), key).toEqual(cli(host, ['show', key]));
    }

    const again = await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1', devices: [NIC, MDEV, 'usb:1-1.2'] } });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<OperationRecordJson>().noop).toBe(true);

    const release = await app.inject({ method: 'DELETE', url: `/v1/assignments/qemu/vm1?devices=usb:1-1.2,pci:${NIC}` });
    expect(release.statusCode, release.body).toBe(200);
    expect(release.json<OperationRecordJson>().result).toMatchObject({ released: [NIC], devices: { released: ['usb:1-1.2'] } });
    expect((await app.inject({ method: 'GET', url: '/v1/status' })).json<StatusJson>().devices?.map((entry) => entry.key)).toEqual([MDEV]);
  });

  it('an assign whose USB part fails gives the PCI function back to its driver: all or nothing', async () => {
    const host = daemonHost('virt-host');
    const { app } = await startTestDaemon(host);
    expect((await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'other', devices: ['usb:1-1.2'] } })).statusCode).toBe(200);
    const failed = await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1', devices: [NIC, MDEV, 'usb:1-1.2'] } });
    expect(failed.statusCode).toBe(409);
    expect(failed.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'HOSTDEV_IN_USE',
      message: 'USB device usb:1-1.2 is in use by driver qemu, domain other',
    });
    expect(path.basename(readlinkSync(path.join(host.root, 'sys/bus/pci/devices', NIC, 'driver')))).toBe('e1000e');
    const status = (await app.inject({ method: 'GET', url: '/v1/status' })).json<StatusJson>();
    expect(status.active).toEqual([]);
    expect(status.devices?.map((entry) => [entry.key, entry.usedBy.vm])).toEqual([['usb:1-1.2', 'other']]);
  });

  it('scsi: keys are assigned beside PCI functions, `shareable` naming those other domains may share; hotplug takes their keys (here: to a socket nobody answers on)', async () => {
    const host = daemonHost('virt-host');
    const { app } = await startTestDaemon(host);
    const scsi = await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1', devices: [NIC, 'scsi:2:0:1:0'], shareable: ['scsi:2:0:1:0'] } });
    expect(scsi.statusCode, scsi.body).toBe(200);
    const shared = await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm2', devices: ['scsi:2:0:1:0'], shareable: ['scsi:2:0:1:0'] } });
    expect(shared.statusCode, shared.body).toBe(200);
    const status = (await app.inject({ method: 'GET', url: '/v1/status' })).json<{ devices?: { key: string; sharedBy?: { vm: string }[] }[] }>();
    expect(status.devices).toMatchObject([{ key: 'scsi:2:0:1:0', usedBy: { vm: 'vm1' }, shareable: true, sharedBy: [{ vm: 'vm2' }] }]);
    // the same assign again by the domain that shares it: a no-op, as for the first holder
    const again = await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm2', devices: ['scsi:2:0:1:0'], shareable: ['scsi:2:0:1:0'] } });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<{ noop?: boolean }>().noop).toBe(true);
    const hotplug = await app.inject({ method: 'POST', url: '/v1/domains/qemu/vm1/hotplug', payload: { qmp: '/nonexistent.sock', devices: [MDEV] } });
    expect(hotplug.statusCode).toBe(502);
    expect(hotplug.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'HOSTDEV_QMP', message: expect.stringMatching(/cannot reach QEMU's monitor at \/nonexistent\.sock/) });
  });
});
