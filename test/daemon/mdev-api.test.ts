import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { OperationRecordJson } from '../../src/daemon/schemas.js';
import { killBackgroundAfterEach } from '../support/background.js';
import { runCliAsync } from '../support/cli.js';
import { cleanUpAfterEach, cli, curl, daemonHost, daemonProcess, startTestDaemon } from './daemon-host.js';

killBackgroundAfterEach();
cleanUpAfterEach();

// mdev create, remove and list through the daemon (what Incus or Proxmox would call), as operations
// of their own, and the command line's `mdev create|remove` through a daemon that answers.
const GPU = '0000:00:02.0';
const TYPE = 'i915-GVTg_V5_4';
const UUID = 'c297db4a-f4c2-11e6-90f6-d3b88d6c9525';

describe('/v1/mdevs', () => {
  it('POST makes the mdev as an operation (dry run, then for real, with persist), GET lists it with its definition, DELETE removes it', async () => {
    const host = daemonHost('virt-host');
    const { app } = await startTestDaemon(host);
    const body = { parent: GPU, type: TYPE, uuid: UUID, persist: true, start: 'manual' };
    const dry = await app.inject({ method: 'POST', url: '/v1/mdevs?dryRun=true', payload: body });
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json<OperationRecordJson>()).toMatchObject({ kind: 'mdev-create', dryRun: true, devices: [`mdev:${UUID}`], result: { operation: 'mdev-create', dryRun: true } });
    expect(existsSync(path.join(host.root, 'sys/bus/mdev/devices', UUID))).toBe(false);

    const made = await app.inject({ method: 'POST', url: '/v1/mdevs', payload: body });
    expect(made.statusCode, made.body).toBe(200);
    const record = made.json<OperationRecordJson>();
    expect(record).toMatchObject({ kind: 'mdev-create', state: 'completed', devices: [`mdev:${UUID}`], result: { key: `mdev:${UUID}`, parent: GPU, type: TYPE } });
    expect(existsSync(path.join(host.root, 'sys/bus/mdev/devices', UUID))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(host.root, 'etc/hostdev/mdev.d', `${UUID}.json`), 'utf8'))).toMatchObject({ start: 'manual' });

    const listed = await app.inject({ method: 'GET', url: '/v1/mdevs' });
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual(cli(host, ['mdev', 'list']));
    expect(listed.json<{ definitions: { uuid: string; present: boolean }[] }>().definitions).toEqual([expect.objectContaining({ uuid: UUID, present: true })]);

    // held by a domain: the removal is refused as the command line refuses it
    expect((await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1', devices: [`mdev:${UUID}`] } })).statusCode).toBe(200);
    const held = await app.inject({ method: 'DELETE', url: `/v1/mdevs/${UUID}` });
    expect(held.statusCode).toBe(409);
    expect(held.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'HOSTDEV_IN_USE', message: `mediated device mdev:${UUID} is in use by driver qemu, domain vm1` });
    expect((await app.inject({ method: 'DELETE', url: '/v1/assignments/qemu/vm1' })).statusCode).toBe(200);

    const removed = await app.inject({ method: 'DELETE', url: `/v1/mdevs/${UUID}?undefine=true` });
    expect(removed.statusCode, removed.body).toBe(200);
    expect(removed.json<OperationRecordJson>()).toMatchObject({ kind: 'mdev-remove', devices: [`mdev:${UUID}`], result: { operation: 'mdev-remove' } });
    expect(existsSync(path.join(host.root, 'sys/bus/mdev/devices', UUID))).toBe(false);
    expect(existsSync(path.join(host.root, 'etc/hostdev/mdev.d', `${UUID}.json`))).toBe(false);
  });

  it('a create without a UUID is named in its record by the UUID the daemon chose; bad bodies are usage errors', async () => {
    const host = daemonHost('virt-host');
    const { app } = await startTestDaemon(host);
    const made = await app.inject({ method: 'POST', url: '/v1/mdevs', payload: { parent: GPU, type: TYPE } });
    expect(made.statusCode, made.body).toBe(200);
    const record = made.json<OperationRecordJson & { result: { key: string } }>();
    expect(record.devices).toEqual([record.result.key]);
    expect(existsSync(path.join(host.root, 'sys/bus/mdev/devices', record.result.key.slice('mdev:'.length)))).toBe(true);
    for (const payload of [{ parent: GPU }, { parent: GPU, type: TYPE, uuid: 'not-a-uuid' }, { parent: GPU, type: TYPE, attrs: [{ name: '../x', value: '1' }] }]) {
      const bad = await app.inject({ method: 'POST', url: '/v1/mdevs', payload });
      expect(bad.statusCode, JSON.stringify(payload)).toBe(400);
      expect(bad.json<{ error: { code: string } }>().error.code).toBe('HOSTDEV_USAGE');
    }
  });
});

describe('mdev create|remove on the command line, through a daemon that answers', () => {
  it('they are the daemon\'s operations, and print what they print directly', { timeout: 120_000 }, async () => {
    const host = daemonHost('virt-host');
    const daemon = await daemonProcess(host);
    const global = ['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--socket-dir', host.socketDir];
    const made = await runCliAsync([...global, 'mdev', 'create', GPU, TYPE, '--uuid', UUID], { timeoutMs: 60_000 });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout.trim()).toBe(`created mdev:${UUID} (type ${TYPE} on ${GPU})`);
    const removed = await runCliAsync([...global, 'mdev', 'remove', UUID, '--json'], { timeoutMs: 60_000 });
    expect(removed.code, removed.stderr).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ operation: 'mdev-remove', key: `mdev:${UUID}` });
    const kinds = (await curl(host.socket, 'GET', '/v1/operations')).json<OperationRecordJson[]>().map((op) => op.kind);
    expect(kinds).toEqual(['mdev-remove', 'mdev-create']);
    daemon.child.kill('SIGTERM');
    await daemon.done;
  });
});
