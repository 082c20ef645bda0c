import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { EventJson, OperationRecordJson } from '../../src/daemon/schemas.js';
import { cleanUpAfterEach, curl, daemonHost, startTestDaemon } from './daemon-host.js';

cleanUpAfterEach();

const VF = '0000:01:10.0';
const PF = '0000:01:00.0';

describe('the daemon on its two unix sockets, with curl as the client', () => {
  it('creates hostdev.sock 0660 and hostdev-ro.sock 0666; every read answers on both', async () => {
    const host = daemonHost();
    await startTestDaemon(host);
    expect(statSync(host.socket).mode & 0o777).toBe(0o660);
    expect(statSync(host.roSocket).mode & 0o777).toBe(0o666);
    for (const socket of [host.socket, host.roSocket]) {
      for (const url of ['/v1', '/v1/devices', `/v1/devices/pci:${VF}`, '/v1/groups', '/v1/status', '/v1/operations', '/metrics']) {
        const answer = await curl(socket, 'GET', url);
        expect(answer.status, `${socket} ${url}: ${answer.body}`).toBe(200);
        expect(answer.headers['hostdev-api-version']).toEqual(['1.0']);
      }
      // vm1 holds nothing here: qemu-args answers, with HOSTDEV_DOMAIN_NOT_FOUND.
      const args = await curl(socket, 'GET', '/v1/domains/qemu/vm1/qemu-args');
      expect(args.status, args.body).toBe(404);
      expect(args.json()).toMatchObject({ error: { code: 'HOSTDEV_DOMAIN_NOT_FOUND' } });
      const head = await curl(socket, 'HEAD', '/v1/devices', undefined, ['-I']);
      expect(head.status).toBe(200);
    }
    expect((await curl(host.roSocket, 'GET', '/v1')).json()).toMatchObject({ readOnly: true });
    expect((await curl(host.socket, 'GET', '/v1')).json()).toMatchObject({ readOnly: false });
  });

  it('refuses every mutation on the read-only socket with 403 HOSTDEV_READ_ONLY, dry runs too', async () => {
    const host = daemonHost();
    await startTestDaemon(host);
    const mutations: Array<[string, string, unknown]> = [
      ['POST', `/v1/devices/pci:${VF}/detach`, undefined],
      ['POST', `/v1/devices/pci:${VF}/reattach?dryRun=true`, undefined],
      ['POST', `/v1/devices/pci:${VF}/reset`, undefined],
      ['PUT', `/v1/devices/pci:${PF}/sriov`, { numVfs: 1 }],
      ['POST', '/v1/assignments', { domain: 'vm1', devices: [VF] }],
      ['DELETE', '/v1/assignments/qemu/vm1', undefined],
    ];
    for (const [method, url, body] of mutations) {
      const answer = await curl(host.roSocket, method, url, body);
      expect(answer.status, `${method} ${url}`).toBe(403);
      expect(answer.json<{ error: { code: string; hint: string } }>().error).toMatchObject({ code: 'HOSTDEV_READ_ONLY', hint: expect.stringContaining('hostdev.sock') });
    }
    const ops = await curl(host.socket, 'GET', '/v1/operations');
    expect(ops.json()).toEqual([]);
    const list = await curl(host.socket, 'GET', '/v1/devices?driver=vfio-pci');
    expect(list.json()).toEqual([]);
  });

  it('two clients racing for one VF: one 200, one 409 that names the owner', async () => {
    const host = daemonHost();
    await startTestDaemon(host);
    const [a, b] = await Promise.all([
      curl(host.socket, 'POST', '/v1/assignments', { domain: 'vm-a', devices: [`pci:${VF}`] }),
      curl(host.socket, 'POST', '/v1/assignments', { domain: 'vm-b', devices: [`pci:${VF}`] }),
    ]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 409]);
    const winner = a.status === 200 ? 'vm-a' : 'vm-b';
    const loser = a.status === 200 ? b : a;
    expect(loser.json<{ error: { code: string; message: string } }>().error.code).toBe('HOSTDEV_IN_USE');
    expect(loser.json<{ error: { message: string } }>().error.message).toContain(`domain ${winner}`);
    const status = await curl(host.socket, 'GET', '/v1/status');
    expect(status.json<{ active: Array<{ address: string; usedBy: { domain: string } }> }>().active).toEqual([
      expect.objectContaining({ address: VF, usedBy: { driver: 'qemu', domain: winner, hypervisor: 'qemu', vm: winner } }),
    ]);
  });

  it('202 + Location over the socket, then /wait', async () => {
    const host = daemonHost();
    await startTestDaemon(host);
    const started = await curl(host.socket, 'POST', `/v1/devices/${VF}/detach?wait=0`);
    expect(started.status).toBe(202);
    const location = started.headers['location']![0]!;
    const waited = await curl(host.socket, 'GET', `${location}/wait?timeout=20000`);
    expect(waited.json<OperationRecordJson>()).toMatchObject({ state: 'completed', kind: 'detach' });
  });

  it('replaces a stale socket file and refuses to start beside a live daemon', async () => {
    const host = daemonHost();
    // A daemon killed with SIGKILL leaves its socket files behind.
    const child = spawn(process.execPath, ['-e', `require('node:fs').mkdirSync(${JSON.stringify(host.socketDir)},{recursive:true});require('node:net').createServer().listen(${JSON.stringify(host.socket)},()=>console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => child.stdout.once('data', resolve));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('close', resolve));
    expect(existsSync(host.socket)).toBe(true);
    await startTestDaemon(host);
    expect((await curl(host.socket, 'GET', '/v1')).status).toBe(200);
    await expect(startTestDaemon(host)).rejects.toMatchObject({ code: 'HOSTDEV_USAGE', message: expect.stringContaining('already answers') });
    expect((await curl(host.socket, 'GET', '/v1')).status).toBe(200);
  });
});

describe('/v1/events over the socket', () => {
  it('NDJSON follows live events and beats every heartbeat; SSE resumes after Last-Event-ID', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host, { heartbeatMs: 200 });
    const first = daemon.events.lastSeq;
    const follow = curlStream(host.socket, '/v1/events', [], 1.5);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await curl(host.socket, 'POST', `/v1/devices/${VF}/detach`);
    const live = (await follow).split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as EventJson);
    expect(live.filter((event) => event.type === 'operation').map((event) => [event.seq, event.action])).toEqual([
      [first + 1, 'start'],
      [first + 2, 'end'],
    ]);
    const sse = await curlStream(host.socket, '/v1/events', ['-H', 'Accept: text/event-stream', '-H', `Last-Event-ID: ${first + 1}`]);
    expect(sse).toContain(`id: ${first + 2}\nevent: operation\ndata: `);
    expect(sse).not.toContain(`id: ${first + 1}\n`);
    expect(sse).toContain(': heartbeat');
    const ndjson = await curlStream(host.socket, `/v1/events?since=${first}`);
    const lines = ndjson.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as EventJson);
    expect(lines.filter((event) => event.type === 'operation').map((event) => [event.seq, event.action])).toEqual([
      [first + 1, 'start'],
      [first + 2, 'end'],
    ]);
    expect(lines.some((event) => event.type === 'heartbeat')).toBe(true);
  });

  it('is 410 for a since older than the ring buffer holds', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host, { eventCapacity: 2 });
    const first = daemon.events.lastSeq;
    for (let i = 0; i < 2; i++) {
      await curl(host.socket, 'POST', `/v1/devices/${VF}/detach`);
      await curl(host.socket, 'POST', `/v1/devices/${VF}/reattach`);
    }
    const gone = await curl(host.socket, 'GET', `/v1/events?since=${first}`);
    expect(gone.status).toBe(410);
    expect(gone.json<{ error: { details: { oldest: number } } }>().error.details.oldest).toBe(first + 7);
    const kept = await curlStream(host.socket, `/v1/events?since=${first + 6}`);
    expect(kept.split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as EventJson).seq)).toEqual([first + 7, first + 8]);
  });
});

/** What a streaming GET sends within `seconds` (curl is ended by --max-time). */
function curlStream(socket: string, url: string, extra: readonly string[] = [], seconds = 0.6): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', ['-sS', '-N', '--max-time', String(seconds), '--unix-socket', socket, ...extra, `http://hostdev${url}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 || code === 28 ? resolve(out) : reject(new Error(`curl exited ${code}`))));
  });
}
