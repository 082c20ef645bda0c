import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { moduleUnavailable } from '../../src/manager/kernel-errors.js';
import { errnoFromText } from '../../src/platform/errno-names.js';
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
    expect((error as ModuleLoadError).errno).toBe('ENOTSUP');
    expect(moduleUnavailable('vfio-pci', 'vfio-pci', error).details.errno).toBe('ENOTSUP');
  });

  it('of a driver the simulated host does not have says so, and the catalog error carries it', async () => {
    const root = path.join(base, 'host');
    createSimulatedHost(root, { preset: 'sriov-nic' });
    const error = await failureOf(new SimKernel(root).loadModule('e1000e'));
    expect(error).toBeInstanceOf(ModuleLoadError);
    const catalog = moduleUnavailable('e1000e', 'e1000e', error);
    expect(catalog.code).toBe('HOSTDEV_DRIVER_UNAVAILABLE');
    expect(catalog.details.errno).toBe('ENOENT');
    expect(catalog.message).toBe(
      'driver e1000e is not available: loading module e1000e failed: modprobe: FATAL: Module e1000e not found (the simulated host has no such driver)',
    );
  });
});

describe('the errno a tool names in words', () => {
  it("is read from modprobe's and netlink's strerror text, and is null when the text names none", () => {
    expect(errnoFromText("modprobe: ERROR: could not insert 'vfio_pci': Operation not permitted")).toBe('EPERM');
    expect(errnoFromText("modprobe: ERROR: could not insert 'igb': No such device")).toBe('ENODEV');
    expect(errnoFromText('RTNETLINK answers: Invalid argument')).toBe('EINVAL');
    expect(errnoFromText('modprobe: FATAL: Module nosuch not found in directory /lib/modules/6.1.0')).toBe(null);
  });
});
