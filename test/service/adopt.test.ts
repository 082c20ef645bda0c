import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { isHostdevError } from '../../src/core/errors.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';

const VF0 = '0000:01:10.0' as PciAddress;
const VF1 = '0000:01:10.1' as PciAddress;
const VF2 = '0000:01:10.2' as PciAddress;

describe('adopt: devices a running VM already holds become its domain\'s, nothing on the host touched', () => {
  let base = '';
  let root = '';
  let service: HostdevService | null = null;
  const open = async (): Promise<HostdevService> => {
    service?.close();
    service = await HostdevService.open({ ...simulatedHost(root), stateDir: path.join(base, 'state') });
    return service;
  };
  const caught = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => null, (error: unknown) => error);

  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-adopt-'));
    root = path.join(base, 'host');
    createSimulatedHost(root, { preset: 'sriov-nic' });
  });
  afterEach(() => {
    service?.close();
    service = null;
    rmSync(base, { recursive: true, force: true });
  });

  it('adopts a detached device and one put on vfio-pci outside hostdev, without a sysfs write; release gives them back', async () => {
    let svc = await open();
    await svc.detach({ device: VF0 });
    await svc.detach({ device: VF1 });
    const hostDriver = (await svc.show(VF2)).report.driver;
    // VF1 as a VM manager that bound it by hand left it: on vfio-pci, in no table.
    svc.close();
    service = null;
    const db = new Database(path.join(base, 'state', 'state.db'));
    db.prepare("DELETE FROM inactive WHERE key = 'pci:0000:01:10.1'").run();
    db.close();
    svc = await open();

    const dry = await svc.adopt({ domain: 'vm1', addresses: [VF0, VF1], dryRun: true });
    expect(dry.dryRun).toBe(true);
    expect((await svc.status()).active).toEqual([]);

    const report = await svc.adopt({ domain: 'vm1', addresses: [VF0, VF1], holderPid: process.pid });
    expect(report.plan.groups).toEqual([]);
    expect(report.changes.map((c) => c.kind === 'set-active' && [c.entry.address, c.entry.usedBy.vm, c.entry.stubDriver, c.entry.originalDriver])).toEqual([
      [VF0, 'vm1', 'vfio-pci', hostDriver],
      [VF1, 'vm1', 'vfio-pci', null],
    ]);
    const status = await svc.status();
    expect(status.active.map((e) => e.address)).toEqual([VF0, VF1]);
    expect(status.inactive).toEqual([]);
    expect(status.holders[0]).toMatchObject({ owner: { vm: 'vm1' }, holder: { kind: 'pid', pid: process.pid }, alive: true });
    expect((await svc.adopt({ domain: 'vm1', addresses: [VF0] })).notes).toEqual([`${VF0} is held by driver qemu, domain vm1 already; nothing to do`]);

    const released = await svc.release({ domain: 'vm1' });
    expect(released.released).toEqual([VF0, VF1]);
    // VF0 was detached by hand (unmanaged: the stored entry wins), so it stays on its stub, inactive;
    // VF1 came with no entry and is managed: the kernel probes its host driver again.
    expect((await svc.show(VF0)).report.driver).toBe('vfio-pci');
    expect((await svc.status()).inactive.map((e) => e.address)).toEqual([VF0]);
    expect((await svc.show(VF1)).report.driver).toBe(hostDriver);
  });

  it('refuses a device of another domain and one on its host driver, all or nothing', async () => {
    const svc = await open();
    await svc.assign({ domain: 'vm2', addresses: [VF1] });
    await svc.detach({ device: VF0 });

    const owned = await caught(svc.adopt({ domain: 'vm1', addresses: [VF0, VF1] }));
    expect(isHostdevError(owned) && owned.code).toBe('HOSTDEV_IN_USE');
    expect(isHostdevError(owned) && owned.message).toMatch(/0000:01:10\.1 is in use by driver qemu, domain vm2/);

    const onHost = await caught(svc.adopt({ domain: 'vm1', addresses: [VF0, VF2] }));
    expect(isHostdevError(onHost) && onHost.code).toBe('HOSTDEV_NOT_ON_STUB');
    expect(isHostdevError(onHost) && onHost.exitCode).toBe(4);
    expect(isHostdevError(onHost) && onHost.message).toMatch(/0000:01:10\.2 is on its host driver \S+, not on a stub driver/);
    expect(isHostdevError(onHost) && onHost.hint).toMatch(/hostdev assign --domain vm1 0000:01:10\.2/);

    const status = await svc.status();
    expect(status.active.map((e) => `${e.usedBy.vm} ${e.address}`)).toEqual(['vm2 0000:01:10.1']);
    expect(status.inactive.map((e) => e.address)).toEqual([VF0]);
  });
});
