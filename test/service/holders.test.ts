import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { isHostdevError } from '../../src/core/errors.js';
import { processStartTime } from '../../src/platform/process-alive.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';
import { startFakeQmp, type FakeQmp } from '../support/fake-qmp.js';

const VF0 = '0000:01:10.0' as PciAddress;
const VF1 = '0000:01:10.1' as PciAddress;

describe('holder leases: a domain whose holder is gone is released by the next open', () => {
  let base = '';
  let root = '';
  let child: ChildProcess | null = null;
  let qmp: FakeQmp | null = null;
  let service: HostdevService | null = null;

  const stateDir = (): string => path.join(base, 'state');
  const open = async (): Promise<HostdevService> => {
    service?.close();
    service = await HostdevService.open({ ...simulatedHost(root), stateDir: stateDir() });
    return service;
  };
  const sleeper = async (): Promise<ChildProcess> => {
    const started = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((resolve) => started.once('spawn', resolve));
    return started;
  };
  const killed = async (process: ChildProcess): Promise<void> => {
    const exited = new Promise((resolve) => process.once('exit', resolve));
    process.kill('SIGKILL');
    await exited;
  };

  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-holders-'));
    root = path.join(base, 'host');
    createSimulatedHost(root, { preset: 'sriov-nic' });
  });
  afterEach(async () => {
    service?.close();
    service = null;
    if (child !== null && child.exitCode === null && child.signalCode === null) await killed(child);
    child = null;
    await qmp?.close();
    qmp = null;
    rmSync(base, { recursive: true, force: true });
  });

  it('reads a process start time (field 22 of /proc/PID/stat), none for a pid that does not run', async () => {
    expect(await processStartTime(process.pid)).toMatch(/^\d+$/);
    expect(await processStartTime(2 ** 22 + 7)).toBeNull();
  });

  it('a real child process killed: its domain is released at the next open, with a warning', async () => {
    child = await sleeper();
    const pid = child.pid!;
    let svc = await open();
    await svc.assign({ domain: 'vm1', addresses: [VF0, VF1], holderPid: pid });
    await svc.assign({ domain: 'vm2', addresses: ['0000:01:10.2'] });
    const [held] = (await svc.status()).holders;
    expect(held).toMatchObject({ owner: { hypervisor: 'qemu', vm: 'vm1' }, holder: { kind: 'pid', pid }, alive: true });
    expect((await svc.domains()).map((d) => [d.domain, d.devices.length, d.holder?.alive ?? null])).toEqual([
      ['vm1', 2, true],
      ['vm2', 1, null],
    ]);

    svc = await open();
    expect(svc.holdersEnded).toEqual([]);
    await killed(child);

    svc = await open();
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released])).toEqual([['vm1', [VF0, VF1]]]);
    expect(svc.warnings.join('\n')).toMatch(new RegExp(`holder of domain vm1 .*pid ${pid}, is gone \\(pid ${pid} exited\\): released ${VF0}, ${VF1}`));
    const status = await svc.status();
    expect(status.active.map((e) => `${e.usedBy.vm} ${e.address}`)).toEqual(['vm2 0000:01:10.2']);
    expect(status.holders).toEqual([]);
    expect((await svc.show(VF0)).report.driver).not.toBe('vfio-pci');
  });

  it('a reused pid is not the holder: the same pid with another start time releases the domain', async () => {
    let svc = await open();
    // This test process runs for sure; what a reused pid looks like is faked by recording a start
    // time it does not have (the pid then names another process than the one that was recorded).
    await svc.assign({ domain: 'vm1', addresses: [VF0], holderPid: process.pid });
    svc.close();
    service = null;
    const db = new Database(path.join(stateDir(), 'state.db'));
    db.prepare("UPDATE domain_holder SET start_time = '1' WHERE owner_domain = 'vm1'").run();
    db.close();

    svc = await open();
    expect(svc.holdersEnded).toHaveLength(1);
    expect(svc.holdersEnded[0]!.holder.reason).toMatch(new RegExp(`pid ${process.pid} now belongs to another process .*the holder started at tick 1`));
    expect(svc.holdersEnded[0]!.released).toEqual([VF0]);
    expect((await svc.status()).active).toEqual([]);
  });

  it('a QMP socket that stops answering releases its domain; one that does not answer in time is left alone', async () => {
    qmp = await startFakeQmp(path.join(base, 'vm1.qmp'));
    let svc = await open();
    await svc.assign({ domain: 'vm1', addresses: [VF0], qmp: qmp.socket });
    expect((await svc.status()).holders[0]).toMatchObject({ holder: { kind: 'qmp', socket: qmp.socket }, alive: true });

    // A server that accepts but never greets (QEMU with another client on its monitor): not known.
    await qmp.close();
    qmp = await startFakeQmp(path.join(base, 'vm1.qmp'), { greet: false });
    svc = await open();
    expect(svc.holdersEnded).toEqual([]);
    expect((await svc.status()).holders[0]).toMatchObject({ alive: null });

    await qmp.close();
    qmp = null;
    // Open probes no QMP holder (a slow monitor would hold up every command): status does.
    svc = await open();
    expect(svc.holdersEnded).toEqual([]);
    const status = await svc.status();
    expect(svc.holdersEnded.map((end) => [end.holder.owner.vm, end.released])).toEqual([['vm1', [VF0]]]);
    expect(svc.holdersEnded[0]!.holder.reason).toMatch(/QEMU no longer answers on .*vm1\.qmp/);
    expect(status.active).toEqual([]);
    expect(status.holders).toEqual([]);
  });

  it('refuses a holder that is not there: a pid that does not run, a QMP socket nobody answers on', async () => {
    const svc = await open();
    const noPid = await svc.assign({ domain: 'vm1', addresses: [VF0], holderPid: 2 ** 22 + 7 }).catch((error: unknown) => error);
    expect(isHostdevError(noPid) && noPid.code).toBe('HOSTDEV_USAGE');
    const noQmp = await svc.assign({ domain: 'vm1', addresses: [VF0], qmp: path.join(base, 'none.qmp') }).catch((error: unknown) => error);
    expect(isHostdevError(noQmp) && noQmp.code).toBe('HOSTDEV_QMP');
    expect((await svc.status()).active).toEqual([]);
  });

  it('a dry-run open only says what it would release', async () => {
    child = await sleeper();
    let svc = await open();
    await svc.assign({ domain: 'vm1', addresses: [VF0], holderPid: child.pid! });
    svc.close();
    await killed(child);
    service = await HostdevService.open({ ...simulatedHost(root), stateDir: stateDir(), dryRun: true });
    expect(service.warnings.join('\n')).toMatch(/is gone .*: its devices would be released: 0000:01:10\.0/);
    svc = await open();
    expect(svc.holdersEnded[0]!.released).toEqual([VF0]);
  });
});
