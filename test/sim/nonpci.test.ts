import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { SimKernel } from '../../src/sim/kernel.js';
import { presets } from '../../src/sim/presets.js';
import { SpecError, type HostSpec } from '../../src/sim/spec.js';
import { cleanupRoots, presetRoot, specRoot, tempRoot, errnoOf } from './helpers.js';

afterAll(cleanupRoots);
const kernels: SimKernel[] = [];
afterEach(() => {
  for (const k of kernels.splice(0)) k.close();
});

function host(): { root: string; k: SimKernel } {
  const root = presetRoot('virt-host');
  const k = new SimKernel(root);
  kernels.push(k);
  return { root, k };
}

const read = (root: string, rel: string): string => fs.readFileSync(path.join(root, rel), 'utf8').trim();
const names = (root: string, rel: string): string[] => {
  try {
    return fs.readdirSync(path.join(root, rel)).sort();
  } catch {
    return [];
  }
};
const GPU = '0000:00:02.0';
const TYPES = `/sys/bus/pci/devices/${GPU}/mdev_supported_types`;
const V5_4 = `${TYPES}/i915-GVTg_V5_4`;
const UUID_A = 'a297db4a-f4c2-11e6-90f6-d3b88d6c9525';
const UUID_B = 'b297db4a-f4c2-11e6-90f6-d3b88d6c9525';
const UUID_C = 'c297db4a-f4c2-11e6-90f6-d3b88d6c9525';

