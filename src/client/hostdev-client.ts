import http from 'node:http';
import { HostdevError, type HostdevErrorDetails } from '../core/errors.js';
import type { WireKind } from '../core/operations.js';

export const DEFAULT_SOCKET = '/run/hostdev/hostdev.sock';

export interface HostdevClientOptions {
  /** Default /run/hostdev/hostdev.sock (hostdev-ro.sock for reads only). */
  readonly socketPath?: string;
  /** The bound on one HTTP exchange (default 120 s). */
  readonly timeoutMs?: number;
}

/** An answer with the warnings the command line would print on stderr. */
export interface ClientResult<T> {
  readonly report: T;
  readonly warnings: readonly string[];
}

export interface ApiIndexJson {
  readonly name: 'hostdev';
  readonly apiVersion: string;
  readonly api_extensions: readonly string[];
  readonly readOnly: boolean;
  /** The host this daemon works on: the command line uses it only when these equal its own. */
  readonly serves?: { readonly root: string; readonly stateDir: string; readonly simulate: boolean };
}

/** A change as the daemon records it; `result` is the command's `--json`. */
export interface OperationJson<R = unknown> {
  readonly id: string | null;
  readonly kind: WireKind;
  readonly state: 'running' | 'completed' | 'failed';
  readonly dryRun: boolean;
  readonly owner: { readonly driver: string; readonly domain: string; readonly hypervisor: string; readonly vm: string } | null;
  readonly devices: readonly string[];
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly result: R | null;
  readonly warnings: readonly string[];
  readonly error: { readonly code: string; readonly message: string; readonly hint: string | null; readonly details: HostdevErrorDetails } | null;
  readonly noop: boolean;
}

export interface MutationOptions {
  readonly dryRun?: boolean;
  /** How long the daemon waits before it answers 202 (the client then waits on /wait). */
  readonly waitMs?: number;
  /** false: a repeated assign is the HOSTDEV_IN_USE error (as the command line reports it), not a 200 no-op. */
  readonly noop?: boolean;
}

export interface AssignBodyJson {
  readonly domain: string;
  readonly hypervisor?: string;
  readonly devices: readonly string[];
  /** PCI functions assigned unmanaged (already on a stub) whatever `managed` says. */
  readonly unmanaged?: readonly string[];
  /** SCSI devices of `devices` taken shareable (libvirt's <shareable/>). */
  readonly shareable?: readonly string[];
  readonly managed?: boolean;
  readonly withGroup?: boolean;
  readonly driver?: string;
  readonly force?: boolean;
  readonly vf?: Readonly<Record<string, { mac?: string; vlan?: number; spoofchk?: boolean; trust?: boolean }>>;
  readonly waitMs?: number;
  readonly holderPid?: number;
  readonly qmp?: string;
}

interface Raw {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: unknown;
}

/**
 * A typed client of the hostdev daemon over its unix socket: every endpoint of /v1, answers as
 * the command line's `--json`, errors thrown as the HostdevError the daemon reported (same code,
 * message, hint and details, so the same exit code). One keep-alive connection pool per client.
 */
