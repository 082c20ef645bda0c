import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../src/daemon/openapi.js';
import { ErrorBody, EventRecord } from '../../src/daemon/schemas.js';
import { qemuMissing, startQemu } from '../support/qemu.js';
import { cleanUpAfterEach, daemonHost, readStream, startTestDaemon } from './daemon-host.js';

cleanUpAfterEach();

const VF = '0000:01:10.0';
const VF2 = '0000:01:10.2';
const PF = '0000:01:00.0';

/** The route of ROUTES a request path falls under (path parameters match one segment). */
function routeOf(method: string, url: string): (typeof ROUTES)[number] {
  const path = url.split('?')[0]!;
  const found = ROUTES.find(
    (route) => route.method === method.toLowerCase() && new RegExp(`^${route.path.replace(/\{\w+\}/g, '[^/]+')}$`).test(path),
  );
  if (found === undefined) throw new Error(`no route for ${method} ${url}`);
  return found;
}

function check(schema: z.ZodType, body: unknown, what: string): void {
  const result = schema.safeParse(body);
  expect(result.success, `${what}: ${result.success ? '' : JSON.stringify(result.error.issues.slice(0, 5))}`).toBe(true);
}

describe('the schemas describe what the daemon sends', () => {
  it('a real answer of every route validates against its schema (errors against ErrorBody, events line by line)', async () => {
    const host = daemonHost();
    const daemon = await startTestDaemon(host, { watch: true });
    let { app } = daemon;
    const covered = new Set<string>();
    const seen = { ok: 0, accepted: 0, errors: 0 };
    const send = async (method: string, url: string, payload?: object): Promise<unknown> => {
      const answer = await app.inject({ method: method as 'GET', url, ...(payload === undefined ? {} : { payload }) });
      const route = routeOf(method, url);
      const what = `${method} ${url} -> ${answer.statusCode}`;
      if (answer.statusCode >= 400) {
        check(ErrorBody, answer.json(), what);
        seen.errors += 1;
        return answer.json();
      }
      if (route.contentType === 'text/plain') expect(typeof answer.body).toBe('string');
      else check(route.ok, answer.json(), what);
      if (answer.statusCode === 202) seen.accepted += 1;
      else seen.ok += 1;
      covered.add(`${route.method} ${route.path}`);
      return answer.body.startsWith('{') || answer.body.startsWith('[') ? answer.json() : answer.body;
    };

    await send('GET', '/v1');
    await send('GET', '/v1/devices');
    await send('GET', '/v1/devices?class=net&driver=igbvf');
    await send('GET', `/v1/devices/pci:${VF}`);
    await send('GET', `/v1/devices/${PF}`);
    await send('GET', '/v1/groups');
    await send('POST', '/v1/assignments?dryRun=true', { domain: 'vm1', devices: [VF] });
    const assigned = (await send('POST', '/v1/assignments', { domain: 'vm1', devices: [VF], vf: { [VF]: { vlan: 10 } } })) as { id: string };
    await send('POST', '/v1/assignments', { domain: 'vm1', devices: [VF] });
    await send('POST', '/v1/assignments', { domain: 'vm2', devices: [VF] });
    await send('GET', '/v1/status');
    await send('GET', '/v1/domains');
    await send('POST', `/v1/adoptions?dryRun=true`, { domain: 'vm1', devices: [VF] });
    await send('POST', `/v1/adoptions`, { domain: 'vm3', devices: [VF2] });
    await send('POST', '/v1/domains/qemu/vm3/hotplug', { qmp: '/nonexistent/qmp.sock', devices: [VF2] });
    await send('GET', '/v1/devices');
    await send('GET', '/v1/groups');
    await send('GET', '/v1/domains/qemu/vm1/qemu-args');
    await send('GET', '/v1/domains/qemu/vm1/qemu-args?machine=pc&firstChassis=3');
    for (const kind of ['detach', 'reset', 'reattach']) {
      await send('POST', `/v1/devices/${VF2}/${kind}?dryRun=true`);
      await send('POST', `/v1/devices/${VF2}/${kind}`);
    }
    const late = (await send('POST', `/v1/devices/${VF2}/detach?wait=0`)) as { id: string };
    await send('GET', `/v1/operations/${late.id}/wait?timeout=10000`);
    await send('GET', `/v1/operations/${assigned.id}`);
    await send('GET', '/v1/operations/nope');
    await send('DELETE', '/v1/assignments/qemu/vm1?dryRun=true');
    await send('DELETE', `/v1/assignments/qemu/vm1?devices=${VF}`);
    await send('PUT', `/v1/devices/${PF}/sriov?dryRun=true`, { numVfs: 0, force: true });
    await send('PUT', `/v1/devices/${PF}/sriov`, { numVfs: 0, force: true });
    await send('PUT', `/v1/devices/${PF}/sriov`, { numVfs: 2 });
    if (qemuMissing === null) {
      const qemu = await startQemu({ rootPorts: ['rp1'] });
      try {
        await send('POST', '/v1/assignments', { domain: 'vm1', devices: [VF] });
        await send('POST', '/v1/domains/qemu/vm3/hotplug?dryRun=true', { qmp: qemu.socket, devices: [VF2] });
        await send('POST', '/v1/domains/qemu/vm1/unplug?dryRun=true', { qmp: qemu.socket, devices: [VF] });
        await send('POST', '/v1/domains/qemu/vm1/unplug', { qmp: qemu.socket, devices: [VF] });
      } finally {
        await qemu.stop();
      }
    }
    await send('GET', '/v1/status');
    await send('GET', '/v1/operations');
    await send('GET', '/v1/operations?limit=3');
    await send('GET', '/v1/devices/0000:09:00.0');
    await send('GET', '/metrics');

    const lines = (await readStream(app, '/v1/events?since=0')).split('\n').filter((line) => line !== '');
    expect(lines.length).toBeGreaterThan(10);
    for (const line of lines) check(EventRecord, JSON.parse(line), line);
    expect(lines.some((line) => (JSON.parse(line) as { type: string }).type === 'pci')).toBe(true);
    covered.add('get /v1/events');

    // the mdev routes, on a host with an mdev parent
    app = (await startTestDaemon(daemonHost('virt-host'))).app;
    const uuid = 'c297db4a-f4c2-11e6-90f6-d3b88d6c9525';
    await send('POST', '/v1/mdevs?dryRun=true', { parent: '0000:00:02.0', type: 'i915-GVTg_V5_4', uuid });
    await send('POST', '/v1/mdevs', { parent: '0000:00:02.0', type: 'i915-GVTg_V5_4', uuid, persist: true, attrs: [] });
    await send('GET', '/v1/mdevs');
    await send('DELETE', `/v1/mdevs/${uuid}?undefine=true`);
    await send('DELETE', `/v1/mdevs/${uuid}`);

    expect(seen.accepted).toBeGreaterThan(0);
    expect(seen.errors).toBeGreaterThanOrEqual(3);
    // hotplug and unplug answer only with a running VM to speak to.
    const needQemu = ['post /v1/domains/{hypervisor}/{domain}/hotplug', 'post /v1/domains/{hypervisor}/{domain}/unplug'];
    expect([...covered].sort()).toEqual(
      ROUTES.map((route) => `${route.method} ${route.path}`).filter((route) => qemuMissing === null || !needQemu.includes(route)).sort(),
    );
  });

  it('the schemas are strict: an answer with a field they do not describe fails them', () => {
    const route = routeOf('GET', '/v1/status');
    const statusLike = { active: [], inactive: [], pruned: [], missing: [], iommu: { enabled: true }, vfio: { loaded: false, groups: [] }, journal: { unfinished: 0 }, recovery: { repaired: [], pruned: [], drift: [], vfConfig: [], warnings: [] }, recentRepairs: [], departed: [], busy: null, holders: [] };
    expect(route.ok.safeParse(statusLike).success).toBe(true);
    expect(route.ok.safeParse({ ...statusLike, extra: 1 }).success).toBe(false);
    const entry = { key: 'pci:0000:01:10.0', address: VF, usedBy: { driver: 'qemu', domain: 'vm1' }, managed: true, stubDriver: 'vfio-pci', originalDriver: 'igbvf' };
    expect(route.ok.safeParse({ ...statusLike, active: [entry] }).success, 'an owner without hypervisor and vm').toBe(false);
  });
});
