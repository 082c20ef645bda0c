import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { startDaemon, type RunningDaemon } from '../../src/daemon/run.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { background, type Background } from '../support/background.js';
import { cliProcess, jsonOf, runCli } from '../support/cli.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';

/** A simulated host with its state and socket dirs in one temp dir, removed after each test. */
export interface DaemonHost {
  readonly base: string;
  readonly root: string;
  readonly stateDir: string;
  readonly socketDir: string;
  readonly socket: string;
  readonly roSocket: string;
}

const made: string[] = [];
const daemons: RunningDaemon[] = [];

/** Registers the clean-up of every daemon and host a test of the file made. */
export function cleanUpAfterEach(): void {
  afterEach(async () => {
    for (const daemon of daemons.splice(0)) await daemon.stop();
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
}

export function daemonHost(preset = 'sriov-nic'): DaemonHost {
  // Short: a unix socket path is limited to 107 bytes.
  const base = mkdtempSync(path.join(tmpdir(), 'hd-'));
  made.push(base);
  const root = path.join(base, 'root');
  createSimulatedHost(root, { preset });
  const socketDir = path.join(base, 'run');
  return { base, root, stateDir: path.join(base, 'state'), socketDir, socket: path.join(socketDir, 'hostdev.sock'), roSocket: path.join(socketDir, 'hostdev-ro.sock') };
}

/** The daemon in this process, on the host's sockets (stopped after the test). */
export async function startTestDaemon(
  host: DaemonHost,
  options: { watch?: boolean; heartbeatMs?: number; eventCapacity?: number; metricsListen?: { host: string; port: number } } = {},
): Promise<RunningDaemon> {
  const daemon = await startDaemon({
    socketDir: host.socketDir,
    stateDir: host.stateDir,
    serves: { root: host.root, stateDir: host.stateDir, simulate: true },
    open: (mode) => HostdevService.open({ ...simulatedHost(host.root), stateDir: host.stateDir, ...mode }),
    logger: pino({ level: 'silent' }),
    watch: options.watch ?? false,
    drainMs: 5_000,
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
    ...(options.eventCapacity === undefined ? {} : { eventCapacity: options.eventCapacity }),
    ...(options.metricsListen === undefined ? {} : { metricsListen: options.metricsListen }),
  });
  daemons.push(daemon);
  return daemon;
}

export interface CurlResult {
  readonly status: number;
  readonly headers: Record<string, string[]>;
  readonly body: string;
  json<T = unknown>(): T;
}

function parseCurl(out: string): CurlResult {
  // -i output: the status line and headers, a blank line, the body.
  const split = out.indexOf('\r\n\r\n');
  const head = out.slice(0, split).split('\r\n');
  const body = out.slice(split + 4);
  const status = Number(head[0]!.split(' ')[1]);
  const headers: Record<string, string[]> = {};
  for (const line of head.slice(1)) {
    const at = line.indexOf(':');
    const name = line.slice(0, at).toLowerCase();
    (headers[name] ??= []).push(line.slice(at + 1).trim());
  }
  return { status, headers, body, json: <T>() => JSON.parse(body) as T };
}

function curlArgs(socket: string, method: string, url: string, body?: unknown, extra: readonly string[] = []): string[] {
  const args = ['-sS', '-i', '--max-time', '60', '--unix-socket', socket, '-X', method, ...extra];
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
  return [...args, `http://hostdev${url}`];
}

/** `curl --unix-socket`: a real HTTP client that is not ours (never blocks the event loop). */
export function curl(socket: string, method: string, url: string, body?: unknown, extra: readonly string[] = []): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', curlArgs(socket, method, url, body, extra), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(parseCurl(out)) : reject(new Error(`curl exited ${code}: ${err}`))));
  });
}

/** The same, synchronously (for a daemon in another process). */
export function curlSync(socket: string, method: string, url: string, body?: unknown): CurlResult {
  const run = spawnSync('curl', curlArgs(socket, method, url, body), { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`curl exited ${run.status}: ${run.stderr}`);
  return parseCurl(run.stdout);
}

/** `hostdev --root ROOT --state-dir STATE --simulate --json ARGS...` on the host: what the API must equal. */
export function cli(host: DaemonHost, args: readonly string[]): unknown {
  return jsonOf(runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', '--json', ...args]));
}

/** The body of a streaming answer so far (inject() ends it when the app closes it, so read a socket). */
export async function readStream(app: import('fastify').FastifyInstance, url: string): Promise<string> {
  const { PassThrough } = await import('node:stream');
  const response = await app.inject({ method: 'GET', url, payloadAsStream: true });
  const stream = response.stream() as InstanceType<typeof PassThrough>;
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => (text += chunk));
  await new Promise((resolve) => setTimeout(resolve, 150));
  stream.destroy();
  return text;
}

/** `hostdev daemon` in a child process over the host. */
export async function daemonProcess(host: DaemonHost): Promise<Background> {
  const child = background(...cliProcess(['--root', host.root, '--state-dir', host.stateDir, '--simulate', 'daemon', '--socket-dir', host.socketDir, '--drain', '20000']));
  // Up once the read-only socket answers (the daemon binds it second).
  const deadline = Date.now() + 20_000;
  while (!(await curl(host.roSocket, 'GET', '/v1').then(() => true, () => false))) {
    if (child.finished() || Date.now() > deadline) throw new Error(`the daemon did not come up: ${child.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return child;
}
