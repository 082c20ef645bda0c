import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { driverOf as driverOfOn } from '../sim/helpers.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { hostdevRejectionOf as refusal } from '../support/errors.js';

// One assign naming PCI functions, mediated and USB devices together (what a domain XML or the
// daemon's API sends): all or nothing across the kinds, as libvirt's qemuHostdevPrepareDomainDevices.
const NIC = '0000:00:19.0';
const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';

let base = '';
let root = '';
let service: HostdevService;

beforeEach(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-mixed-'));
  root = path.join(base, 'host');
  createSimulatedHost(root, { preset: 'virt-host' });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir: path.join(base, 'state') });
});
afterEach(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

const driverOf = (address: string): string | null => driverOfOn(root, address);

describe('assign of PCI, mediated and USB devices in one request', () => {
  it('assigns all of them and release takes keys of every kind back', async () => {
    const report = await service.assign({ domain: 'vm1', addresses: [NIC, MDEV, 'usb:1-1.2'] });
    expect(report.failures).toEqual([]);
    expect(report.devices?.assigned).toEqual([MDEV, 'usb:1-1.2']);
    expect(driverOf(NIC)).toBe('vfio-pci');
    const status = await service.status();
    expect(status.active.map((entry) => entry.key)).toEqual([`pci:${NIC}`]);
    expect(status.devices?.map((entry) => [entry.key, entry.usedBy.vm])).toEqual([
      [MDEV, 'vm1'],
      ['usb:1-1.2', 'vm1'],
    ]);

    const released = await service.release({ domain: 'vm1', addresses: [`pci:${NIC}`, 'usb:1-1.2'] });
    expect(released.released).toEqual([NIC]);
    expect(released.devices?.released).toEqual(['usb:1-1.2']);
    expect(driverOf(NIC)).toBe('e1000e');
    expect((await service.status()).devices?.map((entry) => entry.key)).toEqual([MDEV]);
  });

  it('a USB device another domain holds fails the request after the PCI detach, and the PCI function goes back to its driver', async () => {
    await service.assign({ domain: 'vm1', addresses: ['usb:1-1.2'] });
    const failed = await refusal(service.assign({ domain: 'vm2', addresses: [NIC, MDEV, 'usb:1-1.2'] }));
    expect(failed).toMatchObject({ code: 'HOSTDEV_IN_USE', message: 'USB device usb:1-1.2 is in use by driver qemu, domain vm1' });
    expect(driverOf(NIC)).toBe('e1000e');
    const status = await service.status();
    expect([status.active, status.inactive]).toEqual([[], []]);
    expect(status.devices?.map((entry) => [entry.key, entry.usedBy.vm])).toEqual([['usb:1-1.2', 'vm1']]);
  });

  it('a dry run of a request that would fail on its USB part changes nothing and says why', async () => {
    await service.assign({ domain: 'vm1', addresses: ['usb:1-1.2'] });
    expect((await refusal(service.assign({ domain: 'vm2', addresses: [NIC, 'usb:1-1.2'], dryRun: true }))).code).toBe('HOSTDEV_IN_USE');
    expect(driverOf(NIC)).toBe('e1000e');
  });

  it('a SCSI device goes with the PCI functions; one the host lacks fails the request and the PCI function is released again', async () => {
    expect((await refusal(service.assign({ domain: 'vm2', addresses: [NIC, 'scsi:2:0:5:0'] }))).code).toBe('HOSTDEV_DEVICE_NOT_FOUND');
    expect(driverOf(NIC)).toBe('e1000e');
    const report = await service.assign({ domain: 'vm2', addresses: [NIC, 'scsi:2:0:1:0'] });
    expect(report.devices?.assigned).toEqual(['scsi:2:0:1:0']);
    expect(driverOf(NIC)).toBe('vfio-pci');
  });

  it('NVMe namespaces go in the same request as mediated and USB devices: the controller to vfio-pci with them, back with their release by key', async () => {
    const NS = 'nvme:0000:01:00.0/1';
    const report = await service.assign({ domain: 'vm1', addresses: [NIC, MDEV, NS, 'usb:1-1.2'] });
    expect(report.failures).toEqual([]);
    expect(report.devices).toMatchObject({ assigned: [MDEV, 'usb:1-1.2', NS], controllers: ['0000:01:00.0'] });
    expect([driverOf(NIC), driverOf('0000:01:00.0')]).toEqual(['vfio-pci', 'vfio-pci']);
    const released = await service.release({ domain: 'vm1', addresses: [NS, MDEV] });
    expect(released.devices).toMatchObject({ released: [NS, MDEV], controllers: ['0000:01:00.0'] });
    expect(driverOf('0000:01:00.0')).toBe('nvme');
    expect((await service.status()).devices?.map((entry) => entry.key)).toEqual(['usb:1-1.2']);
  });

  it('a namespace another domain holds fails the request after its mediated device was marked: that is let go again, and the PCI function released', async () => {
    const NS = 'nvme:0000:01:00.0/1';
    await service.assign({ domain: 'vm1', addresses: [NS] });
    const failed = await refusal(service.assign({ domain: 'vm2', addresses: [NIC, MDEV, NS] }));
    expect(failed.code).toBe('HOSTDEV_IN_USE');
    expect(driverOf(NIC)).toBe('e1000e');
    const status = await service.status();
    expect(status.devices?.map((entry) => `${entry.usedBy.vm} ${entry.key}`)).toEqual([`vm1 ${NS}`]);
    expect(status.active.map((entry) => `${entry.usedBy.vm} ${entry.address}`)).toEqual(['vm1 0000:01:00.0']);
  });

  it('`unmanaged` PCI functions must already be on a stub, whatever `managed` says', async () => {
    expect((await refusal(service.assign({ domain: 'vm1', addresses: [], unmanaged: [NIC] }))).code).toBe('HOSTDEV_UNMANAGED_NOT_DETACHED');
    await service.detach({ device: NIC });
    const report = await service.assign({ domain: 'vm1', addresses: [MDEV], unmanaged: [NIC] });
    expect(report.changes).toMatchObject([{ kind: 'set-active', entry: { address: NIC } }]);
    expect(report.devices?.assigned).toEqual([MDEV]);
  });
});
