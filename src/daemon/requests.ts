import type { z } from 'zod';
import type { PciAddress } from '../core/address.js';
import { parsePciRef } from '../core/device-key.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import type {
  AssignRequest,
  DetachRequest,
  ReattachRequest,
  ReleaseRequest,
  ResetRequest,
  VfNetRequests,
  VfSetCountRequest,
} from '../service/hostdev-service.js';
import type { AssignBody, DetachBody, PlainBody, ReattachBody, ReleaseQuery, SriovBody } from './schemas.js';

/**
 * The daemon's request bodies as the service's request types: one function per operation, typed
 * on both sides (the body as its schema parses it, the request the service takes), so a field
 * that one side gains and the other cannot carry fails to compile (test/daemon/request-types.test.ts).
 */

/** What every mutation adds: a dry run, and the operation id the daemon names it by. */
export interface MutationMode {
  readonly dryRun: boolean;
  readonly operationId?: string;
}

/** A body's waitMs: how long device reads the kernel holds are waited for. */
function deviceWait(waitMs: number | undefined): { wait?: { timeoutMs: number } } {
  return waitMs === undefined ? {} : { wait: { timeoutMs: waitMs } };
}

export function detachRequest(device: string, body: z.infer<typeof DetachBody>, mode: MutationMode): DetachRequest {
  return {
    device,
    ...(body.driver === undefined ? {} : { stubDriver: body.driver }),
    force: body.force ?? false,
    ...deviceWait(body.waitMs),
    ...mode,
  };
}

export function reattachRequest(device: string, body: z.infer<typeof ReattachBody>, mode: MutationMode): ReattachRequest {
  return { device, force: body.force ?? false, ...deviceWait(body.waitMs), ...mode };
}

/** reset: a device and the bound on its reads. */
export function nodeRequest(device: string, body: z.infer<typeof PlainBody>, mode: MutationMode): ResetRequest {
  return { device, ...deviceWait(body.waitMs), ...mode };
}

export function setCountRequest(pf: string, body: z.infer<typeof SriovBody>, mode: MutationMode): VfSetCountRequest {
  return {
    pf,
    count: body.numVfs,
    force: body.force ?? false,
    autoprobe: body.autoprobe ?? null,
    ...(body.waitMs === undefined ? {} : { waitMs: body.waitMs }),
    ...mode,
  };
}

export function assignRequest(body: z.infer<typeof AssignBody>, hypervisor: string, mode: MutationMode): AssignRequest {
  // JSON has no undefined: the parsed options carry only the fields that were sent.
  const vf: VfNetRequests | undefined =
    body.vf === undefined ? undefined : Object.fromEntries(Object.entries(body.vf).map(([key, options]) => [parsePciRef(key), options as VfNetRequest]));
  return {
    domain: body.domain,
    hypervisor,
    addresses: body.devices.map(parsePciRef),
    managed: body.managed ?? true,
    withGroup: body.withGroup ?? false,
    force: body.force ?? false,
    ...(body.driver === undefined ? {} : { stubDriver: body.driver }),
    ...(vf === undefined ? {} : { vf }),
    ...deviceWait(body.waitMs),
    ...mode,
  };
}

/** The devices a release names (`devices=KEY,KEY`); undefined: every device of the domain. */
export function releaseDevices(query: z.infer<typeof ReleaseQuery>): PciAddress[] | undefined {
  return query.devices === undefined ? undefined : query.devices.split(',').filter((key) => key !== '').map(parsePciRef);
}

export function releaseRequest(
  owner: { readonly hypervisor: string; readonly domain: string },
  query: z.infer<typeof ReleaseQuery>,
  mode: MutationMode,
): ReleaseRequest {
  const addresses = releaseDevices(query);
  return {
    domain: owner.domain,
    hypervisor: owner.hypervisor,
    ...(addresses === undefined ? {} : { addresses }),
    force: query.force ?? false,
    ...deviceWait(query.waitMs),
    ...mode,
  };
}
