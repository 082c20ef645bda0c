import { z } from 'zod';
import { ERROR_CATALOG } from '../core/errors.js';
import { httpStatusOf } from './http-errors.js';
import {
  API_VERSION,
  ApiIndex,
  AssignBody,
  AdoptBody,
  MdevCreateBody,
  MdevRemoveQuery,
  HotplugBody,
  UnplugBody,
  DetachBody,
  ErrorBody,
  EventRecord,
  EventsQuery,
  ListQuery,
  MutationQuery,
  OperationRecord,
  OperationsQuery,
  PlainBody,
  ReattachBody,
  QemuArgsQuery,
  ReleaseQuery,
  COMPONENTS,
  Responses,
  SriovBody,
  WaitQuery,
} from './schemas.js';

type Method = 'get' | 'post' | 'put' | 'delete';


interface Route {
  readonly method: Method;
  readonly path: string;
  readonly summary: string;
  readonly query?: z.ZodObject;
  readonly body?: z.ZodType;
  readonly ok: z.ZodType;
  /** Answers 202 + Location while it runs. */
  readonly operation?: boolean;
  readonly contentType?: string;
}



/** Every endpoint of /v1, with the schemas app.ts checks requests with. */
export const ROUTES: readonly Route[] = [
  { method: 'get', path: '/v1', summary: 'the API version and its extensions', ok: ApiIndex },
  { method: 'get', path: '/v1/devices', summary: 'every PCI function (hostdev list --json)', query: ListQuery, ok: Responses.devices },
  { method: 'get', path: '/v1/devices/{key}', summary: 'one PCI function (hostdev show --json)', ok: Responses.device },
  { method: 'get', path: '/v1/groups', summary: 'IOMMU groups (hostdev groups --json)', ok: Responses.groups },
  { method: 'get', path: '/v1/status', summary: 'both tables (hostdev status --json)', ok: Responses.status },
  { method: 'get', path: '/v1/domains', summary: 'domains with their devices and holders (hostdev domains --json)', ok: Responses.domains },
  { method: 'get', path: '/v1/domains/{hypervisor}/{domain}/qemu-args', summary: "QEMU arguments for a domain's devices", query: QemuArgsQuery, ok: Responses.qemuArgs },
  { method: 'post', path: '/v1/devices/{key}/detach', summary: 'host driver -> stub driver; inactive table', query: MutationQuery, body: DetachBody, ok: OperationRecord, operation: true },
  { method: 'post', path: '/v1/devices/{key}/reattach', summary: 'stub driver -> original driver', query: MutationQuery, body: ReattachBody, ok: OperationRecord, operation: true },
  { method: 'post', path: '/v1/devices/{key}/reset', summary: 'reset the function', query: MutationQuery, body: PlainBody, ok: OperationRecord, operation: true },
  { method: 'put', path: '/v1/devices/{key}/sriov', summary: 'change the VF count of a PF (vf set-count)', query: MutationQuery, body: SriovBody, ok: OperationRecord, operation: true },
  { method: 'post', path: '/v1/assignments', summary: 'give devices to a domain, all or nothing', query: MutationQuery, body: AssignBody, ok: OperationRecord, operation: true },
  { method: 'post', path: '/v1/domains/{hypervisor}/{domain}/hotplug', summary: 'assign devices and add them to the running VM over QMP (hotplug)', query: MutationQuery, body: HotplugBody, ok: OperationRecord, operation: true },
  { method: 'post', path: '/v1/domains/{hypervisor}/{domain}/unplug', summary: 'take devices out of the running VM over QMP and release them (unplug)', query: MutationQuery, body: UnplugBody, ok: OperationRecord, operation: true },
  { method: 'post', path: '/v1/adoptions', summary: 'mark devices a running VM holds as its domain\'s, touching nothing (adopt)', query: MutationQuery, body: AdoptBody, ok: OperationRecord, operation: true },
  { method: 'delete', path: '/v1/assignments/{hypervisor}/{domain}', summary: "take a domain's devices back", query: ReleaseQuery, ok: OperationRecord, operation: true },
  { method: 'get', path: '/v1/mdevs', summary: 'the mediated devices, their parents\' types and the definitions (mdev list)', ok: Responses.mdevs },
  { method: 'post', path: '/v1/mdevs', summary: 'make a mediated device, with its attributes and, with persist, its definition (mdev create)', query: MutationQuery, body: MdevCreateBody, ok: OperationRecord, operation: true },
  { method: 'delete', path: '/v1/mdevs/{uuid}', summary: 'remove a mediated device no domain holds (mdev remove)', query: MdevRemoveQuery, ok: OperationRecord, operation: true },
  { method: 'get', path: '/v1/operations', summary: 'operations, newest first', query: OperationsQuery, ok: Responses.operations },
  { method: 'get', path: '/v1/operations/{id}', summary: 'one operation', ok: OperationRecord },
  { method: 'get', path: '/v1/operations/{id}/wait', summary: 'one operation, once it ends or the timeout passes', query: WaitQuery, ok: OperationRecord },
  { method: 'get', path: '/v1/events', summary: 'events: NDJSON, or SSE with Accept: text/event-stream (Last-Event-ID)', query: EventsQuery, ok: EventRecord, contentType: 'application/x-ndjson' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', ok: z.string(), contentType: 'text/plain' },
];

const SCHEMA_URI = (id: string): string => `#/components/schemas/${id}`;

/** The components' JSON schemas, generated together so one refers to another by $ref. */
function componentSchemas(): Record<string, unknown> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, { io: 'input', unrepresentable: 'any', uri: SCHEMA_URI });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _schema, id: _id, ...rest } = schema as Record<string, unknown>;
      return [id, rest];
    }),
  );
}

