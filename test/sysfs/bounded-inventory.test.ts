import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { readInventoryBounded } from '../../src/sysfs/bounded-inventory.js';
import { readInventory } from '../../src/sysfs/inventory.js';
import { SysfsLayout } from '../../src/sysfs/paths.js';
import { runCli } from '../support/cli.js';

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

/** A FIFO in place of the PF's sriov_numvfs blocks every read of it, as the kernel does while a
 * VM holds a VF whose removal is pending. */
function blockSriovNumvfs(root: string): void {
  const layout = new SysfsLayout(root);
  const pf = readInventory(layout).devices.find((d) => d.sriov !== null)!;
  const file = layout.device(pf.address, 'sriov_numvfs');
  rmSync(file);
  execFileSync('mkfifo', [file]);
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
});
