import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleUnavailable } from '../../src/manager/kernel-errors.js';
import { createSimulatedHost, SimKernel } from '../../src/sim-entry.js';
import { FsKernelPort, ModuleLoadError } from '../../src/sysfs/kernel-port.js';

// A module that cannot be loaded says why (modprobe's words, or why none was tried), not ENOENT.
const base = mkdtempSync(path.join(tmpdir(), 'hostdev-kernel-port-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

async function failureOf(load: Promise<void>): Promise<unknown> {
  return load.then(
    () => null,
    (error: unknown) => error,
  );
}

describe('loading a module', () => {
  it('under a root other than / is refused with the reason, never run', async () => {
    const error = await failureOf(new FsKernelPort(base).loadModule('vfio-pci'));
    expect(error).toBeInstanceOf(ModuleLoadError);
    expect((error as ModuleLoadError).reason).toBe(`modules are loaded on the real host only, not under --root ${base}`);
  });

  it('of a driver the simulated host does not have says so, and the catalog error carries it', async () => {
    const root = path.join(base, 'host');
    createSimulatedHost(root, { preset: 'sriov-nic' });
    const error = await failureOf(new SimKernel(root).loadModule('e1000e'));
    expect(error).toBeInstanceOf(ModuleLoadError);
    const catalog = moduleUnavailable('e1000e', 'e1000e', error);
    expect(catalog.code).toBe('HOSTDEV_DRIVER_UNAVAILABLE');
    expect(catalog.message).toBe(
      'driver e1000e is not available: loading module e1000e failed: modprobe: FATAL: Module e1000e not found (the simulated host has no such driver)',
    );
  });
});
