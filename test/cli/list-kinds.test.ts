import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { readNonPciInventory } from '../../src/sysfs/nonpci-inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { jsonOf, runCli } from '../support/cli.js';
import { cleanupRoots, tempRoot } from '../sim/helpers.js';

afterAll(cleanupRoots);

function host(preset: string): string {
  const root = path.join(tempRoot('hostdev-kinds-'), 'host');
  buildHost(root, presets[preset]!);
  return root;
}

const virt = host('virt-host');
const MDEV = 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01';

interface Entry {
  readonly key: string;
  readonly kind?: string;
  readonly owner?: unknown;
  readonly table?: unknown;
  readonly [field: string]: unknown;
}

function list(root: string, ...args: string[]): Entry[] {
  const run = runCli(['--root', root, '--simulate', 'list', '--json', ...args]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return jsonOf<Entry[]>(run);
}

describe('hostdev list --kind', () => {
  it('the default is pci: `list` and `list --kind pci` print the same, text and JSON', () => {
    const root = host('workstation');
    for (const extra of [[], ['--json']]) {
      const plain = runCli(['--root', root, 'list', ...extra]);
      const pci = runCli(['--root', root, 'list', '--kind', 'pci', ...extra]);
      expect(pci).toEqual(plain);
      expect(plain.code).toBe(0);
    }
  });

  it('each kind lists its devices with their keys, in key order', () => {
    expect(list(virt, '--kind', 'usb').map((d) => d.key)).toEqual(['usb:1-1', 'usb:1-1.2', 'usb:1-1.3', 'usb:1-2', 'usb:1-4']);
    expect(list(virt, '--kind', 'mdev').map((d) => d.key)).toEqual([MDEV]);
    expect(list(virt, '--kind', 'nvme').map((d) => d.key)).toEqual(['nvme:0000:01:00.0/1', 'nvme:0000:01:00.0/2']);
    expect(list(virt, '--kind', 'scsi').map((d) => d.key)).toEqual(['scsi:2:0:0:0', 'scsi:2:0:1:0']);
  });

  it('entries carry what sysfs says, with owner and table fields', () => {
    const [yubikey] = list(virt, '--kind', 'usb').filter((d) => d.key === 'usb:1-1.2');
    expect(yubikey).toMatchObject({ kind: 'usb', bus: 1, port: '1.2', vendor: '1050', product: '0407', manufacturerName: 'Yubico', controller: '0000:00:14.0', interfaceDrivers: ['usbhid', 'usbhid', null], owner: null, table: null });
    expect(list(virt, '--kind', 'mdev')[0]).toMatchObject({ parent: '0000:00:02.0', type: 'i915-GVTg_V5_8', deviceApi: 'vfio-pci', driver: 'intel_vgpu_mdev' });
    expect(list(virt, '--kind', 'nvme')[1]).toMatchObject({ controller: '0000:01:00.0', nsid: 2, blockDevice: 'nvme0n2', sectors: 953_525_168 });
    expect(list(virt, '--kind', 'scsi')[1]).toMatchObject({ type: 1, typeName: 'tape', vendor: 'HP', model: 'Ultrium 6-SCSI', sg: 'sg1', driver: 'st', adapter: '0000:02:00.0' });
  });

  it('all: every PCI function (kind "pci" after its key) and then the other kinds', () => {
    const all = list(virt, '--kind', 'all');
    const pci = list(virt);
    expect(all.filter((d) => d.kind === 'pci').map((d) => d.key)).toEqual(pci.map((d) => d.key));
    expect(Object.keys(all[0]!).slice(0, 3)).toEqual(['key', 'kind', 'address']);
    expect(all.filter((d) => d.kind !== 'pci').map((d) => d.kind)).toEqual(['mdev', 'usb', 'usb', 'usb', 'usb', 'usb', 'nvme', 'nvme', 'scsi', 'scsi']);
  });

  it('a host without these devices lists none of them; text says so', () => {
    const root = host('sriov-nic');
    expect(list(root, '--kind', 'usb')).toEqual([]);
    const run = runCli(['--root', root, 'list', '--kind', 'scsi']);
    expect(run.stdout.trim()).toBe('No scsi devices.');
  });

  it('the mdev text lists the parents\' types with their available instances, as mdevctl types does', () => {
    const run = runCli(['--root', virt, 'list', '--kind', 'mdev']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^0000:00:02\.0 +i915-GVTg_V5_4 +GVTg_V5_4 +2 +vfio-pci$/m);
    expect(run.stdout).toMatch(/^0000:00:02\.0 +i915-GVTg_V5_8 +GVTg_V5_8 +3 +vfio-pci$/m);
  });

  it('an unknown kind, or --class with another kind, is a usage error', () => {
    const bad = runCli(['--root', virt, 'list', '--kind', 'firewire', '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr).error.code).toBe('HOSTDEV_USAGE');
    expect(runCli(['--root', virt, 'list', '--kind', 'usb', '--class', 'net']).code).toBe(2);
  });
});

describe('hostdev show KEY for each kind', () => {
  it.each([
    ['usb:1-1.3', { kind: 'usb', serial: '4C530001230915109491' }],
    [MDEV, { kind: 'mdev', iommuGroup: expect.any(Number) }],
    ['nvme:0000:01:00.0/1', { kind: 'nvme', instance: 'nvme0' }],
    ['scsi:2:0:0:0', { kind: 'scsi', blockDevice: 'sda', typeName: 'disk' }],
  ])('%s', (key, fields) => {
    const run = runCli(['--root', virt, 'show', key, '--json']);
    expect(run.code).toBe(0);
    const report = jsonOf<{ device: Entry; mdevType: unknown }>(run);
    expect(report.device).toMatchObject({ key, ...fields });
    const text = runCli(['--root', virt, 'show', key]);
    expect(text.stdout.split('\n')[0]).toMatch(new RegExp(`^${key.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  });

  it('an mdev shows its type, with the instances its parent has left', () => {
    const report = jsonOf<{ mdevType: { id: string; availableInstances: number; devices: string[] } }>(runCli(['--root', virt, 'show', MDEV, '--json']));
    expect(report.mdevType).toMatchObject({ id: 'i915-GVTg_V5_8', availableInstances: 3, devices: [MDEV.slice(5)] });
  });

  it('a key the host does not have is HOSTDEV_DEVICE_NOT_FOUND (exit 3) naming it', () => {
    const run = runCli(['--root', virt, 'show', 'usb:3-1', '--json']);
    expect(run.code).toBe(3);
    const error = JSON.parse(run.stderr).error;
    expect(error.code).toBe('HOSTDEV_DEVICE_NOT_FOUND');
    expect(error.message).toContain('usb:3-1');
  });
});

describe('the reader of these kinds', () => {
  it('reads the same as a copy of the host made by sim snapshot', async () => {
    const copy = path.join(tempRoot('hostdev-kinds-'), 'copy');
    execFileSync(process.execPath, [path.resolve('dist/cli/bin.js'), '--root', virt, 'sim', 'snapshot', copy], { stdio: 'ignore' });
    const kinds = ['usb', 'mdev', 'nvme', 'scsi'] as const;
    const strip = (inventory: Awaited<ReturnType<typeof readNonPciInventory>>) => ({ ...inventory, usb: inventory.usb.map(({ devnum: _, ...rest }) => rest) });
    expect(strip(await readNonPciInventory(new SysfsLayout(copy), kinds, 5_000))).toEqual(strip(await readNonPciInventory(new SysfsLayout(virt), kinds, 5_000)));
  });

  it('a file it cannot read is a warning naming it, the rest is read', async () => {
    const root = host('virt-host');
    const file = path.join(root, 'sys/bus/scsi/devices/2:0:1:0/model');
    fs.rmSync(file);
    fs.mkdirSync(file);
    const inventory = await readNonPciInventory(new SysfsLayout(root), ['scsi'], 5_000);
    expect(inventory.scsi.map((d) => d.model)).toEqual(['ST4000NM0035-1V4', null]);
    expect(inventory.warnings).toEqual(['/sys/devices/pci0000:00/0000:00:1c.4/0000:02:00.0/host2/target2:0:1/2:0:1:0/model: cannot read it: EISDIR']);
  });

  it('a read the kernel holds up ends at the bound with HOSTDEV_TIMEOUT naming the file, without blocking the event loop', async () => {
    const root = host('virt-host');
    const file = path.join(root, 'sys/bus/usb/devices/1-1.2/idVendor');
    fs.rmSync(file);
    execFileSync('mkfifo', [file]);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    try {
      await expect(readNonPciInventory(new SysfsLayout(root), ['usb'], 300)).rejects.toMatchObject({
        code: 'HOSTDEV_TIMEOUT',
        details: { file: '/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2/idVendor' },
      });
    } finally {
      clearInterval(ticker);
      // let the blocked open in the thread pool go
      fs.writeFileSync(file, '1050\n');
    }
    expect(ticks).toBeGreaterThan(5);
  });
});
