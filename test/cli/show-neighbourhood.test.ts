import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { showReport } from '../../src/manager/inventory-reports.js';
import { buildHost } from '../../src/sim/builder.js';
import { generateSpec, presets } from '../../src/sim/presets.js';
import { readInventoryBounded, readNeighbourhoodBounded } from '../../src/sysfs/bounded-inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { runCli } from '../support/cli.js';

// `show ADDRESS` reads the function, the functions above it and its IOMMU group, not the whole
// host: what it prints is what it printed from the whole inventory, and a function elsewhere whose
// reads the kernel holds up does not hold up `show` of another.
let base: string;
beforeAll(() => {
  base = fs.mkdtempSync(path.join(tmpdir(), 'hostdev-show-around-'));
});
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

describe('show reads the neighbourhood of its device', () => {
  const hosts = [...Object.keys(presets).map((name) => [name, presets[name]!] as const), ['generated 96', generateSpec(96)] as const];
  it.each(hosts)('gives the report of the whole inventory for every function of %s', async (name, spec) => {
    const root = path.join(base, name.replace(/\W/g, '-'));
    buildHost(root, spec);
    const layout = new SysfsLayout(root);
    const whole = await readInventoryBounded(layout, { pciIdsPath: '/nonexistent' });
    expect(whole.devices.length).toBeGreaterThan(0);
    for (const device of whole.devices) {
      const around = await readNeighbourhoodBounded(layout, device.address, { pciIdsPath: '/nonexistent' });
      expect(around.devices.length).toBeLessThanOrEqual(whole.devices.length);
      expect(showReport(around, device.address, null, null), device.address).toEqual(showReport(whole, device.address, null, null));
    }
  });

  it('is not held up by a function outside it (list is, up to its bound)', () => {
    const root = path.join(base, 'held');
    expect(runCli(['sim', 'create', root, '--preset', 'workstation']).code).toBe(0);
    const list = JSON.parse(runCli(['--root', root, 'list', '--json']).stdout) as Array<{ address: string; iommuGroup: number | null; parent: string | null }>;
    const shown = list.find((device) => device.iommuGroup !== null && device.parent !== null)!;
    const other = list.find(
      (device) => device.iommuGroup !== shown.iommuGroup && device.address !== shown.parent && device.address !== shown.address,
    )!;
    // A FIFO with no writer: opening it for reading waits, as a driver_override under a held device lock does.
    const file = path.join(fs.realpathSync(path.join(root, 'sys/bus/pci/devices', other.address)), 'driver_override');
    fs.rmSync(file);
    execFileSync('mkfifo', [file]);
    const env = { HOSTDEV_READ_TIMEOUT_MS: '1500', HOSTDEV_STALL_MS: '60000' };
    const held = runCli(['--root', root, 'list', '--json'], { env });
    expect(held.code, held.stderr).toBe(6);
    const show = runCli(['--root', root, 'show', '--json', shown.address], { env });
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)).toMatchObject({ address: shown.address, iommuGroup: shown.iommuGroup });
  });
});
