import http from 'node:http';
import { isIP } from 'node:net';
import { HostdevError } from '../core/errors.js';
import type { DaemonMetrics } from './metrics.js';

/** Where `--metrics-listen` serves GET /metrics over TCP: a loopback address and a port. */
export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.split('.')[0] === '127';
  return isIP(host) === 6 && host === '::1';
}

/**
 * `--metrics-listen HOST:PORT` (`[::1]:PORT` for IPv6): only a loopback address is taken, since the
 * metrics name the host's devices and owners and the TCP listener has no access control of its own.
 */
export function parseMetricsListen(input: string): MetricsAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(input);
  const host = match?.[1] ?? match?.[2];
  const port = Number(match?.[3]);
  if (match === null || host === undefined || port > 65535) {
    throw new HostdevError('HOSTDEV_USAGE', `--metrics-listen takes ADDRESS:PORT, not "${input}"`, {
      hint: 'Give a loopback address and a port, e.g. --metrics-listen 127.0.0.1:9477 or [::1]:9477.',
      details: { value: input },
    });
  }
  if (!isLoopback(host)) {
    throw new HostdevError('HOSTDEV_USAGE', `--metrics-listen ${input}: ${host} is not a loopback address`, {
      hint: 'The metrics are served on 127.0.0.0/8 or ::1 only; a scraper elsewhere reaches them through a proxy, or reads GET /metrics on hostdev-ro.sock.',
      details: { value: input, host },
    });
  }
  return { host, port };
}

/** A TCP server that answers GET (and HEAD) /metrics and nothing else (404; other methods 405). */
export async function listenForMetrics(address: MetricsAddress, metrics: DaemonMetrics): Promise<http.Server> {
  const server = http.createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'Content-Type': 'text/plain' }).end('only /metrics is served here\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('GET /metrics only\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => response.writeHead(200, { 'Content-Type': metrics.registry.contentType }).end(request.method === 'HEAD' ? undefined : text),
      (error: unknown) => response.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${(error as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