/** A component by $ref, else the schema inline. */
function refOrSchema(schema: z.ZodType): unknown {
  const id = Object.entries(COMPONENTS).find(([, component]) => component === schema)?.[0];
  return id === undefined ? schemaOf(schema) : { $ref: SCHEMA_URI(id) };
}

function schemaOf(schema: z.ZodType): unknown {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(route: Route): unknown[] {
  const inPath = [...route.path.matchAll(/\{(\w+)\}/g)].map((match) => ({
    name: match[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
    ...(match[1] === 'key' ? { description: 'pci:0000:01:10.0 or a bare PCI address' } : {}),
  }));
  const inQuery = Object.entries(route.query?.shape ?? {}).map(([name, schema]) => {
    const json = schemaOf(schema as z.ZodType) as Record<string, unknown>;
    const { description, ...rest } = json;
    return { name, in: 'query', required: false, schema: rest, ...(description === undefined ? {} : { description }) };
  });
  return [...inPath, ...inQuery];
}

/** The HTTP statuses errors can have, with the codes that give each. */
function errorResponses(): Record<string, unknown> {
  const byStatus = new Map<number, string[]>();
  for (const code of Object.keys(ERROR_CATALOG) as Array<keyof typeof ERROR_CATALOG>) {
    const status = httpStatusOf({ code });
    if (status < 400) continue;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].sort(([a], [b]) => a - b).map(([status, codes]) => [
      String(status),
      { description: codes.join(', '), content: { 'application/json': { schema: refOrSchema(ErrorBody) } } },
    ]),
  );
}

/** References to the error responses (one copy each in components). */
function errorRefs(): Record<string, unknown> {
  return Object.fromEntries(Object.keys(errorResponses()).map((status) => [status, { $ref: `#/components/responses/Error${status}` }]));
}

function errorComponents(): Record<string, unknown> {
  return Object.fromEntries(Object.entries(errorResponses()).map(([status, response]) => [`Error${status}`, response]));
}

/** The OpenAPI 3.1 document of the API, generated from the zod schemas (docs/openapi.json). */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const errors = errorRefs();
  for (const route of ROUTES) {
    const responses: Record<string, unknown> = {
      '200': { description: 'OK', content: { [route.contentType ?? 'application/json']: { schema: refOrSchema(route.ok) } } },
      ...(route.operation
        ? { '202': { description: 'still running: Location names the operation', content: { 'application/json': { schema: refOrSchema(OperationRecord) } } } }
        : {}),
      ...(route.path === '/v1/events' ? { '410': { description: 'the events after since are no longer kept' } } : {}),
      ...(route.method === 'get' ? {} : { '403': { description: 'HOSTDEV_READ_ONLY: sent to hostdev-ro.sock' } }),
      ...errors,
    };
    (paths[route.path] ??= {})[route.method] = {
      summary: route.summary,
      parameters: parameters(route),
      ...(route.body === undefined ? {} : { requestBody: { required: !(route.body instanceof z.ZodDefault), content: { 'application/json': { schema: schemaOf(route.body) } } } }),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'hostdev', version: API_VERSION, description: 'hostdev daemon API over unix sockets (hostdev.sock, hostdev-ro.sock)' },
    paths,
    components: { schemas: componentSchemas(), responses: errorComponents() },
  };
}
