import { existsSync } from 'node:fs';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseMetricsListen } from '../../src/daemon/metrics-listen.js';
import { runCliAsync } from '../support/cli.js';
import { cleanUpAfterEach, daemonHost, startTestDaemon } from './daemon-host.js';

cleanUpAfterEach();

/** A port nothing listens on right now (the kernel's pick for port 0). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('--metrics-listen', () => {
  it('takes a loopback address and a port, and refuses anything else', () => {
    expect(parseMetricsListen('127.0.0.1:9477')).toEqual({ host: '127.0.0.1', port: 9477 });
    expect(parseMetricsListen('127.8.0.2:80')).toEqual({ host: '127.8.0.2', port: 80 });
    expect(parseMetricsListen('[::1]:9477')).toEqual({ host: '::1', port: 9477 });
    for (const refused of ['0.0.0.0:9477', '10.1.2.3:9477', '[::]:9477', 'localhost:9477', 'example.com:80', '127.0.0.1', '127.0.0.1:99999', ':9477', '::1:9477']) {
      expect(() => parseMetricsListen(refused), refused).toThrow(expect.objectContaining({ code: 'HOSTDEV_USAGE', hint: expect.any(String) }));
    }
  });

  it('hostdev daemon --metrics-listen 0.0.0.0:PORT exits 2 before it listens anywhere', async () => {
    const host = daemonHost();
    const run = await runCliAsync(['--root', host.root, '--state-dir', host.stateDir, '--simulate', 'daemon', '--socket-dir', host.socketDir, '--metrics-listen', '0.0.0.0:9477'], { timeoutMs: 60_000 });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('0.0.0.0 is not a loopback address');
    expect(existsSync(host.socket)).toBe(false);
  });

  it('serves GET /metrics over TCP on the loopback address and nothing else', async () => {
    const host = daemonHost();
    const port = await freePort();
    const daemon = await startTestDaemon(host, { metricsListen: { host: '127.0.0.1', port } });
    await daemon.app.inject({ method: 'POST', url: '/v1/devices/0000:01:10.2/detach' });
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toContain('hostdev_devices{class="net",state="inactive"} 1');
    expect(text).toContain('hostdev_operations_total{kind="detach",outcome="completed"} 1');
    expect((await fetch(`http://127.0.0.1:${port}/v1/devices`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
    await daemon.stop();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
