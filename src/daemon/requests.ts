import type { z } from 'zod';
import type { PciAddress } from '../core/address.js';
import { formatKey, parseId, parsePciRef } from '../core/device-key.js';
import { parseUsbSelector, type ScsiHostdevOptions } from '../core/device-entry.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import type {
  AdoptRequest,
  AssignRequest,
  DetachRequest,
  HotplugRequest,
  ReattachRequest,
  ReleaseRequest,
  ResetRequest,
  UnplugRequest,
  VfNetRequests,
  VfSetCountRequest,
} from '../service/hostdev-service.js';
import type { AdoptBody, AssignBody, DetachBody, HotplugBody, PlainBody, ReattachBody, ReleaseQuery, SriovBody, UnplugBody } from './schemas.js';

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

/** A device a body names, canonical: a PCI function's address, another kind's key; usb:VENDOR:PRODUCT (a selector) as given. */
function deviceRef(input: string): string {
  if (parseUsbSelector(input) !== null) return input;
  const id = parseId(input);
  return id.kind === 'pci' ? id.address : formatKey(id);
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

/** SCSI options by key, as the service takes them (JSON has no undefined: only the fields that were sent). */
function scsiOptionsOf(options: NonNullable<z.infer<typeof AssignBody>['scsiOptions']>): Record<string, ScsiHostdevOptions> {
  return Object.fromEntries(
    Object.entries(options).map(([key, o]) => [
      deviceRef(key),
      { ...(o.readOnly === undefined ? {} : { readOnly: o.readOnly }), ...(o.sgio === undefined ? {} : { sgio: o.sgio }), ...(o.rawio === undefined ? {} : { rawio: o.rawio }) },
    ]),
  );
}

/** The holder a body names (assign, hotplug, adopt): only the fields that were sent. */
function holderFields(body: { holderPid?: number | undefined; qmp?: string | undefined }): { holderPid?: number; qmp?: string } {
  return { ...(body.holderPid === undefined ? {} : { holderPid: body.holderPid }), ...(body.qmp === undefined ? {} : { qmp: body.qmp }) };
}

/** What assign and hotplug take alike from their bodies (JSON has no undefined: only the fields that were sent). */
function assignOptions(body: Omit<z.infer<typeof AssignBody>, 'domain' | 'hypervisor' | 'holderPid' | 'qmp'>) {
  const vf: VfNetRequests | undefined =
    body.vf === undefined ? undefined : Object.fromEntries(Object.entries(body.vf).map(([key, options]) => [parsePciRef(key), options as VfNetRequest]));
  return {
    addresses: body.devices.map(deviceRef),
    ...('unmanaged' in body && body.unmanaged !== undefined ? { unmanaged: body.unmanaged.map(parsePciRef) } : {}),
    ...('shareable' in body && body.shareable !== undefined ? { shareable: body.shareable.map(deviceRef) } : {}),
    ...('scsiOptions' in body && body.scsiOptions !== undefined ? { scsiOptions: scsiOptionsOf(body.scsiOptions) } : {}),
    managed: body.managed ?? true,
    withGroup: body.withGroup ?? false,
    force: body.force ?? false,
    ...(body.driver === undefined ? {} : { stubDriver: body.driver }),
    ...(vf === undefined ? {} : { vf }),
    ...deviceWait(body.waitMs),
  };
}

export function assignRequest(body: z.infer<typeof AssignBody>, hypervisor: string, mode: MutationMode): AssignRequest {
  return { domain: body.domain, hypervisor, ...assignOptions(body), ...holderFields(body), ...mode };
}

/** hotplug: the domain comes from the route, the VM's QMP socket from the body. */
export function hotplugRequest(
  owner: { readonly hypervisor: string; readonly domain: string },
  body: z.infer<typeof HotplugBody>,
  mode: MutationMode,
): HotplugRequest {
  return {
    domain: owner.domain,
    hypervisor: owner.hypervisor,
    ...assignOptions(body),
    ...holderFields(body),
    qmp: body.qmp,
    ...(body.usbBus === undefined ? {} : { usbBus: body.usbBus }),
    ...(body.scsiBus === undefined ? {} : { scsiBus: body.scsiBus }),
    ...(body.readOnly === undefined ? {} : { readOnly: body.readOnly.map(deviceRef) }),
    ...mode,
  };
}

export function unplugRequest(
  owner: { readonly hypervisor: string; readonly domain: string },
  body: z.infer<typeof UnplugBody>,
  mode: MutationMode,
): UnplugRequest {
  return {
    qmp: body.qmp,
    domain: owner.domain,
    hypervisor: owner.hypervisor,
    addresses: body.devices.map(deviceRef),
    ...(body.timeoutMs === undefined ? {} : { timeoutMs: body.timeoutMs }),
    ...mode,
  };
}

export function adoptRequest(body: z.infer<typeof AdoptBody>, hypervisor: string, mode: MutationMode): AdoptRequest {
  return {
    domain: body.domain,
    hypervisor,
    addresses: body.devices.map(parsePciRef),
    ...(body.managed === undefined ? {} : { managed: body.managed }),
    ...holderFields(body),
    ...mode,
  };
}

/** The devices a release names (`devices=KEY,KEY`, keys of any kind); undefined: every device of the domain. */
export function releaseDevices(query: z.infer<typeof ReleaseQuery>): string[] | undefined {
  return query.devices === undefined ? undefined : query.devices.split(',').filter((key) => key !== '').map(deviceRef);
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
