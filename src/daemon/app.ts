import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { PciAddress } from '../core/address.js';
import { HostdevError, isHostdevError, type ErrorCode } from '../core/errors.js';
import { WIRE_KINDS, type DaemonOperationName } from '../core/operations.js';
import { makeOwner, sameOwner, type Owner } from '../core/tables.js';
import type { HostdevService } from '../service/hostdev-service.js';
import { hotplugJson, operationJson, unplugJson } from '../service/report-json.js';
import { isUuid, keyKind, parseKey, parsePciRef } from '../core/device-key.js';
import { isHeldBy, parseUsbSelector } from '../core/device-entry.js';
import type { EventHub } from './event-hub.js';
import { asHostdevError, errorJson, httpStatusOf, readOnlyError, RETRY_AFTER_S, stoppingError } from './http-errors.js';
import type { DaemonMetrics } from './metrics.js';
import type { OperationLog } from './operations.js';
import {
  adoptRequest,
  assignRequest,
  detachRequest,
  hotplugRequest,
  nodeRequest,
  reattachRequest,
  releaseDevices,
  releaseRequest,
  setCountRequest,
  unplugRequest,
  type MutationMode,
} from './requests.js';
import {
  API_EXTENSIONS,
  API_VERSION,
  AssignBody,
  AdoptBody,
  MdevCreateBody,
  MdevRemoveQuery,
  HotplugBody,
  UnplugBody,
  DetachBody,
  EventsQuery,
  ListQuery,
  MutationQuery,
  OperationsQuery,
  PlainBody,
  ReattachBody,
  QemuArgsQuery,
  ReleaseQuery,
  SriovBody,
  WaitQuery,
  type ErrorJson,
  type EventJson,
  type OperationRecordJson,
} from './schemas.js';

export const API_VERSION_HEADER = 'Hostdev-Api-Version';
/** A warning the CLI would print on stderr; one header line each, URI-encoded. */
export const WARNING_HEADER = 'Hostdev-Warning';
const DEFAULT_WAIT_MS = 30_000;
export const HEARTBEAT_MS = 15_000;

export interface DaemonDeps {
  /** The long-lived service (opened with cacheInventory). */
  readonly service: HostdevService;
  /** A service opened for dry runs: it reads the state into memory and changes nothing. */
  readonly openDryRun: () => Promise<HostdevService>;
  readonly operations: OperationLog;
  readonly events: EventHub;
  readonly metrics: DaemonMetrics;
  readonly logger?: Logger;
  /** True for a connection accepted on the read-only socket. */
  readonly readOnly?: (socket: Socket) => boolean;
  readonly heartbeatMs?: number;
  /** The host the daemon works on (GET /v1 says it). */
  readonly serves: { readonly root: string; readonly stateDir: string; readonly simulate: boolean };
  /** True once SIGTERM came: changes are refused (503 + Retry-After) while the daemon drains. */
  readonly stopping?: () => boolean;
}

/** What a mutation hands back: the CLI's --json of its report and the warnings it would print. */
interface Outcome {
  readonly json: unknown;
  readonly warnings: readonly string[];
}

interface MutationSpec {
  readonly operation: DaemonOperationName;
  readonly owner: Owner | null;
  /** The devices the operation names (PCI addresses or keys of any kind), recorded as keys. */
  readonly devices: readonly string[];
  readonly run: (service: HostdevService, mode: MutationMode) => Promise<Outcome>;
  /** A failure that means the request had been done already (the same assign by the same owner). */
  readonly alreadyDone?: (error: HostdevError) => Promise<boolean>;
}

/** A device as an operation record names it: its key (usb:VENDOR:PRODUCT, which picks one device, as given). */
function operationKey(ref: string): string {
  return parseUsbSelector(ref) === null ? parseKey(ref) : ref.toLowerCase();
}

function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => `${issue.path.join('.') || where}: ${issue.message}`);
  throw new HostdevError('HOSTDEV_USAGE', `invalid ${where}: ${issues.join('; ')}`, {
    hint: 'See docs/openapi.json for what this endpoint takes.',
    details: { issues: result.error.issues },
  });
}

function routeNotFound(method: string, url: string): HostdevError {
  return new HostdevError('HOSTDEV_USAGE', `no endpoint ${method} ${url}`, {
    hint: 'GET /v1 says what this daemon serves; docs/openapi.json lists every endpoint.',
    details: { method, url },
  });
}

