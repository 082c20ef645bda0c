import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, HostdevError, type ErrorCode } from '../../src/core/errors.js';
import { httpStatusOf } from '../../src/daemon/http-errors.js';
import type { EventJson, OperationRecordJson } from '../../src/daemon/schemas.js';
import { cleanUpAfterEach, cli, daemonHost, readStream, startTestDaemon } from './daemon-host.js';

cleanUpAfterEach();

const VF = '0000:01:10.0';
const VF2 = '0000:01:10.2';
const PF = '0000:01:00.0';


describe('the API over inject()', () => {
  it('GET /v1 lists the api extensions, and every answer carries Hostdev-Api-Version', async () => {
    const host = daemonHost();
    const { app } = await startTestDaemon(host);
    const index = await app.inject({ method: 'GET', url: '/v1' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['hostdev-api-version']).toBe('1.0');
    expect(index.json()).toEqual({
      name: 'hostdev',
      apiVersion: '1.0',
      api_extensions: expect.arrayContaining(['operations', 'events-ndjson', 'serves']),
      readOnly: false,
      serves: { root: host.root, stateDir: host.stateDir, simulate: true },
    });
    const missing = await app.inject({ method: 'GET', url: '/v1/nothing' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['hostdev-api-version']).toBe('1.0');
    expect(missing.json().error.code).toBe('HOSTDEV_USAGE');
  });

  it('devices, one device (by key or bare address), groups and status are the CLI --json', async () => {
    const host = daemonHost();
    const { app } = await startTestDaemon(host);
    const get = async (url: string): Promise<unknown> => {
      const answer = await app.inject({ method: 'GET', url });
      expect(answer.statusCode, answer.body).toBe(200);
      return answer.json();
    };
    expect(await get('/v1/devices')).toEqual(cli(host, ['list']));
    expect(await get('/v1/devices?class=net&driver=igbvf')).toEqual(cli(host, ['list', '--class', 'net', '--driver', 'igbvf']));
    expect(await get(`/v1/devices/pci:${VF}`)).toEqual(cli(host, ['show', VF]));
    expect(await get(`/v1/devices/${VF}`)).toEqual(cli(host, ['show', VF]));
    expect(await get('/v1/groups')).toEqual(cli(host, ['groups']));
    const status = (await get('/v1/status')) as Record<string, unknown>;
    const cliStatus = cli(host, ['status']) as Record<string, unknown>;
    // recovery is the open's own report: the daemon's from its start, the CLI's from its run.
    expect({ ...status, recovery: null }).toEqual({ ...cliStatus, recovery: null });
  });

  it('a malformed key is 400 HOSTDEV_BAD_ADDRESS, a device not on the host 404, a bad body 400', async () => {
    const host = daemonHost();
    const { app } = await startTestDaemon(host);
    const bad = await app.inject({ method: 'GET', url: '/v1/devices/pci:zz' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: 'HOSTDEV_BAD_ADDRESS', hint: expect.any(String), details: expect.any(Object) });
    const gone = await app.inject({ method: 'GET', url: '/v1/devices/0000:09:00.0' });
    expect(gone.statusCode).toBe(404);
    expect(gone.json().error.code).toBe('HOSTDEV_DEVICE_NOT_FOUND');
    const body = await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1' } });
    expect(body.statusCode).toBe(400);
    expect(body.json().error.code).toBe('HOSTDEV_USAGE');
    const json = await app.inject({ method: 'POST', url: '/v1/assignments', payload: '{not json', headers: { 'content-type': 'application/json' } });
    expect(json.statusCode).toBe(400);
    expect(json.json().error.code).toBe('HOSTDEV_USAGE');
  });

  it('every catalog code has its exit class status; busy is 503, read-only 403', () => {
    const expected: Record<string, number> = { usage: 400, notFound: 404, conflict: 409, unsupported: 422, kernel: 502, state: 503, busy: 503, failure: 500, partial: 207, hypervisor: 502 };
    for (const code of Object.keys(ERROR_CATALOG) as ErrorCode[]) {
      const status = httpStatusOf(new HostdevError(code, 'x', { hint: 'y' }));
      expect(status, code).toBe(code === 'HOSTDEV_READ_ONLY' ? 403 : expected[ERROR_CATALOG[code].exit]);
    }
  });
});

describe('mutations', () => {
  it('?dryRun=true returns the CLI --dry-run --json plan and changes nothing', async () => {
    const host = daemonHost();
    const { app } = await startTestDaemon(host);
    const before = cli(host, ['list']);
    const dry = await app.inject({ method: 'POST', url: `/v1/devices/pci:${VF}/detach?dryRun=true` });
    expect(dry.statusCode).toBe(200);
    const record = dry.json<OperationRecordJson>();
    expect(record).toMatchObject({ id: null, dryRun: true, state: 'completed', kind: 'detach' });
    expect(record.result).toEqual(cli(host, ['detach', VF, '--dry-run']));
    const assign = await app.inject({ method: 'POST', url: '/v1/assignments?dryRun=true', payload: { domain: 'vm1', devices: [`pci:${VF}`] } });
    expect(assign.json().result).toEqual(cli(host, ['assign', '--domain', 'vm1', VF, '--dry-run']));
    const sriov = await app.inject({ method: 'PUT', url: `/v1/devices/${PF}/sriov?dryRun=true`, payload: { numVfs: 4 } });
    expect(sriov.json().result).toEqual(cli(host, ['vf', 'set-count', PF, '4', '--dry-run']));
    expect(cli(host, ['list'])).toEqual(before);
    expect((await app.inject({ method: 'GET', url: '/v1/operations' })).json()).toEqual([]);
  });

  it('detach, reattach, reset, assign, qemu-args and release answer what the CLI prints for the same host', async () => {
    const host = daemonHost();
    const twin = daemonHost();
    const { app } = await startTestDaemon(host);
    const result = async (method: 'POST' | 'PUT' | 'DELETE', url: string, payload?: object): Promise<unknown> => {
      const answer = await app.inject({ method, url, ...(payload === undefined ? {} : { payload }) });
      expect(answer.statusCode, answer.body).toBe(200);
      expect(answer.json<OperationRecordJson>().state).toBe('completed');
      return answer.json<OperationRecordJson>().result;
    };
    expect(await result('POST', `/v1/devices/pci:${VF2}/detach`)).toEqual(cli(twin, ['detach', VF2]));
    expect(await result('POST', `/v1/devices/pci:${VF2}/reattach`)).toEqual(cli(twin, ['reattach', VF2]));
    expect(await result('POST', `/v1/devices/pci:${VF2}/reset`)).toEqual(cli(twin, ['reset', VF2]));
    expect(await result('POST', '/v1/assignments', { domain: 'vm1', devices: [`pci:${VF}`], vf: { [`pci:${VF}`]: { mac: '52:54:00:00:00:01', vlan: 10 } } })).toEqual(
      cli(twin, ['assign', '--domain', 'vm1', VF, '--mac', '52:54:00:00:00:01', '--vlan', '10']),
    );
    const qemu = await app.inject({ method: 'GET', url: '/v1/domains/qemu/vm1/qemu-args' });
    expect(qemu.json()).toEqual(cli(twin, ['qemu-args', '--domain', 'vm1']));
    expect((await app.inject({ method: 'GET', url: '/v1/devices' })).json()).toEqual(cli(host, ['list']));
    expect(await result('DELETE', `/v1/assignments/qemu/vm1?devices=pci:${VF}`)).toEqual(cli(twin, ['release', '--domain', 'vm1', VF]));
    expect(await result('PUT', `/v1/devices/${PF}/sriov`, { numVfs: 3 })).toMatchObject({ pf: PF, from: 2, to: 3 });
    expect((await app.inject({ method: 'GET', url: '/v1/devices' })).json()).toEqual(cli(host, ['list']));
  });

  it('an operation that outlasts ?wait= is 202 with Location; /wait and GET /v1/operations/{id} give it finished', async () => {
    const host = daemonHost();
    const { app } = await startTestDaemon(host);
    const started = await app.inject({ method: 'POST', url: '/v1/assignments?wait=0', payload: { domain: 'vm1', devices: [VF] } });
    expect(started.statusCode).toBe(202);
    const running = started.json<OperationRecordJson>();
    expect(running.state).toBe('running');
    expect(started.headers.location).toBe(`/v1/operations/${running.id}`);
    const waited = await app.inject({ method: 'GET', url: `${started.headers.location as string}/wait?timeout=20000` });
    expect(waited.json<OperationRecordJson>()).toMatchObject({ id: running.id, state: 'completed', owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, devices: [`pci:${VF}`] });
    const again = await app.inject({ method: 'GET', url: `/v1/operations/${running.id}` });
    expect(again.json()).toEqual(waited.json());
    const list = await app.inject({ method: 'GET', url: '/v1/operations' });
    expect(list.json<OperationRecordJson[]>().map((op) => op.id)).toEqual([running.id]);
    expect((await app.inject({ method: 'GET', url: '/v1/operations/nope' })).statusCode).toBe(404);
  });

  it('the same assign by the same owner is a 200 no-op; another owner gets 409 naming the holder', async () => {
    const host = daemonHost();
    const { app } = await startTestDaemon(host);
    const assign = (domain: string) => app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain, devices: [`pci:${VF}`] } });
    expect((await assign('vm1')).statusCode).toBe(200);
    const repeat = await assign('vm1');
    expect(repeat.statusCode).toBe(200);
    expect(repeat.json()).toMatchObject({ state: 'completed', noop: true });
    const other = await assign('vm2');
    expect(other.statusCode).toBe(409);
    expect(other.json().error).toMatchObject({ code: 'HOSTDEV_IN_USE', details: { owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' } } });
    expect(other.json().error.message).toContain('vm1');
  });
});

describe('events', () => {
  it('replays ?since= as NDJSON: operation start and end, the PCI events of the watcher', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host, { watch: true });
    const first = daemon.events.lastSeq;
    await daemon.app.inject({ method: 'POST', url: `/v1/devices/${VF}/detach` });
    // The watcher sees the driver change (the simulator's event log).
    const deadline = Date.now() + 10_000;
    let events: EventJson[] = [];
    while (Date.now() < deadline) {
      const answer = await readStream(daemon.app, `/v1/events?since=${first}`);
      events = answer.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as EventJson);
      if (events.some((event) => event.type === 'pci')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(events.map((event) => [event.type, event.action])).toEqual(
      expect.arrayContaining([['operation', 'start'], ['operation', 'end'], ['pci', 'driver-change']]),
    );
    expect(events.find((event) => event.type === 'pci')).toMatchObject({ key: `pci:${VF}`, details: { driver: 'vfio-pci' } });
    const seqs = events.map((event) => event.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });
});

describe('metrics', () => {
  it('GET /metrics counts devices by class and state, owners, VFs per PF, operations and their latency', async () => {
    const host = daemonHost();
    const { app } = await startTestDaemon(host);
    await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1', devices: [VF] } });
    await app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm2', devices: [VF] } });
    const answer = await app.inject({ method: 'GET', url: '/metrics' });
    expect(answer.statusCode).toBe(200);
    expect(answer.headers['content-type']).toContain('text/plain');
    const text = answer.body;
    expect(text).toContain('hostdev_devices{class="net",state="active"} 1');
    expect(text).toContain('hostdev_devices{class="net",state="host"} 5');
    expect(text).toContain('hostdev_owners 1');
    expect(text).toContain(`hostdev_vfs{pf="${PF}"} 2`);
    expect(text).toContain('hostdev_operations_total{kind="assign",outcome="completed"} 1');
    expect(text).toContain('hostdev_operations_total{kind="assign",outcome="failed"} 1');
    expect(text).toContain('hostdev_operation_duration_seconds_count{kind="assign"} 2');
    expect(text).toMatch(/hostdev_prunes_total 0/);
    expect(text).toMatch(/hostdev_recoveries_total 0/);
    expect(text).toMatch(/hostdev_event_stream_clients 0/);
  });
});

describe('stopping', () => {
  it('drains: the operation under way ends, a new change meanwhile is 503 HOSTDEV_BUSY with Retry-After', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host);
    const started = new Promise<void>((resolve) => daemon.events.subscribe((event) => event.action === 'start' && resolve()));
    const underway = daemon.app.inject({ method: 'POST', url: '/v1/assignments', payload: { domain: 'vm1', devices: [VF] } });
    await started;
    const stopped = daemon.stop();
    const refused = await daemon.app.inject({ method: 'POST', url: `/v1/devices/${VF2}/detach` });
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('2');
    expect(refused.json().error.code).toBe('HOSTDEV_BUSY');
    expect((await underway).json()).toMatchObject({ state: 'completed', kind: 'assign' });
    await stopped;
  });
});