export class HostdevClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;

  constructor(options: HostdevClientOptions = {}) {
    this.socketPath = options.socketPath ?? DEFAULT_SOCKET;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.agent = new http.Agent({ keepAlive: true });
  }

  /** A client when a daemon answers on the socket, else null (no daemon: work directly). */
  static async connect(options: HostdevClientOptions = {}): Promise<HostdevClient | null> {
    const client = new HostdevClient(options);
    try {
      await client.api();
      return client;
    } catch {
      client.close();
      return null;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  api(): Promise<ApiIndexJson> {
    return this.get<ApiIndexJson>('/v1').then((r) => r.report);
  }

  list<T = unknown[]>(filter: { class?: string; driver?: string } = {}): Promise<ClientResult<T>> {
    return this.get<T>(`/v1/devices${query({ class: filter.class, driver: filter.driver })}`);
  }

  show<T = unknown>(key: string): Promise<ClientResult<T>> {
    return this.get<T>(`/v1/devices/${encodeURIComponent(key)}`);
  }

  groups<T = unknown[]>(): Promise<ClientResult<T>> {
    return this.get<T>('/v1/groups');
  }

  status<T = unknown>(): Promise<ClientResult<T>> {
    return this.get<T>('/v1/status');
  }

  /** The domains that hold devices, with their holders (`hostdev domains --json`). */
  domains<T = unknown[]>(): Promise<T> {
    return this.get<T>('/v1/domains').then((r) => r.report);
  }

  qemuArgs(request: { domain: string; hypervisor?: string; machine?: 'q35' | 'pc'; firstChassis?: number }): Promise<ClientResult<string[]>> {
    const hypervisor = request.hypervisor ?? 'qemu';
    return this.get<string[]>(
      `/v1/domains/${encodeURIComponent(hypervisor)}/${encodeURIComponent(request.domain)}/qemu-args${query({ machine: request.machine, firstChassis: request.firstChassis })}`,
    );
  }

  detach(key: string, body: { driver?: string; force?: boolean; waitMs?: number } = {}, options: MutationOptions = {}): Promise<OperationJson> {
    return this.mutate('POST', `/v1/devices/${encodeURIComponent(key)}/detach`, body, options);
  }

  reattach(key: string, body: { force?: boolean; waitMs?: number } = {}, options: MutationOptions = {}): Promise<OperationJson> {
    return this.mutate('POST', `/v1/devices/${encodeURIComponent(key)}/reattach`, body, options);
  }

  reset(key: string, body: { waitMs?: number } = {}, options: MutationOptions = {}): Promise<OperationJson> {
    return this.mutate('POST', `/v1/devices/${encodeURIComponent(key)}/reset`, body, options);
  }

  setVfCount(pf: string, body: { numVfs: number; force?: boolean; autoprobe?: boolean | null; waitMs?: number }, options: MutationOptions = {}): Promise<OperationJson> {
    return this.mutate('PUT', `/v1/devices/${encodeURIComponent(pf)}/sriov`, body, options);
  }

  assign(body: AssignBodyJson, options: MutationOptions = {}): Promise<OperationJson> {
    return this.mutate('POST', '/v1/assignments', body, options);
  }

  /** Assigns devices and adds them to the running VM over the daemon's QMP connection (`hostdev hotplug`). */
  hotplug(body: AssignBodyJson & { readonly qmp: string }, options: MutationOptions = {}): Promise<OperationJson> {
    const { domain, hypervisor, ...rest } = body;
    return this.mutate('POST', `/v1/domains/${encodeURIComponent(hypervisor ?? 'qemu')}/${encodeURIComponent(domain)}/hotplug`, rest, options);
  }

  /** Takes devices out of the running VM and releases them (`hostdev unplug`). */
  unplug(
    request: { qmp: string; domain: string; hypervisor?: string; devices: readonly string[]; timeoutMs?: number },
    options: MutationOptions = {},
  ): Promise<OperationJson> {
    const { domain, hypervisor, ...rest } = request;
    return this.mutate('POST', `/v1/domains/${encodeURIComponent(hypervisor ?? 'qemu')}/${encodeURIComponent(domain)}/unplug`, rest, options);
  }

  /** Marks devices a running VM holds as its domain's (`hostdev adopt`); nothing on the host changes. */
  adopt(
    body: { domain: string; hypervisor?: string; devices: readonly string[]; managed?: boolean; holderPid?: number; qmp?: string },
    options: MutationOptions = {},
  ): Promise<OperationJson> {
    return this.mutate('POST', '/v1/adoptions', body, options);
  }

  release(request: { domain: string; hypervisor?: string; devices?: readonly string[]; force?: boolean; waitMs?: number }, options: MutationOptions = {}): Promise<OperationJson> {
    const path = `/v1/assignments/${encodeURIComponent(request.hypervisor ?? 'qemu')}/${encodeURIComponent(request.domain)}`;
    return this.mutate('DELETE', `${path}${query({ devices: request.devices?.join(','), force: request.force === true ? 'true' : undefined, waitMs: request.waitMs })}`, undefined, options);
  }

  /** The mediated devices, their parents' types and the definitions (`hostdev mdev list --json`). */
  mdevs<T = unknown>(): Promise<ClientResult<T>> {
    return this.get<T>('/v1/mdevs');
  }

  /** Makes a mediated device (`hostdev mdev create`); the operation record names its key. */
  mdevCreate(
    body: { parent: string; type: string; uuid?: string; attrs?: readonly { name: string; value: string }[]; persist?: boolean; start?: 'auto' | 'manual' },
    options: MutationOptions = {},
  ): Promise<OperationJson> {
    return this.mutate('POST', '/v1/mdevs', body, options);
  }

  /** Removes a mediated device no domain holds (`hostdev mdev remove`). */
  mdevRemove(uuid: string, request: { undefine?: boolean } = {}, options: MutationOptions = {}): Promise<OperationJson> {
    return this.mutate('DELETE', `/v1/mdevs/${encodeURIComponent(uuid)}${query({ undefine: request.undefine === true ? 'true' : undefined })}`, undefined, options);
  }

  operations(limit?: number): Promise<OperationJson[]> {
    return this.get<OperationJson[]>(`/v1/operations${query({ limit })}`).then((r) => r.report);
  }

  operation(id: string): Promise<OperationJson> {
    return this.get<OperationJson>(`/v1/operations/${encodeURIComponent(id)}`).then((r) => r.report);
  }

  waitFor(id: string, timeoutMs = 30_000): Promise<OperationJson> {
    return this.get<OperationJson>(`/v1/operations/${encodeURIComponent(id)}/wait${query({ timeout: timeoutMs })}`).then((r) => r.report);
  }

  /** Any request; a non-2xx answer is thrown as the HostdevError it carries. */
  async request(method: string, path: string, body?: unknown): Promise<Raw> {
    const raw = await this.exchange(method, path, body);
    if (raw.status >= 400) throw errorOf(raw, method, path);
    return raw;
  }

  private async get<T>(path: string): Promise<ClientResult<T>> {
    const raw = await this.request('GET', path);
    return { report: raw.body as T, warnings: warningsOf(raw.headers) };
  }

  /** Sends a change; a 202 is followed on /wait until the operation ends. A failed one is thrown. */
  private async mutate(method: string, path: string, body: unknown, options: MutationOptions): Promise<OperationJson> {
    const url = `${path}${path.includes('?') ? '&' : '?'}${query({ dryRun: options.dryRun ? 'true' : undefined, wait: options.waitMs, noop: options.noop === false ? 'false' : undefined }).slice(1)}`.replace(/[?&]$/, '');
    let op = (await this.request(method, url, body)).body as OperationJson;
    while (op.state === 'running' && op.id !== null) op = await this.waitFor(op.id);
    if (op.state === 'failed' && op.error !== null) throw HostdevError.fromJSON(op.error);
    return op;
  }

  private exchange(method: string, path: string, body: unknown): Promise<Raw> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          path,
          method,
          agent: this.agent,
          timeout: this.timeoutMs,
          headers: payload === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json') && text !== '') {
              try {
                parsed = JSON.parse(text);
              } catch (error) {
                reject(error);
                return;
              }
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer from the hostdev daemon on ${this.socketPath} within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter((entry): entry is [string, string | number] => entry[1] !== undefined);
  return entries.length === 0 ? '' : `?${entries.map(([key, value]) => `${key}=${encodeURIComponent(String(value))}`).join('&')}`;
}

function warningsOf(headers: http.IncomingHttpHeaders): string[] {
  const raw = headers['hostdev-warning'];
  if (raw === undefined) return [];
  // Node.js joins repeated headers with ", "; each warning is URI-encoded, so a comma in one is %2C.
  return (Array.isArray(raw) ? raw : raw.split(', ')).map((warning) => decodeURIComponent(warning));
}

function errorOf(raw: Raw, method: string, path: string): HostdevError {
  const error = (raw.body as { error?: { code: string; message: string; hint: string | null; details: HostdevErrorDetails } } | null)?.error;
  if (error !== undefined) return HostdevError.fromJSON(error);
  return HostdevError.fromJSON({
    code: 'HOSTDEV_INTERNAL',
    message: `${method} ${path}: HTTP ${raw.status} from the hostdev daemon without an error body`,
    hint: 'This is a bug in hostdev or something else answers on the socket; check the daemon log.',
  });
}
