import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventJson, OperationRecordJson } from '../../src/daemon/schemas.js';
import { isBlocked, releaseBlocked, writeFaultsFile } from '../../src/sim/faults.js';
import { background, killBackgroundAfterEach, waitFor } from '../support/background.js';
import { CLI_BIN } from '../support/cli.js';
import { cleanUpAfterEach, curl, daemonHost, daemonProcess, type DaemonHost } from './daemon-host.js';

killBackgroundAfterEach();
cleanUpAfterEach();

const VF = '0000:01:10.0';
const PF = '0000:01:00.0';
const HOLD = 'daemon-hold';

/** Starts an assign whose drivers_probe write blocks in the simulated kernel; resolves once it is blocked. */
async function blockedAssign(host: DaemonHost): Promise<OperationRecordJson> {
  writeFaultsFile(host.root, [{ action: 'block', match: 'drivers_probe', id: HOLD }]);
  const started = await curl(host.socket, 'POST', '/v1/assignments?wait=100', { domain: 'vm1', devices: [VF] });
  expect(started.status, started.body).toBe(202);
  await waitFor(() => isBlocked(host.root, HOLD), 15_000);
  return started.json<OperationRecordJson>();
}

describe('the daemon as a process', () => {
  it('SIGTERM waits for the operation under way, then exits 0; the next daemon reports it completed', async () => {
    const host = daemonHost();
    const daemon = await daemonProcess(host);
    const op = await blockedAssign(host);
    // The journal names the operation by the id the client got.
    const db = new Database(path.join(host.stateDir, 'state.db'), { readonly: true });
    const journal = db.prepare('SELECT DISTINCT op_id FROM journal').all() as Array<{ op_id: string }>;
    db.close();
    expect(journal.map((row) => row.op_id)).toEqual([op.id]);
    daemon.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(daemon.finished()).toBe(false);
    releaseBlocked(host.root, HOLD);
    const exit = await daemon.done;
    expect(exit.code, exit.stderr).toBe(0);
    const lines = exit.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ operation: op.id, kind: 'assign', outcome: 'completed', devices: [`pci:${VF}`], owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } }));
    expect(lines.at(-1)).toMatchObject({ msg: 'hostdev daemon stopped' });

    await daemonProcess(host);
    const after = await curl(host.roSocket, 'GET', `/v1/operations/${op.id}`);
    expect(after.json<OperationRecordJson>()).toMatchObject({ id: op.id, state: 'completed' });
  });

  it('kill -9 mid-operation, restart: recovery rolls it back, the operation is failed (never lost), events resume with since', async () => {
    const host = daemonHost();
    const first = await daemonProcess(host);
    const since = (await curlEvents(host)).at(-1)?.seq ?? 0;
    const op = await blockedAssign(host);
    first.child.kill('SIGKILL');
    await first.done;
    expect(existsSync(host.socket)).toBe(true);

    await daemonProcess(host);
    const after = await curl(host.roSocket, 'GET', `/v1/operations/${op.id}/wait?timeout=1000`);
    expect(after.json<OperationRecordJson>()).toMatchObject({
      id: op.id,
      state: 'failed',
      error: { code: 'HOSTDEV_INTERRUPTED', details: { recovered: [expect.objectContaining({ address: VF, direction: 'rolled-back', outcome: 'ok' })] } },
    });
    const device = await curl(host.roSocket, 'GET', `/v1/devices/pci:${VF}`);
    expect(device.json()).toMatchObject({ driver: 'igbvf', owner: null, table: null });
    const resumed = await curlEvents(host, since);
    expect(resumed.map((event) => [event.type, event.action, event.key])).toEqual(
      expect.arrayContaining([
        ['recovery', 'rolled-back', `pci:${VF}`],
        ['operation', 'end', `pci:${VF}`],
      ]),
    );
    expect(resumed.every((event) => event.seq > since)).toBe(true);
  });

  it('kill -9 during a vf set-count (wire kind sriov), restart: recovery rolls it forward, the operation is completed', async () => {
    const host = daemonHost();
    const first = await daemonProcess(host);
    writeFaultsFile(host.root, [{ action: 'block', match: 'sriov_numvfs', id: HOLD }]);
    const started = await curl(host.socket, 'PUT', `/v1/devices/pci:${PF}/sriov?wait=100`, { numVfs: 1 });
    expect(started.status, started.body).toBe(202);
    const op = started.json<OperationRecordJson>();
    expect(op.kind).toBe('sriov');
    await waitFor(() => isBlocked(host.root, HOLD), 15_000);
    first.child.kill('SIGKILL');
    await first.done;

    await daemonProcess(host);
    const after = await curl(host.roSocket, 'GET', `/v1/operations/${op.id}/wait?timeout=1000`);
    expect(after.json<OperationRecordJson>()).toMatchObject({
      id: op.id,
      kind: 'sriov',
      state: 'completed',
      result: { recovered: [expect.objectContaining({ address: PF, operation: 'vf-set-count', direction: 'rolled-forward', outcome: 'ok' })] },
    });
  });

  it('takes its sockets from systemd socket activation (one name for both, as hostdev.socket passes them: the path tells the ro one)', async () => {
    const host = daemonHost();
    const activate = background('systemd-socket-activate', [
      '-l', host.socket,
      '-l', host.roSocket,
      '--fdname=hostdev:hostdev',
      process.execPath, CLI_BIN, '--root', host.root, '--state-dir', host.stateDir, '--simulate', 'daemon', '--socket-dir', path.join(host.base, 'unused'),
    ]);
    await waitFor(() => existsSync(host.roSocket) || activate.finished(), 10_000);
    expect((await curl(host.roSocket, 'GET', '/v1')).json()).toMatchObject({ readOnly: true });
    expect((await curl(host.socket, 'GET', '/v1')).json()).toMatchObject({ readOnly: false });
    expect((await curl(host.roSocket, 'POST', `/v1/devices/${VF}/detach`)).status).toBe(403);
    expect((await curl(host.socket, 'POST', `/v1/devices/${VF}/detach`)).status).toBe(200);
    expect(existsSync(path.join(host.base, 'unused'))).toBe(false);
  });
});

async function curlEvents(host: DaemonHost, since?: number): Promise<EventJson[]> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const url = `http://hostdev/v1/events${since === undefined ? '?since=0' : `?since=${since}`}`;
    const child = spawn('curl', ['-sS', '-N', '--max-time', '0.8', '--unix-socket', host.roSocket, url], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', () =>
      resolve(out.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as EventJson).filter((event) => event.type !== 'heartbeat')),
    );
  });
}