function sendError(reply: FastifyReply, error: HostdevError, status = httpStatusOf(error)): FastifyReply {
  return sendErrorJson(reply, errorJson(error), status);
}

function sendErrorJson(reply: FastifyReply, body: ErrorJson, status = httpStatusOf({ code: body.error.code as ErrorCode })): FastifyReply {
  if (body.error.code === 'HOSTDEV_BUSY') void reply.header('Retry-After', String(RETRY_AFTER_S));
  return reply.code(status).type('application/json').send(body);
}

function withWarnings(reply: FastifyReply, warnings: readonly string[]): FastifyReply {
  if (warnings.length > 0) void reply.header(WARNING_HEADER, warnings.map((warning) => encodeURIComponent(warning)));
  return reply;
}

/** The Fastify app of the API (no listener: the daemon hands it connections, tests use inject()). */
export async function buildApp(deps: DaemonDeps): Promise<FastifyInstance> {
  const { service, operations, events, metrics } = deps;
  const app = Fastify({ logger: false, return503OnClosing: true });
  const streams = new Set<ServerResponse>();
  const serialized = new WeakMap<object, string>();
  const inFlight = new Set<Promise<unknown>>();
  app.decorate('inFlight', inFlight);

  app.addHook('onRequest', async (request, reply) => {
    void reply.header(API_VERSION_HEADER, API_VERSION);
    const method = request.method;
    if (method !== 'GET' && method !== 'HEAD') {
      if (deps.readOnly?.(request.raw.socket) ?? false) return sendError(reply, readOnlyError(method, request.url));
      if (deps.stopping?.() ?? false) return sendError(reply, stoppingError(method, request.url));
    }
    return undefined;
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, routeNotFound(request.method, request.url), 404));
  app.setErrorHandler((error, _request, reply) => {
    if (isHostdevError(error)) return sendError(reply, error);
    const status = (error as { statusCode?: number }).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const usage = new HostdevError('HOSTDEV_USAGE', `bad request: ${(error as Error).message}`, {
        hint: 'Send JSON bodies with Content-Type: application/json; see docs/openapi.json.',
      });
      return sendError(reply, usage, status);
    }
    deps.logger?.error({ err: error }, 'request failed');
    return sendError(reply, asHostdevError(error));
  });
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.end();
  });

  // ---- reads ----

  app.get('/v1', async (request) => ({
    name: 'hostdev' as const,
    apiVersion: API_VERSION,
    api_extensions: [...API_EXTENSIONS],
    readOnly: deps.readOnly?.(request.raw.socket) ?? false,
    serves: deps.serves,
  }));

  app.get('/v1/devices', async (request, reply) => {
    const query = parse(ListQuery, request.query, 'query');
    const result = await service.list({
      ...(query.class === undefined ? {} : { class: query.class }),
      ...(query.driver === undefined ? {} : { driver: query.driver }),
    });
    // The service hands back the same result while nothing changed: its JSON text is kept with it.
    let body = serialized.get(result);
    if (body === undefined) serialized.set(result, (body = JSON.stringify(result.report)));
    return withWarnings(reply, result.warnings).type('application/json; charset=utf-8').send(body);
  });

  app.get('/v1/devices/:key', async (request, reply) => {
    const key = parseKey((request.params as { key: string }).key);
    const { report, warnings } = keyKind(key) === 'pci' ? await service.show(key) : await service.showKey(key);
    return withWarnings(reply, warnings).send(report);
  });

  app.get('/v1/groups', async (_request, reply) => {
    const { report, warnings } = await service.groups();
    return withWarnings(reply, warnings).send(report);
  });

  app.get('/v1/status', async () => service.status());

  app.get('/v1/domains', async () => service.domains());

  app.get('/v1/domains/:hypervisor/:domain/qemu-args', async (request, reply) => {
    const { hypervisor, domain } = request.params as { hypervisor: string; domain: string };
    const query = parse(QemuArgsQuery, request.query, 'query');
    const report = await service.qemuArgs({
      domain,
      hypervisor,
      ...(query.machine === undefined ? {} : { machine: query.machine }),
      ...(query.firstChassis === undefined ? {} : { firstChassis: query.firstChassis }),
    });
    return withWarnings(reply, report.warnings).send(report.argv);
  });

  // ---- operations ----

  const finish = (record: OperationRecordJson & { id: string }, started: number): void => {
    operations.finish(record);
    const outcome = record.state;
    metrics.operations.inc({ kind: record.kind, outcome });
    metrics.latency.observe({ kind: record.kind }, (performance.now() - started) / 1000);
    events.publish({
      type: 'operation',
      action: 'end',
      key: record.devices[0] ?? null,
      owner: record.owner,
      details: { id: record.id, kind: record.kind, state: record.state, devices: record.devices, error: record.error?.code ?? null },
    });
    deps.logger?.info(
      {
        operation: record.id,
        kind: record.kind,
        owner: record.owner,
        devices: record.devices,
        outcome,
        noop: record.noop,
        ms: Math.round(performance.now() - started),
        ...(record.error === null ? {} : { code: record.error.code }),
      },
      `${record.kind} ${outcome}`,
    );
  };

  async function mutate(request: FastifyRequest, reply: FastifyReply, spec: MutationSpec): Promise<FastifyReply> {
    const query = parse(MutationQuery, request.query, 'query');
    const base = {
      kind: WIRE_KINDS[spec.operation],
      owner: spec.owner,
      devices: spec.devices.map(operationKey),
      createdAt: new Date().toISOString(),
      noop: false,
    };
    if (query.dryRun === true) {
      const dry = await deps.openDryRun();
      try {
        const outcome = await spec.run(dry, { dryRun: true });
        const record: OperationRecordJson = {
          ...base,
          id: null,
          state: 'completed',
          dryRun: true,
          finishedAt: new Date().toISOString(),
          result: outcome.json,
          warnings: [...outcome.warnings],
          error: null,
        };
        return reply.send(record);
      } finally {
        dry.close();
      }
    }
    const id = randomUUID();
    const running: OperationRecordJson & { id: string } = {
      ...base,
      id,
      state: 'running',
      dryRun: false,
      finishedAt: null,
      result: null,
      warnings: [],
      error: null,
    };
    operations.start(running);
    events.publish({ type: 'operation', action: 'start', key: running.devices[0] ?? null, owner: spec.owner, details: { id, kind: WIRE_KINDS[spec.operation], devices: running.devices } });
    const started = performance.now();
    const work = (async (): Promise<void> => {
      try {
        const outcome = await spec.run(service, { dryRun: false, operationId: id });
        finish({ ...running, state: 'completed', finishedAt: new Date().toISOString(), result: outcome.json, warnings: [...outcome.warnings] }, started);
      } catch (thrown) {
        const error = asHostdevError(thrown);
        if (spec.alreadyDone !== undefined && query.noop !== false && (await spec.alreadyDone(error).catch(() => false))) {
          finish({ ...running, state: 'completed', finishedAt: new Date().toISOString(), noop: true, warnings: [error.message] }, started);
        } else {
          if (!isHostdevError(thrown)) deps.logger?.error({ err: thrown, operation: id }, 'operation failed with a bug');
          finish({ ...running, state: 'failed', finishedAt: new Date().toISOString(), error: errorJson(error).error }, started);
        }
      }
    })();
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
    const done = await operations.waitFor(id, query.wait ?? DEFAULT_WAIT_MS);
    void reply.header('Location', `/v1/operations/${id}`);
    if (done === null || done.state === 'running') return reply.code(202).send(done ?? running);
    if (done.state === 'failed' && done.error !== null) {
      return sendErrorJson(reply, { error: { ...done.error, details: { ...done.error.details, operation: id } } });
    }
    return withWarnings(reply, done.warnings).send(done);
  }

  app.post('/v1/devices/:key/detach', async (request, reply) => {
    const address = parsePciRef((request.params as { key: string }).key);
    const body = parse(DetachBody, request.body ?? undefined, 'body');
    return mutate(request, reply, {
      operation: 'detach',
      owner: null,
      devices: [address],
      run: async (svc, mode) => ({ json: operationJson(await svc.detach(detachRequest(address, body, mode))), warnings: [] }),
    });
  });

  app.post('/v1/devices/:key/reattach', async (request, reply) => {
    const address = parsePciRef((request.params as { key: string }).key);
    const body = parse(ReattachBody, request.body ?? undefined, 'body');
    return mutate(request, reply, {
      operation: 'reattach',
      owner: null,
      devices: [address],
      run: async (svc, mode) => ({ json: operationJson(await svc.reattach(reattachRequest(address, body, mode))), warnings: [] }),
    });
  });

  app.post('/v1/devices/:key/reset', async (request, reply) => {
    const address = parsePciRef((request.params as { key: string }).key);
    const body = parse(PlainBody, request.body ?? undefined, 'body');
    return mutate(request, reply, {
      operation: 'reset',
      owner: null,
      devices: [address],
      run: async (svc, mode) => ({ json: operationJson(await svc.reset(nodeRequest(address, body, mode))), warnings: [] }),
    });
  });

  app.put('/v1/devices/:key/sriov', async (request, reply) => {
    const pf = parsePciRef((request.params as { key: string }).key);
    const body = parse(SriovBody, request.body, 'body');
    return mutate(request, reply, {
      operation: 'vf-set-count',
      owner: null,
      devices: [pf],
      run: async (svc, mode) => ({ json: await svc.vf.setCount(setCountRequest(pf, body, mode)), warnings: [] }),
    });
  });

  app.post('/v1/assignments', async (request, reply) => {
    const body = parse(AssignBody, request.body, 'body');
    const keys = [...body.devices, ...(body.unmanaged ?? [])].map(operationKey);
    const owner: Owner = makeOwner(body.hypervisor ?? 'qemu', body.domain);
    return mutate(request, reply, {
      operation: 'assign',
      owner,
      devices: keys,
      run: async (svc, mode) => {
        const report = await svc.assign(assignRequest(body, owner.hypervisor, mode));
        return { json: operationJson(report), warnings: report.warnings };
      },
      // The same assign again by the same owner: every device is already this owner's.
      alreadyDone: async (error) => {
        const holder = error.details.owner;
        if (error.code !== 'HOSTDEV_IN_USE' || holder == null || !sameOwner(holder, owner)) return false;
        const { active, devices = [] } = await service.status();
        const held = new Set([...active.filter((entry) => sameOwner(entry.usedBy, owner)), ...devices.filter((entry) => isHeldBy(entry, owner))].map((entry) => entry.key as string));
        return keys.every((key) => held.has(key));
      },
    });
  });

  /** hotplug and unplug: a running VM's route, its owner from the path, its devices from the body. */
  function vmRoute<B extends { readonly devices: readonly string[] }>(
    operation: 'hotplug' | 'unplug',
    parseBody: (raw: unknown) => B,
    run: (svc: HostdevService, owner: { hypervisor: string; domain: string }, body: B, mode: MutationMode) => Promise<Outcome>,
  ): void {
    app.post(`/v1/domains/:hypervisor/:domain/${operation}`, async (request, reply) => {
      const { hypervisor, domain } = request.params as { hypervisor: string; domain: string };
      const body = parseBody(request.body);
      return mutate(request, reply, {
        operation,
        owner: makeOwner(hypervisor, domain),
        devices: body.devices.map(parsePciRef),
        run: (svc, mode) => run(svc, { hypervisor, domain }, body, mode),
      });
    });
  }

  vmRoute('hotplug', (raw) => parse(HotplugBody, raw, 'body'), async (svc, owner, body, mode) => {
    const report = await svc.hotplug(hotplugRequest(owner, body, mode));
    return { json: hotplugJson(report), warnings: report.assign?.warnings ?? [] };
  });

  vmRoute('unplug', (raw) => parse(UnplugBody, raw, 'body'), async (svc, owner, body, mode) => {
    const report = await svc.unplug(unplugRequest(owner, body, mode));
    return { json: unplugJson(report), warnings: report.release.warnings };
  });

  app.post('/v1/adoptions', async (request, reply) => {
    const body = parse(AdoptBody, request.body, 'body');
    const owner: Owner = makeOwner(body.hypervisor ?? 'qemu', body.domain);
    return mutate(request, reply, {
      operation: 'adopt',
      owner,
      devices: body.devices.map(parsePciRef),
      run: async (svc, mode) => ({ json: operationJson(await svc.adopt(adoptRequest(body, owner.hypervisor, mode))), warnings: [] }),
    });
  });

  app.get('/v1/mdevs', async () => {
    const listed = await service.mdevList();
    return { devices: listed.devices, parents: listed.parents, definitions: listed.definitions };
  });

  app.post('/v1/mdevs', async (request, reply) => {
    const body = parse(MdevCreateBody, request.body, 'body');
    // the UUID is chosen here when the body has none, so that the operation record names the mdev
    const uuid = (body.uuid ?? randomUUID()).toLowerCase();
    return mutate(request, reply, {
      operation: 'mdev-create',
      owner: null,
      devices: isUuid(uuid) ? [`mdev:${uuid}`] : [],
      run: async (svc, mode) => ({ json: await svc.mdevCreate({ ...body, uuid, dryRun: mode.dryRun }), warnings: [] }),
    });
  });

  app.delete('/v1/mdevs/:uuid', async (request, reply) => {
    const { uuid } = request.params as { uuid: string };
    const query = parse(MdevRemoveQuery, request.query, 'query');
    return mutate(request, reply, {
      operation: 'mdev-remove',
      owner: null,
      devices: isUuid(uuid) ? [`mdev:${uuid.toLowerCase()}`] : [],
      run: async (svc, mode) => ({ json: await svc.mdevRemove({ uuid, undefine: query.undefine ?? false, dryRun: mode.dryRun }), warnings: [] }),
    });
  });

  app.delete('/v1/assignments/:hypervisor/:domain', async (request, reply) => {
    const { hypervisor, domain } = request.params as { hypervisor: string; domain: string };
    const query = parse(ReleaseQuery, request.query, 'query');
    const addresses = releaseDevices(query);
    return mutate(request, reply, {
      operation: 'release',
      owner: makeOwner(hypervisor, domain),
      devices: addresses ?? [],
      run: async (svc, mode) => {
        const report = await svc.release(releaseRequest({ hypervisor, domain }, query, mode));
        return { json: operationJson(report), warnings: report.warnings };
      },
    });
  });

  app.get('/v1/operations', async (request) => {
    const query = parse(OperationsQuery, request.query, 'query');
    return operations.list(query.limit ?? 100);
  });

  const operationNotFound = (id: string): HostdevError =>
    new HostdevError('HOSTDEV_USAGE', `no operation ${id} is known to this daemon`, {
      hint: 'GET /v1/operations lists the operations kept (the newest 2000 finished ones and every running one).',
      details: { operation: id },
    });

  app.get('/v1/operations/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const record = operations.get(id);
    return record === null ? sendError(reply, operationNotFound(id), 404) : reply.send(record);
  });

  app.get('/v1/operations/:id/wait', async (request, reply) => {
    const { id } = request.params as { id: string };
    const query = parse(WaitQuery, request.query, 'query');
    const record = await operations.waitFor(id, query.timeout ?? DEFAULT_WAIT_MS);
    return record === null ? sendError(reply, operationNotFound(id), 404) : reply.send(record);
  });

  // ---- events ----

  app.get('/v1/events', async (request, reply) => {
    const query = parse(EventsQuery, request.query, 'query');
    const sse = (request.headers.accept ?? '').includes('text/event-stream');
    const lastEventId = request.headers['last-event-id'];
    const since = query.since ?? (typeof lastEventId === 'string' && /^\d+$/.test(lastEventId) ? Number(lastEventId) : events.lastSeq);
    const replay = events.replay(since);
    if ('gone' in replay) {
      const error = new HostdevError('HOSTDEV_USAGE', `the events after ${since} are no longer kept (the oldest kept is ${replay.oldest})`, {
        hint: 'Read the state again (GET /v1/status, /v1/devices), then follow /v1/events without since.',
        details: { since, oldest: replay.oldest },
      });
      return sendError(reply, error, 410);
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'Content-Type': sse ? 'text/event-stream' : 'application/x-ndjson',
      'Cache-Control': 'no-store',
      [API_VERSION_HEADER]: API_VERSION,
    });
    const write = (event: EventJson): void => {
      raw.write(sse ? `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n` : `${JSON.stringify(event)}\n`);
    };
    for (const event of replay.events) write(event);
    const unsubscribe = events.subscribe(write);
    const heartbeat = setInterval(() => {
      if (sse) raw.write(': heartbeat\n\n');
      else raw.write(`${JSON.stringify({ seq: events.lastSeq, time: new Date().toISOString(), type: 'heartbeat', action: 'heartbeat', key: null, owner: null, details: {} })}\n`);
    }, deps.heartbeatMs ?? HEARTBEAT_MS);
    streams.add(raw);
    const stop = (): void => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(raw);
    };
    raw.on('close', stop);
    raw.on('finish', stop);
    return reply;
  });

  // ---- metrics ----

  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  await app.ready();
  return app;
}

/** The operations a daemon's app is running (for the drain at SIGTERM). */
export function inFlightOf(app: FastifyInstance): Set<Promise<unknown>> {
  return (app as unknown as { inFlight: Set<Promise<unknown>> }).inFlight;
}
