import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DeviceKey } from '../../src/core/device-key.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { driverOf as driverOfOn } from '../sim/helpers.js';
import { createSimulatedHost, presets, simulatedHost, type HostSpec } from '../../src/sim-entry.js';

// NVMe namespaces as table entries, libvirt's semantics, on virt-host with a second NVMe controller
// added at 01:00.1 (its own IOMMU group, one namespace): libvirt's virhostdevtest.c disks are two
// namespaces of one controller and one of another, which is what this host has.
const A = '0000:01:00.0';
const B = '0000:01:00.1';
const DISKS = [`nvme:${A}/1`, `nvme:${A}/2`, `nvme:${B}/1`] as DeviceKey[];

function twoControllers(): HostSpec {
  const spec = structuredClone(presets['virt-host']!) as unknown as { roots: { devices: { at: string; children?: Record<string, unknown>[] }[] }[] };
  const port = spec.roots[0]!.devices.find((device) => device.at === '1c.0')!;
  const first = port.children![0]!;
  port.children!.push({
    ...first,
    at: '00.1',
    iommuGroup: 40,
    nvme: { instance: 1, model: 'Samsung SSD 980 500GB', serial: 'S64DNX0R654321B', namespaces: [{ nsid: 1, sectors: 976_773_168 }] },
  });
  port.children![0] = { ...first, iommuGroup: 41 };
  return spec as unknown as HostSpec;
}

let base = '';
let root = '';
let stateDir = '';
let service: HostdevService;