describe('the virt-host preset: USB, mdev, NVMe and SCSI laid out as Linux does', () => {
  it('USB: devices under /sys/bus/usb/devices with idVendor, idProduct, busnum, devnum, devpath; hubs nest their ports', () => {
    const { root } = host();
    const devices = names(root, 'sys/bus/usb/devices').filter((n) => !n.includes(':'));
    expect(devices).toEqual(['1-1', '1-1.2', '1-1.3', '1-2', '1-4', 'usb1', 'usb2']);
    const key = 'sys/bus/usb/devices/1-1.2';
    expect([read(root, `${key}/idVendor`), read(root, `${key}/idProduct`), read(root, `${key}/busnum`), read(root, `${key}/devpath`)]).toEqual(['1050', '0407', '1', '1.2']);
    expect(read(root, `${key}/devnum`)).toMatch(/^[0-9]+$/);
    expect(fs.realpathSync(path.join(root, key))).toBe(fs.realpathSync(path.join(root, 'sys/bus/usb/devices/1-1/1-1.2')));
    expect(path.basename(fs.readlinkSync(path.join(root, 'sys/bus/usb/devices/1-1.3:1.0/driver')))).toBe('usb-storage');
    expect(names(root, 'sys/bus/usb/devices').filter((n) => n.startsWith('1-0:') || n.startsWith('2-0:'))).toEqual(['1-0:1.0', '2-0:1.0']);
    const devnum = read(root, `${key}/devnum`).padStart(3, '0');
    expect(fs.existsSync(path.join(root, `dev/bus/usb/001/${devnum}`))).toBe(true);
  });

  it('mdev: the parent offers its types with name, description, available_instances, device_api and create; the made vGPU is on the bus', () => {
    const { root } = host();
    expect(names(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types`)).toEqual(['i915-GVTg_V5_4', 'i915-GVTg_V5_8']);
    const type = `sys/bus/pci/devices/${GPU}/mdev_supported_types/i915-GVTg_V5_8`;
    expect([read(root, `${type}/name`), read(root, `${type}/available_instances`), read(root, `${type}/device_api`)]).toEqual(['GVTg_V5_8', '3', 'vfio-pci']);
    expect(read(root, `${type}/description`)).toContain('resolution: 1024x768');
    expect(names(root, 'sys/bus/mdev/devices')).toEqual(['4b20d080-1b54-4048-85b3-a6a62d165c01']);
    expect(names(root, `${type}/devices`)).toEqual(['4b20d080-1b54-4048-85b3-a6a62d165c01']);
    expect(names(root, 'sys/class/mdev_bus')).toEqual([GPU]);
  });

  it('NVMe: the controller shows nvme0 with two namespaces, each a block device with its nsid', () => {
    const { root } = host();
    expect(names(root, 'sys/class/nvme')).toEqual(['nvme0']);
    expect(read(root, 'sys/class/nvme/nvme0/address')).toBe('0000:01:00.0');
    expect(names(root, 'sys/class/block')).toEqual(['nvme0n1', 'nvme0n2', 'sda']);
    expect(read(root, 'sys/class/block/nvme0n2/nsid')).toBe('2');
  });

  it('SCSI: H:C:T:L devices with vendor, model, type and their sg node; a disk has its block device', () => {
    const { root } = host();
    expect(names(root, 'sys/bus/scsi/devices')).toEqual(['2:0:0:0', '2:0:1:0', 'host2', 'target2:0:0', 'target2:0:1']);
    expect(read(root, 'sys/bus/scsi/devices/2:0:1:0/type')).toBe('1');
    expect(read(root, 'sys/bus/scsi/devices/2:0:1:0/vendor')).toBe('HP');
    expect(names(root, 'sys/bus/scsi/devices/2:0:1:0/scsi_generic')).toEqual(['sg1']);
    expect(names(root, 'sys/class/scsi_generic')).toEqual(['sg0', 'sg1']);
    expect(path.basename(fs.readlinkSync(path.join(root, 'sys/bus/scsi/devices/2:0:1:0/driver')))).toBe('st');
    expect(fs.existsSync(path.join(root, 'dev/sg1'))).toBe(true);
  });
});

describe('mdev create and remove (mdev_sysfs.c create_store, remove_store) with the kernel errno', () => {
  it('create makes the mdev: on the bus, bound to the parent driver, in a group of its own, one instance fewer', async () => {
    const { root, k } = host();
    await k.write(`${V5_4}/create`, `${UUID_A.toUpperCase()}\n`);
    const dir = `sys/bus/mdev/devices/${UUID_A}`;
    expect(fs.existsSync(path.join(root, dir))).toBe(true);
    expect(path.basename(fs.readlinkSync(path.join(root, dir, 'mdev_type')))).toBe('i915-GVTg_V5_4');
    expect(path.basename(fs.readlinkSync(path.join(root, dir, 'driver')))).toBe('intel_vgpu_mdev');
    const group = path.basename(fs.readlinkSync(path.join(root, dir, 'iommu_group')));
    expect(fs.existsSync(path.join(root, 'dev/vfio', group))).toBe(true);
    expect(read(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types/i915-GVTg_V5_4/available_instances`)).toBe('1');
  });

  it.each([
    ['not a UUID', 'not-a-uuid-at-all-not-a-uuid-at-all!'],
    ['too short', 'a297db4a-f4c2-11e6-90f6-d3b88d6c952'],
    ['too long', `${UUID_A}xx`],
    ['a dash misplaced', 'a297db4af-4c2-11e6-90f6-d3b88d6c9525'],
  ])('a bad UUID (%s) is EINVAL and makes nothing', async (_why, value) => {
    const { root, k } = host();
    expect(await errnoOf(k.write(`${V5_4}/create`, value))).toBe('EINVAL');
    expect(names(root, 'sys/bus/mdev/devices')).toHaveLength(1);
  });

  it('a UUID in use is EEXIST; no instance left is EUSERS', async () => {
    const { root, k } = host();
    expect(await errnoOf(k.write(`${V5_4}/create`, '4b20d080-1b54-4048-85b3-a6a62d165c01\n'))).toBe('EEXIST');
    await k.write(`${V5_4}/create`, UUID_A);
    await k.write(`${V5_4}/create`, UUID_B);
    expect(await errnoOf(k.write(`${V5_4}/create`, UUID_C))).toBe('EUSERS');
    expect(names(root, 'sys/bus/mdev/devices')).toHaveLength(3);
  });

  it('remove: "0" does nothing, a non-number is EINVAL, "1" removes the mdev, its links and group, and gives the instance back', async () => {
    const { root, k } = host();
    await k.write(`${V5_4}/create`, UUID_A);
    const group = path.basename(fs.readlinkSync(path.join(root, `sys/bus/mdev/devices/${UUID_A}/iommu_group`)));
    const remove = `/sys/bus/mdev/devices/${UUID_A}/remove`;
    await k.write(remove, '0');
    expect(fs.existsSync(path.join(root, `sys/bus/mdev/devices/${UUID_A}`))).toBe(true);
    expect(await errnoOf(k.write(remove, 'yes'))).toBe('EINVAL');
    await k.write(remove, '1\n');
    expect(names(root, 'sys/bus/mdev/devices')).toEqual(['4b20d080-1b54-4048-85b3-a6a62d165c01']);
    expect(names(root, 'sys/bus/mdev/drivers/intel_vgpu_mdev').filter((n) => n === UUID_A)).toEqual([]);
    expect(fs.existsSync(path.join(root, 'sys/kernel/iommu_groups', group))).toBe(false);
    expect(fs.existsSync(path.join(root, 'dev/vfio', group))).toBe(false);
    expect(read(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types/i915-GVTg_V5_4/available_instances`)).toBe('2');
  });

  it('removing the parent PCI device takes its mdevs off the bus', async () => {
    const { root, k } = host();
    await k.write(`/sys/bus/pci/devices/${GPU}/remove`, '1');
    expect(names(root, 'sys/bus/mdev/devices')).toEqual([]);
    expect(names(root, 'sys/class/mdev_bus')).toEqual([]);
  });
});

describe('an mdev parent that is no PCI function (the kernel\'s mtty sample): types sharing one pool', () => {
  const MTTY = 'sys/devices/virtual/mtty/mtty/mdev_supported_types';
  const withMtty = (devices: { uuid: string; type: string }[] = []): HostSpec => ({
    ...presets['virt-host']!,
    virtualMdevParents: [
      {
        name: 'mtty', class: 'mtty', driver: 'mtty', capacity: 24, devices,
        types: [
          { id: 'mtty-1', name: 'Single port serial', availableInstances: 24, cost: 1 },
          { id: 'mtty-2', name: 'Dual port serial', availableInstances: 12, cost: 2 },
        ],
      },
    ],
  });
  const available = (root: string): string[] => ['mtty-1', 'mtty-2'].map((t) => read(root, `${MTTY}/${t}/available_instances`));

  it('the parent is /sys/devices/virtual/mtty/mtty in mdev_bus; making a mtty-2 takes two of the 24 ports from both types, removing it gives them back', async () => {
    const root = specRoot(withMtty());
    const k = new SimKernel(root);
    kernels.push(k);
    expect(fs.realpathSync(path.join(root, 'sys/class/mdev_bus/mtty'))).toBe(path.join(fs.realpathSync(root), 'sys/devices/virtual/mtty/mtty'));
    expect(available(root)).toEqual(['24', '12']);
    await k.write(`/${MTTY}/mtty-2/create`, UUID_A);
    expect(path.basename(fs.readlinkSync(path.join(root, `sys/bus/mdev/devices/${UUID_A}/driver`)))).toBe('mtty');
    expect(fs.existsSync(path.join(root, `sys/bus/mdev/devices/${UUID_A}/iommu_group`))).toBe(true);
    expect(available(root)).toEqual(['22', '11']);
    await k.write(`/${MTTY}/mtty-1/create`, UUID_B);
    expect(available(root)).toEqual(['21', '10']);
    await k.write(`/sys/bus/mdev/devices/${UUID_A}/remove`, '1');
    expect(available(root)).toEqual(['23', '11']);
  });

  it('build-time mdevs count against the pool; a type offering other than capacity / cost, or more mdevs than the pool holds, is a SpecError', () => {
    expect(available(specRoot(withMtty([{ uuid: UUID_A, type: 'mtty-2' }])))).toEqual(['22', '11']);
    const bad = withMtty();
    const wrong = { ...bad, virtualMdevParents: [{ ...bad.virtualMdevParents![0]!, types: [{ id: 'mtty-1', name: 'x', availableInstances: 20, cost: 1 }] }] };
    expect(() => buildHost(path.join(tempRoot(), 'host'), wrong)).toThrow(/capacity 24/);
    const full = withMtty(Array.from({ length: 13 }, (_, i) => ({ uuid: `${String(i).padStart(8, '0')}-f4c2-11e6-90f6-d3b88d6c9525`, type: 'mtty-2' })));
    expect(() => buildHost(path.join(tempRoot(), 'host'), full)).toThrow(SpecError);
  });
});

describe('NVMe namespaces follow the controller driver', () => {
  it('unbound from nvme the namespaces go; bound again they come back', async () => {
    const { root, k } = host();
    await k.write('/sys/bus/pci/drivers/nvme/unbind', '0000:01:00.0');
    expect(names(root, 'sys/class/nvme')).toEqual([]);
    expect(names(root, 'sys/class/block')).toEqual(['sda']);
    expect(fs.existsSync(path.join(root, 'dev/nvme0n1'))).toBe(false);
    await k.write('/sys/bus/pci/drivers/nvme/bind', '0000:01:00.0');
    expect(names(root, 'sys/class/block')).toEqual(['nvme0n1', 'nvme0n2', 'sda']);
  });
});

describe('specs of these kinds are checked whole before anything is written', () => {
  const base = presets['virt-host']!;
  const withEndpoint = (patch: Record<string, unknown>): HostSpec => ({
    ...base,
    roots: [{ devices: [{ at: '14.0', vendor: '8086', device: 'a36d', class: '0c0330', ...patch }] }],
  });
  it.each([
    ['a USB port below a missing hub', { usbBuses: [{ bus: 1, devices: [{ port: '3.1', vendor: '1050', product: '0407' }] }] }, 'usbBuses.0.devices.0.port'],
    ['an mdev of a type the parent lacks', { mdev: { driver: 'x', types: [{ id: 't-1', name: 't', availableInstances: 1 }], devices: [{ uuid: UUID_A, type: 't-2' }] } }, 'mdev.devices.0.type'],
    ['more mdevs than instances', { mdev: { driver: 'x', types: [{ id: 't-1', name: 't', availableInstances: 1 }], devices: [{ uuid: UUID_A, type: 't-1' }, { uuid: UUID_B, type: 't-1' }] } }, 'mdev.devices.1.type'],
    ['an NVMe namespace ID twice', { nvme: { instance: 0, namespaces: [{ nsid: 1, sectors: 8 }, { nsid: 1, sectors: 8 }] } }, 'nvme.namespaces'],
    ['two SCSI devices on one sg', { scsi: { host: 0, devices: [{ channel: 0, target: 0, lun: 0, type: 0, vendor: 'A', model: 'B', sg: 0 }, { channel: 0, target: 1, lun: 0, type: 0, vendor: 'A', model: 'B', sg: 0 }] } }, 'scsi.devices.1.sg'],
  ])('%s: SpecError naming the field, nothing written', (_why, patch, field) => {
    const root = path.join(tempRoot(), 'host');
    let error: unknown = null;
    try {
      buildHost(root, withEndpoint(patch));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SpecError);
    expect((error as SpecError).field).toBe(`roots.0.devices.0.${field}`);
    expect(fs.existsSync(root)).toBe(false);
  });
});

describe('sim snapshot copies these kinds', () => {
  /** Every entry of these buses and classes: where it leads and the files it holds, with their contents. */
  function view(root: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    // (the mdev_bus class leads to the PCI parent, whose copy sim snapshot makes on its own terms: only where it leads counts)
    for (const name of names(root, 'sys/class/mdev_bus')) out[`mdev_bus/${name}`] = path.relative(root, fs.realpathSync(path.join(root, 'sys/class/mdev_bus', name)));
    for (const rel of ['sys/bus/usb/devices', 'sys/bus/mdev/devices', 'sys/bus/scsi/devices', 'sys/class/nvme', 'sys/class/block', 'sys/class/scsi_generic']) {
      for (const name of names(root, rel)) {
        const real = fs.realpathSync(path.join(root, rel, name));
        const files = fs
          .readdirSync(real, { withFileTypes: true })
          .filter((e) => e.isFile() && (fs.statSync(path.join(real, e.name)).mode & 0o444) !== 0)
          .map((e) => [e.name, fs.readFileSync(path.join(real, e.name), 'utf8')]);
        const links = fs
          .readdirSync(real, { withFileTypes: true })
          .filter((e) => e.isSymbolicLink())
          .map((e) => [e.name, path.relative(root, fs.realpathSync(path.join(real, e.name)))]);
        out[`${rel}/${name}`] = { at: path.relative(root, real), files: Object.fromEntries(files), links: Object.fromEntries(links) };
      }
    }
    for (const type of names(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types`)) {
      out[type] = read(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types/${type}/available_instances`);
    }
    return out;
  }

  it('the copy of a virt-host shows the same USB, mdev, NVMe and SCSI entries, files and links; its kernel keeps the NVMe namespaces and mdev driver', async () => {
    const { root, k } = host();
    await k.write(`${V5_4}/create`, UUID_A);
    const { snapshotHost } = await import('../../src/sim/snapshot.js');
    const copy = path.join(tempRoot(), 'copy');
    snapshotHost(root, copy);
    expect(view(copy)).toEqual(view(root));
    const copied = new SimKernel(copy);
    kernels.push(copied);
    await copied.write('/sys/bus/pci/drivers/nvme/unbind', '0000:01:00.0');
    await copied.write('/sys/bus/pci/drivers/nvme/bind', '0000:01:00.0');
    expect(names(copy, 'sys/class/block')).toEqual(['nvme0n1', 'nvme0n2', 'sda']);
    await copied.write(`${V5_4}/create`, UUID_B);
    expect(path.basename(fs.readlinkSync(path.join(copy, `sys/bus/mdev/devices/${UUID_B}/driver`)))).toBe('intel_vgpu_mdev');
    expect(await errnoOf(copied.write(`${V5_4}/create`, UUID_C))).toBe('EUSERS');
  });
});

describe("what a function's driver shows below it comes and goes with the driver", () => {
  it('xHCI unbound: its USB buses, their devices and nodes go; bound again they are back', async () => {
    const { root, k } = host();
    await k.write('/sys/bus/pci/drivers/xhci_hcd/unbind', '0000:00:14.0');
    expect(names(root, 'sys/bus/usb/devices')).toEqual([]);
    expect(names(root, 'dev/bus/usb/001')).toEqual([]);
    await k.write('/sys/bus/pci/drivers/xhci_hcd/bind', '0000:00:14.0');
    expect(names(root, 'sys/bus/usb/devices').filter((n) => !n.includes(':'))).toEqual(['1-1', '1-1.2', '1-1.3', '1-2', '1-4', 'usb1', 'usb2']);
  });

  it('the mdev parent unbound: its types and its mdevs go (mdev_unregister_parent); bound again the types are back, the mdevs are not', async () => {
    const { root, k } = host();
    await k.write('/sys/bus/pci/drivers/i915/unbind', GPU);
    expect(names(root, 'sys/bus/mdev/devices')).toEqual([]);
    expect(names(root, 'sys/class/mdev_bus')).toEqual([]);
    expect(fs.existsSync(path.join(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types`))).toBe(false);
    await k.write('/sys/bus/pci/drivers/i915/bind', GPU);
    expect(names(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types`)).toEqual(['i915-GVTg_V5_4', 'i915-GVTg_V5_8']);
    expect(read(root, `sys/bus/pci/devices/${GPU}/mdev_supported_types/i915-GVTg_V5_8/available_instances`)).toBe('4');
    expect(names(root, 'sys/bus/mdev/devices')).toEqual([]);
  });

  it('the HBA removed and rescanned: its SCSI devices go with it and come back with its driver', async () => {
    const { root, k } = host();
    await k.write('/sys/bus/pci/devices/0000:02:00.0/remove', '1');
    expect(names(root, 'sys/bus/scsi/devices')).toEqual([]);
    expect(names(root, 'sys/class/scsi_generic')).toEqual([]);
    expect(fs.existsSync(path.join(root, 'dev/sg1'))).toBe(false);
    await k.write('/sys/bus/pci/rescan', '1');
    expect(names(root, 'sys/bus/scsi/devices')).toEqual(['2:0:0:0', '2:0:1:0', 'host2', 'target2:0:0', 'target2:0:1']);
  });
});

describe('USB unplug (remove_store) and plug', () => {
  it('writing remove unplugs the device with what is below it; a root hub is EINVAL', async () => {
    const { root, k } = host();
    const devnum = read(root, 'sys/bus/usb/devices/1-1.3/devnum').padStart(3, '0');
    await k.write('/sys/bus/usb/devices/1-1/remove', '1');
    expect(names(root, 'sys/bus/usb/devices').filter((n) => !n.includes(':'))).toEqual(['1-2', '1-4', 'usb1', 'usb2']);
    expect(fs.existsSync(path.join(root, `dev/bus/usb/001/${devnum}`))).toBe(false);
    expect(await errnoOf(k.write('/sys/bus/usb/devices/usb1/remove', '1'))).toBe('EINVAL');
  });

  it('a device plugged in gets the next address on its bus; a port below a missing hub is refused', async () => {
    const { root, k } = host();
    const before = read(root, 'sys/bus/usb/devices/1-1.2/devnum');
    await k.write('/sys/bus/usb/devices/1-1.2/remove', '1');
    expect(k.plugUsb(1, { port: '1.2', vendor: '1050', product: '0407', manufacturer: 'Yubico' })).toBe('1-1.2');
    expect(read(root, 'sys/bus/usb/devices/1-1.2/idVendor')).toBe('1050');
    expect(Number(read(root, 'sys/bus/usb/devices/1-1.2/devnum'))).toBeGreaterThan(Number(before));
    expect(() => k.plugUsb(1, { port: '3.1', vendor: '1050', product: '0407' })).toThrow(/no hub 1-3/);
  });

  it('a spec with devices below a function that has no driver is refused', () => {
    const spec: HostSpec = { roots: [{ devices: [{ at: '14.0', vendor: '8086', device: 'a36d', class: '0c0330', driver: null, usbBuses: [{ bus: 1, devices: [] }] }] }] };
    expect(() => buildHost(path.join(tempRoot(), 'host'), spec)).toThrow(SpecError);
  });
});
