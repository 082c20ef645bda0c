import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { isHostdevError } from '../../src/core/errors.js';
import { QmpClient } from '../../src/qmp/qmp-client.js';
import { readVmSlots } from '../../src/qmp/vm-slots.js';
import { qemuMissing, startQemu, type RunningQemu } from '../support/qemu.js';

if (qemuMissing !== null) console.warn(`skipping the QMP tests against a real QEMU: ${qemuMissing}`);

async function caught(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (error: unknown) => error,
  );
}

describe.skipIf(qemuMissing !== null)('QmpClient against a real QEMU', () => {
  let qemu: RunningQemu;
  let client: QmpClient | null = null;
  beforeEach(async () => {
    qemu = await startQemu({ rootPorts: ['rp1', 'rp2'] });
  });
  afterEach(async () => {
    client?.close();
    client = null;
    await qemu.stop();
  });

  it('greets, negotiates and runs commands; QEMU refusals carry its error class', async () => {
    client = await QmpClient.connect(qemu.socket);
    expect(client.version.major).toBeGreaterThanOrEqual(7);
    const status = await client.execute<{ status: string }>('query-status');
    expect(status.status).toBe('prelaunch');
    const refused = await caught(client.execute('device_del', { id: 'no-such-device' }));
    expect(isHostdevError(refused) && refused.code).toBe('HOSTDEV_QMP');
    expect(isHostdevError(refused) && refused.details['qmpClass']).toBe('DeviceNotFound');
    expect(isHostdevError(refused) && refused.exitCode).toBe(10);
  });

  it('keeps events from the mark on, so DEVICE_DELETED that comes at once is not missed', async () => {
    client = await QmpClient.connect(qemu.socket);
    await client.execute('device_add', { driver: 'e1000e', id: 'nic1', bus: 'rp1' });
    const mark = client.eventMark();
    await client.execute('device_del', { id: 'nic1' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const event = await client.waitForEvent((e) => e.event === 'DEVICE_DELETED' && e.data['device'] === 'nic1', { since: mark, timeoutMs: 5_000 });
    expect(event?.data['device']).toBe('nic1');
    const none = await client.waitForEvent((e) => e.event === 'DEVICE_DELETED' && e.data['device'] === 'nic1', { since: client.eventMark(), timeoutMs: 200 });
    expect(none).toBeNull();
  });

  it('reads the machine, the named root ports with their occupancy, and the device ids through QOM', async () => {
    client = await QmpClient.connect(qemu.socket);
    await client.execute('device_add', { driver: 'e1000e', id: 'hostdev-0000_01_10_0', bus: 'rp2' });
    const slots = await readVmSlots(client);
    expect(slots.machine).toBe('q35');
    expect([...slots.rootPorts].sort((a, b) => a.id.localeCompare(b.id))).toEqual([
      { id: 'rp1', occupied: false },
      { id: 'rp2', occupied: true },
    ]);
    expect(slots.deviceIds.has('hostdev-0000_01_10_0')).toBe(true);
    expect(slots.deviceIds.has('hostdev-0000_01_10_1' as PciAddress)).toBe(false);
  });

  it('says a QEMU that has quit closed its monitor, and fails pending commands instead of hanging', async () => {
    client = await QmpClient.connect(qemu.socket);
    await client.execute('quit').catch(() => undefined);
    const after = await caught(client.execute('query-status'));
    expect(isHostdevError(after) && after.code).toBe('HOSTDEV_QMP');
    expect(isHostdevError(after) && after.message).toMatch(/closed its monitor|was closed/);
  });
});

describe('QmpClient bounds and refusals without QEMU', () => {
  let dir = '';
  let server: Server | null = null;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hostdev-qmp-'));
  });
  afterEach(async () => {
    await new Promise((resolve) => (server === null ? resolve(null) : server.close(resolve)));
    server = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('names a socket that is not there', async () => {
    const error = await caught(QmpClient.connect(path.join(dir, 'none.sock')));
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_QMP');
    expect(isHostdevError(error) && error.message).toMatch(/cannot reach QEMU's monitor at .*none\.sock: ENOENT/);
  });

  it('ends the wait for a greeting that never comes (a second client of a busy QMP socket) at its bound', async () => {
    const socket = path.join(dir, 'silent.sock');
    server = createServer(() => undefined).listen(socket);
    await new Promise((resolve) => server!.once('listening', resolve));
    const started = Date.now();
    const error = await caught(QmpClient.connect(socket, { timeoutMs: 300 }));
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(isHostdevError(error) && error.message).toMatch(/did not greet within 300 ms/);
    expect(isHostdevError(error) && error.hint).toMatch(/one client per QMP socket/);
  });

  it('refuses a socket that speaks something else', async () => {
    const socket = path.join(dir, 'serial.sock');
    server = createServer((connection) => connection.end('login: \n')).listen(socket);
    await new Promise((resolve) => server!.once('listening', resolve));
    const error = await caught(QmpClient.connect(socket));
    expect(isHostdevError(error) && error.message).toMatch(/does not speak QMP/);
  });
});
