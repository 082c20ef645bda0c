// Scenario 11: the seed, live, through hostdevd. The daemon runs with the scenario's root and state;
// a client assigns VF0 over its API and starts QEMU (paused) with the argv the API gives; an event
// subscriber listens on the read-only socket. `echo 0 > sriov_numvfs` blocks while QEMU holds VF0
// (on the simulator: its 'vfio-release' block fault); once QEMU lets go the VF leaves, and the
// subscriber sees its `remove` and the daemon's `prune` of vm1's entry without any command being run.
// The re-created VF is assigned again over the API.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { NODE_FLAGS } from './lib.mjs';
import { igbPf } from './s1-list.mjs';
import { holdVf0AndShrink, setCount } from './vm-setup.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One request over the daemon's socket: its status and JSON body. */
function api(socketPath, method, urlPath, body, { timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      { socketPath, method, path: urlPath, headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d) => (text += d));
        res.on('end', () => {
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode, json, text });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${urlPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Follows GET /v1/events (NDJSON): every event it has read so far, and a stop. */
function subscribe(socketPath) {
  const events = [];
  let buffer = '';
  const req = http.get({ socketPath, path: '/v1/events' }, (res) => {
    res.setEncoding('utf8').on('data', (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i).trim();
        buffer = buffer.slice(i + 1);
        if (line) events.push(JSON.parse(line));
      }
    });
  });
  req.on('error', () => undefined);
  return { events, stop: () => req.destroy() };
}

export const s11Daemon = {
  name: 's11-daemon',
  title: 'hostdevd: a client assigns VF0 over the API, QEMU holds it, sriov_numvfs shrinks; the event stream shows its remove and prune; the re-created VF is assigned again',
  async run(env) {
    await env.requireCommands('daemon', 'vf set-count', 'status');
    const pf = igbPf(env);
    const vfs = await setCount(env, pf, 2, 's11');
    const vf0 = vfs[0];
    const key = `pci:${vf0}`;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostdevd-'));
    const rw = path.join(dir, 'hostdev.sock');
    const ro = path.join(dir, 'hostdev-ro.sock');
    let daemonOut = '';
    const daemon = spawn(process.execPath, [...NODE_FLAGS, env.bin, 'daemon', '--socket-dir', dir, ...env.globals()], { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout.setEncoding('utf8').on('data', (d) => (daemonOut += d));
    daemon.stderr.setEncoding('utf8').on('data', (d) => (daemonOut += d));
    const daemonExit = new Promise((resolve) => daemon.on('exit', (code, signal) => resolve({ code, signal })));
    env.onCleanup(async () => {
      if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL');
      await daemonExit;
      fs.rmSync(dir, { recursive: true, force: true });
    });
    env.onCleanup(async () => {
      await env.hostdev(['release', '--domain', 'vm1']);
      if (env.virtfns(pf).length) await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
    }, { onlyOnFailure: true });
    const up = await env.waitFor(async () => fs.existsSync(ro) && (await api(ro, 'GET', '/v1').catch(() => null))?.status === 200, { timeoutMs: 60_000, intervalMs: 250 });
    if (!env.check('the daemon answers on both sockets', up && fs.existsSync(rw), daemonOut.slice(-2000))) return;
    const feed = subscribe(ro);
    env.onCleanup(() => feed.stop());

    const assign = await api(rw, 'POST', '/v1/assignments', { domain: 'vm1', devices: [vf0] });
    env.check('POST /v1/assignments: 200, the operation succeeded', assign.status === 200 && assign.json?.state === 'completed', assign.text);
    const args = await api(ro, 'GET', '/v1/domains/qemu/vm1/qemu-args');
    const argv = Array.isArray(args.json) ? args.json : [];
    env.check('GET qemu-args: an argv with VF0', args.status === 200 && argv.some((a) => a.startsWith('vfio-pci,') && a.includes(`host=${vf0}`)), args.text);
    env.observe('s11: assigned over the API', { assign: assign.status, state: assign.json?.state ?? null, driver: env.driverOf(vf0), qemuArgs: args.status });

    const { holding, write, letGo } = await holdVf0AndShrink(env, { pf, vf0, argv });
    if (holding) {
      env.check('echo 0 > sriov_numvfs blocks while QEMU holds VF0', !write.done);
      const status = await api(ro, 'GET', '/v1/status', undefined, { timeoutMs: 30_000 }).catch((error) => ({ status: `error: ${error.message}` }));
      env.check('GET /v1/status answers while the write is blocked', status.status === 200, status);
      env.check('no prune of VF0 yet: QEMU still holds it', !feed.events.some((e) => e.type === 'prune' && e.key === key), feed.events);
    }
    const done = await letGo();
    env.check('the write completes once nothing holds VF0', done?.ok === true, done);
    const seen = await env.waitFor(() => {
      const removed = feed.events.some((e) => e.type === 'pci' && e.action === 'remove' && e.key === key);
      const pruned = feed.events.find((e) => e.type === 'prune' && e.key === key);
      return removed && pruned ? pruned : null;
    }, { timeoutMs: 30_000 });
    env.check('the subscriber sees VF0 removed and pruned', seen !== null, feed.events.filter((e) => e.type !== 'heartbeat'));
    const status = await api(ro, 'GET', '/v1/status');
    const active = status.json?.active ?? null;
    env.observe('s11: after echo 0', {
      removeEvent: feed.events.some((e) => e.type === 'pci' && e.action === 'remove' && e.key === key),
      pruneOwner: seen?.owner?.vm ?? null,
      active: Array.isArray(active) ? active.map((e) => e.address) : active,
      inactive: Array.isArray(status.json?.inactive) ? status.json.inactive.map((e) => e.address) : null,
    });
    env.equal('no table holds VF0, without any command run', Array.isArray(active) && active.length === 0 && status.json.inactive.length === 0, true);

    const again = await setCount(env, pf, 2, 's11 again');
    env.equal('VF0 comes back at the same address', again[0], vf0);
    const reassign = await api(rw, 'POST', '/v1/assignments', { domain: 'vm2', devices: [vf0] });
    env.check('the re-created VF0 is assigned to vm2 over the API', reassign.status === 200 && reassign.json?.state === 'completed', reassign.text);
    const release = await api(rw, 'DELETE', '/v1/assignments/qemu/vm2');
    env.check('DELETE /v1/assignments/qemu/vm2: 200', release.status === 200, release.text);
    env.observe('s11: VF0 again', { assign: reassign.status, release: release.status, driver: env.driverOf(vf0) });
    feed.stop();
    daemon.kill('SIGTERM');
    const exit = await Promise.race([daemonExit, sleep(40_000).then(() => null)]);
    env.check('the daemon exits 0 on SIGTERM', exit?.code === 0, { exit, out: daemonOut.slice(-2000) });
    await setCount(env, pf, 0, 's11');
  },
};
