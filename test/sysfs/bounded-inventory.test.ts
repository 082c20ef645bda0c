import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { ChildReader, readInventoryBounded } from '../../src/sysfs/bounded-inventory.js';
import { joinInventory, readInventory, readChildInventory, readParentInventory } from '../../src/sysfs/inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { runCli } from '../support/cli.js';
import { tinyRoot, writeTinyDevices } from '../support/tiny-sysfs.js';

let dir: string | null = null;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

function host(): string {
  dir = mkdtempSync(path.join(os.tmpdir(), 'hostdev-bounded-'));
  const root = path.join(dir, 'host');
  buildHost(root, presets['sriov-nic']!);
  return root;
}

/** A FIFO in place of a file blocks every read of it, as the kernel does while a VM holds a VF
 * whose removal is pending (the PF's sriov_numvfs, the VF's driver_override) or a reset waits. */
function block(layout: SysfsLayout, address: string, file: string): void {
  const target = layout.device(address as never, file);
  rmSync(target);
  execFileSync('mkfifo', [target]);
}

function blockSriovNumvfs(root: string): void {
  const layout = new SysfsLayout(root);
  const pf = readInventory(layout).devices.find((d) => d.sriov !== null)!;
  block(layout, pf.address, 'sriov_numvfs');
}

/** Blocks every file the kernel can hold up: the PF's sriov_numvfs, a VF's driver_override, a config. */
function blockAllLocked(root: string): void {
  const layout = new SysfsLayout(root);
  const devices = readInventory(layout).devices;
  block(layout, devices.find((d) => d.sriov !== null)!.address, 'sriov_numvfs');
  block(layout, devices.find((d) => d.physfn !== null)!.address, 'driver_override');
  block(layout, devices.find((d) => d.physfn === null && d.sriov === null)!.address, 'config');
}

describe('reading the inventory in a bounded child process', () => {
  it('gives exactly what the in-process reader gives', async () => {
    const layout = new SysfsLayout(host());
    expect(await readInventoryBounded(layout, { pciIdsPath: '/nonexistent' })).toEqual(
      JSON.parse(JSON.stringify(readInventory(layout, { pciIdsPath: '/nonexistent' }))),
    );
  });

  it('fails with HOSTDEV_TIMEOUT, and does not hang, when a sysfs read blocks', async () => {
    const root = host();
    blockSriovNumvfs(root);
    const started = Date.now();
    await expect(readInventoryBounded(new SysfsLayout(root), { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'HOSTDEV_TIMEOUT',
    });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('hostdev list exits with the kernel exit code and a hint instead of hanging', () => {
    const root = host();
    blockSriovNumvfs(root);
    const run = runCli(['--root', root, 'list'], { env: { HOSTDEV_READ_TIMEOUT_MS: '500' }, timeoutMs: 10_000 });
    expect(run.code).toBe(6);
    expect(run.stderr).toMatch(/blocked in the kernel/);
    expect(run.stderr).toMatch(/hint: .*VM/);
  });

  it('joins its two halves into what the in-process reader gives on a broken tree, warnings in order', async () => {
    dir = tinyRoot();
    const good = { vendor: '0x8086\n', device: '0x10c9\n', class: '0x020000\n', driver_override: '(null)\n' };
    writeTinyDevices(dir, [
      { address: '0000:00:01.0', files: { ...good, vendor: 'x\n', config: new Uint8Array(10) } },
      { address: '0000:00:02.0', files: { ...good, numa_node: 'lots\n', sriov_totalvfs: '2\n', sriov_numvfs: 'two\n' } },
      { address: '0000:00:03.0', files: { vendor: good.vendor, device: good.device, class: good.class }, dirs: ['driver_override'], links: { driver: '../../../bus/pci/drivers/gone' } },
    ]);
    writeTinyDevices(dir, [{ address: 'junk', files: {} }]);
    const layout = new SysfsLayout(dir);
    const inProcess = readInventory(layout, { pciIdsPath: '/nonexistent' });
    expect(inProcess.warnings.length).toBeGreaterThan(5);
    expect(await readInventoryBounded(layout, { pciIdsPath: '/nonexistent' })).toEqual(JSON.parse(JSON.stringify(inProcess)));
  });

  it('leaves out a function only one half saw (it came or went between the two listings)', () => {
    const layout = new SysfsLayout(host());
    const unlocked = readParentInventory(layout, { names: null });
    const locked = readChildInventory(layout);
    const gone = locked[1]!.address;
    const joined = joinInventory(unlocked, locked.filter((read) => read.address !== gone));
    expect(joined.devices.map((d) => d.address)).toEqual(unlocked.parts.map((p) => p.part.device.address).filter((a) => a !== gone));
  });

  it('does not use a head-start child that reads another root', async () => {
    const layout = new SysfsLayout(host());
    const other = new ChildReader(new SysfsLayout(path.join(dir!, 'elsewhere')));
    expect(await readInventoryBounded(layout, { pciIdsPath: '/nonexistent', started: other })).toEqual(
      JSON.parse(JSON.stringify(readInventory(layout, { pciIdsPath: '/nonexistent' }))),
    );
  });

  it('reads none of the files the kernel can hold up in-process', () => {
    const root = host();
    blockAllLocked(root);
    // In a separate process: were one of them opened here, the open would never return.
    const inventory = new URL('../../dist/sysfs/inventory.js', import.meta.url).href;
    const run = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { readParentInventory } = await import(${JSON.stringify(inventory)});\n` +
          `const { SysfsLayout } = await import(${JSON.stringify(new URL('../../dist/sysfs/paths.js', import.meta.url).href)});\n` +
          `console.log(readParentInventory(new SysfsLayout(${JSON.stringify(root)}), { names: null }).parts.length);`,
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(run.signal, 'the in-process half opened a blocked file').toBeNull();
    expect(Number(run.stdout.trim())).toBeGreaterThan(3);
  });

  it('hostdev list, show and groups exit 6 instead of hanging on a blocked driver_override or config', () => {
    const root = host();
    blockAllLocked(root);
    for (const args of [['list'], ['show', '0000:01:00.0'], ['groups', '--json']]) {
      const run = runCli(['--root', root, ...args], { env: { HOSTDEV_READ_TIMEOUT_MS: '500' }, timeoutMs: 15_000 });
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(6);
      expect(run.stderr).toMatch(/blocked in the kernel/);
    }
  });

  it('a command that fails before reading does not wait for the head-start child', () => {
    const root = host();
    blockAllLocked(root);
    for (const args of [['list', '--no-such-option'], ['show', 'not-an-address']]) {
      const run = runCli(['--root', root, ...args], { timeoutMs: 15_000 });
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(2);
    }
  });
});
