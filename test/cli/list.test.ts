import { readdirSync, rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { PciDevice } from '../../src/core/device.js';
import { jsonOf, runCli } from '../support/cli.js';
import { lspciDisagreements } from '../support/lspci-agreement.js';
import { hasLspci, parseLspci, runLspci } from '../support/lspci.js';
import { endpointFiles, tinyDriver, tinyGroup, tinyRoot, writeTinyDevices } from '../support/tiny-sysfs.js';

const roots: string[] = [];
afterEach(() => {
  for (const dir of roots.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A bridge, a NIC on igb and an unbound NVMe, one IOMMU group each. */
function smallHost(): string {
  const root = tinyRoot();
  roots.push(root);
  tinyDriver(root, 'igb');
  tinyDriver(root, 'pcieport');
  for (const group of [0, 1, 2]) tinyGroup(root, group);
  writeTinyDevices(root, [
    {
      address: '0000:00:01.0',
      files: endpointFiles('8086', 'a110', '060400'),
      links: { driver: '../../../bus/pci/drivers/pcieport', iommu_group: '../../../kernel/iommu_groups/0' },
    },
    {
      address: '0000:01:00.0',
      parent: '0000:00:01.0',
      files: endpointFiles('8086', '1533', '020000'),
      links: { driver: '../../../../bus/pci/drivers/igb', iommu_group: '../../../../kernel/iommu_groups/1' },
    },
    {
      address: '0000:02:00.0',
      files: endpointFiles('144d', 'a808', '010802'),
      links: { iommu_group: '../../../kernel/iommu_groups/2' },
    },
  ]);
  return root;
}

describe('hostdev list on this machine (read-only /sys)', () => {
  it.runIf(hasLspci())('agrees with lspci -Dnnk on every device', () => {
    const run = runCli(['list', '--json']);
    expect(run.code).toBe(0);
    const devices = jsonOf<PciDevice[]>(run);
    expect(devices).toHaveLength(readdirSync('/sys/bus/pci/devices').length);
    expect(lspciDisagreements(devices, runLspci())).toEqual([]);
  });

  it('says that IOMMU is off in the table, and --json still prints the array', () => {
    const table = runCli(['list']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ADDRESS\s+CLASS\s+VENDOR:DEVICE\s+NAME\s+DRIVER\s+IOMMU\s+SR-IOV(\s+OWNER)?$/);
    expect(table.stdout).toContain('IOMMU is off');
    const json = runCli(['--json', 'list']);
    expect(Array.isArray(jsonOf(json))).toBe(true);
    expect(json.stdout).not.toContain('IOMMU is off');
    const groups = runCli(['groups']);
    expect(groups.stdout).toContain('IOMMU is off');
    expect(jsonOf(runCli(['groups', '--json']))).toEqual([]);
  });
});

describe('hostdev list filters and shape', () => {
  it('prints every contract field', () => {
    const root = smallHost();
    const devices = jsonOf<Array<Record<string, unknown>>>(runCli(['list', '--json', '--root', root]));
    expect(Object.keys(devices[0]!)).toEqual(
      expect.arrayContaining([
        'address', 'vendor', 'device', 'subsystemVendor', 'subsystemDevice', 'class', 'progIf', 'revision',
        'vendorName', 'deviceName', 'driver', 'driverOverride', 'iommuGroup', 'numaNode', 'headerType',
        'parent', 'physfn', 'virtfns', 'sriov', 'netdevs', 'resetMethods',
      ]),
    );
    expect(devices[1]).toMatchObject({ address: '0000:01:00.0', parent: '0000:00:01.0', iommuGroup: 1, driver: 'igb' });
  });

  it('filters by class name or code and by driver', () => {
    const root = smallHost();
    const addresses = (...args: string[]): string[] =>
      jsonOf<PciDevice[]>(runCli(['--root', root, 'list', '--json', ...args])).map((d) => d.address);
    expect(addresses('--class', 'net')).toEqual(['0000:01:00.0']);
    expect(addresses('--class', 'storage')).toEqual(['0000:02:00.0']);
    expect(addresses('--class', 'bridge')).toEqual(['0000:00:01.0']);
    expect(addresses('--class', '0108')).toEqual(['0000:02:00.0']);
    expect(addresses('--class', 'display')).toEqual([]);
    expect(addresses('--driver', 'igb')).toEqual(['0000:01:00.0']);
    expect(addresses('--driver', 'igb', '--class', 'storage')).toEqual([]);
    const bad = runCli(['--root', root, 'list', '--class', 'toaster']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown device class "toaster"');
  });

  it('lists a broken device with nulls and a warning on stderr, and the others', () => {
    const root = smallHost();
    writeTinyDevices(root, [{ address: '0000:03:00.0', files: { class: 'garbage' }, links: { driver: '../../../bus/pci/drivers/gone' } }]);
    const run = runCli(['--root', root, 'list', '--json']);
    expect(run.code).toBe(0);
    const devices = jsonOf<PciDevice[]>(run);
    expect(devices.map((d) => d.address)).toEqual(['0000:00:01.0', '0000:01:00.0', '0000:02:00.0', '0000:03:00.0']);
    expect(devices[3]).toMatchObject({ vendor: null, class: null, driver: null, vendorName: null });
    expect(run.stderr).toContain('warning: 0000:03:00.0: no vendor file');
    expect(run.stderr).toContain('warning: 0000:03:00.0: the driver link points at a missing driver');
    const table = runCli(['--root', root, 'list']);
    expect(table.stdout).toMatch(/0000:03:00\.0\s+-\s+\?{4}:\?{4}\s+-\s+-\s+-\s+-/);
  });

  it('gives null names and one warning without pci.ids', () => {
    const root = smallHost();
    const run = runCli(['--root', root, 'list', '--json'], { env: { HOSTDEV_PCI_IDS: `${root}/none` } });
    expect(jsonOf<PciDevice[]>(run).every((d) => d.vendorName === null && d.deviceName === null)).toBe(true);
    expect(run.stderr.trim().split('\n')).toEqual([expect.stringContaining('no PCI ID database')]);
  });
});

describe('addresses at the CLI', () => {
  it.each(['0000:01:00.0', '01:00.0', 'pci_0000_01_00_0', '0000:01:00.0'.toUpperCase()])('show accepts %s', (input) => {
    const root = smallHost();
    const run = runCli(['--root', root, 'show', input, '--json']);
    expect(run.code).toBe(0);
    expect(jsonOf<{ address: string }>(run).address).toBe('0000:01:00.0');
  });

  it.each(['../../etc/passwd', '/sys/bus/pci/devices/0000:01:00.0', '0000:01:00.0/..', '01:00.8', '1:0.0', '0000:01:00.0 ', 'eth0', ''])(
    'show refuses %j with exit code 2',
    (input) => {
      const run = runCli(['--root', smallHost(), 'show', input]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('is not a PCI address');
    },
  );

  it('show says a missing device is not found (exit 3)', () => {
    const run = runCli(['--root', smallHost(), 'show', '05:00.0']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('0000:05:00.0 not found');
  });
});

describe('the lspci parser', () => {
  it('reads classes, ids, revisions, prog-if and the kernel driver', () => {
    const parsed = parseLspci(
      [
        '0000:00:00.0 Host bridge [0600]: Intel Corporation Device [8086:0d57]',
        '0000:00:1f.2 SATA controller [0106]: Intel Corporation 82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode] [8086:2922] (rev 02) (prog-if 01 [AHCI 1.0])',
        '\tSubsystem: Red Hat, Inc. QEMU Virtual Machine [1af4:1100]',
        '\tKernel driver in use: ahci',
        '\tKernel modules: ahci',
      ].join('\n'),
    );
    expect(parsed).toEqual([
      { address: '0000:00:00.0', class: '0600', vendor: '8086', device: '0d57', revision: null, progIf: null, driver: null },
      { address: '0000:00:1f.2', class: '0106', vendor: '8086', device: '2922', revision: '02', progIf: '01', driver: 'ahci' },
    ]);
  });
});