beforeEach(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-nvme-'));
  root = path.join(base, 'host');
  stateDir = path.join(base, 'state');
  createSimulatedHost(root, { spec: twoControllers() });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir });
});
afterEach(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

const driverOf = (address: string): string | null => driverOfOn(root, address);

/** libvirt's CHECK_NVME_LIST_COUNT / CHECK_PCI_LIST_COUNT: active NVMe, active PCI, inactive PCI. */
async function counts(): Promise<[number, number, number]> {
  const status = await service.status();
  return [(status.devices ?? []).filter((entry) => entry.kind === 'nvme').length, status.active.length, status.inactive.length];
}

describe('NVMe namespaces (virhostdevtest.c testNVMeDiskRoundtrip)', () => {
  it('detaches a controller with its first namespace and gives it back with its last, with libvirt\'s counts at each step', async () => {
    expect(await counts()).toEqual([0, 0, 0]);
    const assigned = await service.assignDevices({ domain: 'vm1', devices: DISKS });
    expect(assigned).toMatchObject({ assigned: DISKS, controllers: [A, B] });
    expect(await counts()).toEqual([3, 2, 0]);
    expect([driverOf(A), driverOf(B)]).toEqual(['vfio-pci', 'vfio-pci']);

    // The first disk: its controller still has the second namespace in the domain.
    expect(await service.releaseDevices({ domain: 'vm1', devices: [DISKS[0]!] })).toMatchObject({ released: [DISKS[0]], controllers: [] });
    expect(await counts()).toEqual([2, 2, 0]);
    expect(driverOf(A)).toBe('vfio-pci');

    // The last one (of controller B): B goes back to nvme.
    expect(await service.releaseDevices({ domain: 'vm1', devices: [DISKS[2]!] })).toMatchObject({ released: [DISKS[2]], controllers: [B] });
    expect(await counts()).toEqual([1, 1, 0]);
    expect(driverOf(B)).toBe('nvme');

    // Finally the middle one: A goes back too.
    await service.releaseDevices({ domain: 'vm1', devices: [DISKS[1]!] });
    expect(await counts()).toEqual([0, 0, 0]);
    expect(driverOf(A)).toBe('nvme');
    expect((await service.listKind('nvme')).report.map((device) => device.key)).toEqual(DISKS);
  });

  it('refuses a namespace in use (libvirt\'s message) and a second domain on the same controller (catalog error); all or nothing', async () => {
    await service.assignDevices({ domain: 'vm1', devices: [DISKS[0]!] });
    await expect(service.assignDevices({ domain: 'vm2', devices: [DISKS[0]!] })).rejects.toMatchObject({
      code: 'HOSTDEV_IN_USE',
      message: `NVMe device ${DISKS[0]} already in use by driver qemu, domain vm1`,
    });
    await expect(service.assignDevices({ domain: 'vm2', devices: [DISKS[2]!, DISKS[1]!] })).rejects.toMatchObject({
      code: 'HOSTDEV_NVME_CONTROLLER_SHARED',
      details: { key: DISKS[1], controller: A, heldBy: DISKS[0] },
    });
    expect(driverOf(B)).toBe('nvme');
    expect(await counts()).toEqual([1, 1, 0]);
    // The same domain takes the controller's other namespace (hidden now: the controller is on vfio-pci) without a driver change.
    expect(await service.assignDevices({ domain: 'vm1', devices: [DISKS[1]!] })).toMatchObject({ assigned: [DISKS[1]], controllers: [] });
    expect(await counts()).toEqual([2, 1, 0]);
    // A namespace of a controller on nvme that the host does not show is not found.
    await expect(service.assignDevices({ domain: 'vm1', devices: [`nvme:${B}/9` as DeviceKey] })).rejects.toMatchObject({ code: 'HOSTDEV_DEVICE_NOT_FOUND' });
  });

  it('a release naming the controller itself is refused while the domain holds namespaces of it; releasing them gives it back', async () => {
    await service.assignDevices({ domain: 'vm1', devices: [DISKS[0]!, DISKS[1]!] });
    await expect(service.release({ domain: 'vm1', addresses: [A] })).rejects.toMatchObject({
      code: 'HOSTDEV_IN_USE',
      message: `PCI device ${A} is the NVMe controller of ${DISKS[0]}, ${DISKS[1]}, in use by driver qemu, domain vm1: it goes back to nvme with the last of them`,
      details: { address: A, namespaces: [DISKS[0], DISKS[1]] },
    });
    expect(driverOf(A)).toBe('vfio-pci');
    expect(await counts()).toEqual([2, 1, 0]);
    await service.release({ domain: 'vm1', addresses: [DISKS[0]!, DISKS[1]!] });
    expect(driverOf(A)).toBe('nvme');
    expect(await counts()).toEqual([0, 0, 0]);
  });

  it('a dry run prints the controller\'s detach plan and changes nothing; a whole-domain release gives every controller back', async () => {
    const dry = await service.assignDevices({ domain: 'vm1', devices: [DISKS[2]!], dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, controllers: [B] });
    expect(dry.steps).toContain(`check ${B} driver is vfio-pci`);
    expect(await counts()).toEqual([0, 0, 0]);
    await service.assignDevices({ domain: 'vm1', devices: DISKS });
    const released = await service.release({ domain: 'vm1' });
    expect(released.devices?.released).toEqual(DISKS);
    expect(await counts()).toEqual([0, 0, 0]);
    expect([driverOf(A), driverOf(B)]).toEqual(['nvme', 'nvme']);
  });

  it('libvirt\'s "Suspicious NVMe disk assignment": a controller on neither nvme nor a stub is noted, and the assign goes on', async () => {
    const nic = '0000:00:19.0';
    const assigned = await service.assignDevices({ domain: 'vm1', devices: [`nvme:${nic}/1` as DeviceKey] });
    expect(assigned.notes).toContain(`Suspicious NVMe disk assignment. PCI device ${nic} is not an NVMe disk, it has e1000e driver`);
    expect(driverOf(nic)).toBe('vfio-pci');
    const quiet = await service.assignDevices({ domain: 'vm1', devices: [DISKS[0]!] });
    expect(quiet.notes).toEqual([]);
  });

  it('qemu-args gives each namespace as libvirt does (QEMU\'s nvme block driver), not the controller as a vfio-pci device', async () => {
    await service.assignDevices({ domain: 'vm1', devices: [DISKS[1]!, DISKS[0]!] });
    const args = await service.qemuArgs({ domain: 'vm1' });
    const id = (nsid: number): string => `hostdev-nvme-0000_01_00_0-${nsid}`;
    // The node name fits QEMU's 31 characters (hostdev-nvme-0000_01_00_0-1-storage did not: "Node name too long").
    const node = (nsid: number): string => `hd-nvme-0000_01_00_0-${nsid}`;
    expect(args.argv).toEqual([1, 2].flatMap((nsid) => [
      '-blockdev',
      JSON.stringify({ driver: 'nvme', device: A, namespace: nsid, 'node-name': node(nsid), 'auto-read-only': true, discard: 'unmap' }),
      '-device',
      `virtio-blk-pci,drive=${node(nsid)},id=${id(nsid)}`,
    ]));
  });

  it('status keeps the namespaces of a controller on vfio-pci; the controller leaving the host prunes them', async () => {
    await service.assignDevices({ domain: 'vm1', devices: [DISKS[2]!] });
    expect((await service.status()).prunedDevices).toEqual([]);
    rmSync(path.join(root, 'sys/bus/pci/devices', B), { force: true });
    const status = await service.status();
    expect(status.prunedDevices).toEqual([{ key: DISKS[2], usedBy: expect.objectContaining({ vm: 'vm1' }), awaited: true }]);
  });
});
