// hostdevd inside a scenario: started with the scenario's root and state on sockets in a fresh
// directory, spoken to over its HTTP API, its event stream followed, stopped with SIGTERM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { NODE_FLAGS } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One request over the daemon's socket: its status and JSON body. */
export function api(socketPath, method, urlPath, body, { timeoutMs = 120_000 } = {}) {
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
export function subscribe(socketPath) {
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

/**
 * Starts `hostdev daemon` on a fresh socket directory and waits (bounded) until it answers.
 * Returns {dir, rw, ro, feed (its event stream, followed from the start), cliEnv, up, output(), stop()} — `stop` sends SIGTERM and resolves with the exit (null
 * when it did not end within 40 s). Cleanup kills it if the scenario did not stop it.
 */
export async function startDaemon(env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostdevd-'));
  const rw = path.join(dir, 'hostdev.sock');
  const ro = path.join(dir, 'hostdev-ro.sock');
  let out = '';
  const child = spawn(process.execPath, [...NODE_FLAGS, env.bin, 'daemon', '--socket-dir', dir, ...env.globals()], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  env.onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const up = await env.waitFor(async () => fs.existsSync(ro) && (await api(ro, 'GET', '/v1').catch(() => null))?.status === 200, { timeoutMs: 180_000, intervalMs: 250 });
  const feed = subscribe(ro);
  env.onCleanup(() => feed.stop());
  return {
    dir,
    rw,
    ro,
    feed,
    /** the environment that makes a hostdev command go through this daemon (under TCG its 2 s probe can miss it) */
    cliEnv: { HOSTDEV_SOCKET_DIR: dir, HOSTDEV_DAEMON_PROBE_MS: '30000' },
    up: Boolean(up) && fs.existsSync(rw),
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      return Promise.race([exited, sleep(40_000).then(() => null)]);
    },
  };
}
