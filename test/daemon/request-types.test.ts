import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import type { AdoptBody, AssignBody, DetachBody, HotplugBody, PlainBody, ReattachBody, ReleaseQuery, SriovBody, UnplugBody } from '../../src/daemon/schemas.js';
import {
  adoptRequest,
  assignRequest,
  detachRequest,
  hotplugRequest,
  nodeRequest,
  reattachRequest,
  releaseRequest,
  setCountRequest,
  unplugRequest,
} from '../../src/daemon/requests.js';
import type { HostdevService } from '../../src/service/hostdev-service.js';

// Compile-time (npx tsc): each request builder takes the body as its schema parses it and gives
// exactly what the service's operation takes; a body field added to a schema fails here until
// the builder carries it over (the key lists below), and a request type that changes fails the
// builder's return type.
type Request<K extends 'detach' | 'reattach' | 'reset' | 'assign' | 'release' | 'adopt' | 'hotplug' | 'unplug'> = Parameters<HostdevService[K]>[0];

describe('the daemon builds the service request types from its schemas', () => {
  it('one builder per operation, typed on both sides', () => {
    expectTypeOf(detachRequest).returns.toEqualTypeOf<Request<'detach'>>();
    expectTypeOf(reattachRequest).returns.toEqualTypeOf<Request<'reattach'>>();
    expectTypeOf(nodeRequest).returns.toEqualTypeOf<Request<'reset'>>();
    expectTypeOf(assignRequest).returns.toEqualTypeOf<Request<'assign'>>();
    expectTypeOf(releaseRequest).returns.toEqualTypeOf<Request<'release'>>();
    expectTypeOf(setCountRequest).returns.toEqualTypeOf<Parameters<HostdevService['vf']['setCount']>[0]>();
    expectTypeOf(adoptRequest).returns.toEqualTypeOf<Request<'adopt'>>();
    expectTypeOf(hotplugRequest).returns.toEqualTypeOf<Request<'hotplug'>>();
    expectTypeOf(unplugRequest).returns.toEqualTypeOf<Request<'unplug'>>();
    expectTypeOf(detachRequest).parameter(1).toEqualTypeOf<z.infer<typeof DetachBody>>();
    expectTypeOf(reattachRequest).parameter(1).toEqualTypeOf<z.infer<typeof ReattachBody>>();
    expectTypeOf(nodeRequest).parameter(1).toEqualTypeOf<z.infer<typeof PlainBody>>();
    expectTypeOf(setCountRequest).parameter(1).toEqualTypeOf<z.infer<typeof SriovBody>>();
    expectTypeOf(assignRequest).parameter(0).toEqualTypeOf<z.infer<typeof AssignBody>>();
    expectTypeOf(releaseRequest).parameter(1).toEqualTypeOf<z.infer<typeof ReleaseQuery>>();
    expectTypeOf(adoptRequest).parameter(0).toEqualTypeOf<z.infer<typeof AdoptBody>>();
    expectTypeOf(hotplugRequest).parameter(1).toEqualTypeOf<z.infer<typeof HotplugBody>>();
    expectTypeOf(unplugRequest).parameter(1).toEqualTypeOf<z.infer<typeof UnplugBody>>();
    expectTypeOf<keyof z.infer<typeof DetachBody>>().toEqualTypeOf<'driver' | 'force' | 'waitMs'>();
    expectTypeOf<keyof z.infer<typeof ReattachBody>>().toEqualTypeOf<'force' | 'waitMs'>();
    expectTypeOf<keyof z.infer<typeof PlainBody>>().toEqualTypeOf<'waitMs'>();
    expectTypeOf<keyof z.infer<typeof SriovBody>>().toEqualTypeOf<'numVfs' | 'force' | 'autoprobe' | 'waitMs'>();
    expectTypeOf<keyof z.infer<typeof AssignBody>>().toEqualTypeOf<
      'domain' | 'hypervisor' | 'devices' | 'unmanaged' | 'shareable' | 'scsiOptions' | 'managed' | 'withGroup' | 'driver' | 'force' | 'vf' | 'waitMs' | 'holderPid' | 'qmp'
    >();
    expectTypeOf<keyof z.infer<typeof HotplugBody>>().toEqualTypeOf<
      'devices' | 'managed' | 'withGroup' | 'driver' | 'force' | 'vf' | 'waitMs' | 'holderPid' | 'qmp' | 'usbBus' | 'scsiBus' | 'readOnly'
    >();
    expectTypeOf<keyof z.infer<typeof UnplugBody>>().toEqualTypeOf<'qmp' | 'devices' | 'timeoutMs'>();
    expectTypeOf<keyof z.infer<typeof AdoptBody>>().toEqualTypeOf<'domain' | 'hypervisor' | 'devices' | 'managed' | 'holderPid' | 'qmp'>();
    expectTypeOf<keyof z.infer<typeof ReleaseQuery>>().toEqualTypeOf<'dryRun' | 'wait' | 'noop' | 'devices' | 'force' | 'waitMs'>();
    // Fields of the same name mean the same thing on both sides.
    expectTypeOf<NonNullable<z.infer<typeof AssignBody>['managed']>>().toEqualTypeOf<NonNullable<Request<'assign'>['managed']>>();
    expectTypeOf<NonNullable<z.infer<typeof AssignBody>['withGroup']>>().toEqualTypeOf<NonNullable<Request<'assign'>['withGroup']>>();
    expectTypeOf<NonNullable<z.infer<typeof DetachBody>['force']>>().toEqualTypeOf<NonNullable<Request<'detach'>['force']>>();
    expectTypeOf<NonNullable<z.infer<typeof ReattachBody>['force']>>().toEqualTypeOf<NonNullable<Request<'reattach'>['force']>>();
    expectTypeOf<NonNullable<z.infer<typeof ReleaseQuery>['force']>>().toEqualTypeOf<NonNullable<Request<'release'>['force']>>();
    expectTypeOf<NonNullable<z.infer<typeof AssignBody>['holderPid']>>().toEqualTypeOf<NonNullable<Request<'assign'>['holderPid']>>();
    expectTypeOf<NonNullable<z.infer<typeof AssignBody>['qmp']>>().toEqualTypeOf<NonNullable<Request<'assign'>['qmp']>>();
    expectTypeOf<NonNullable<z.infer<typeof AdoptBody>['managed']>>().toEqualTypeOf<NonNullable<Request<'adopt'>['managed']>>();
    expectTypeOf<NonNullable<z.infer<typeof UnplugBody>['timeoutMs']>>().toEqualTypeOf<NonNullable<Request<'unplug'>['timeoutMs']>>();
  });

  it('every field a body sends reaches the request', () => {
    const mode = { dryRun: true, operationId: 'op-1' };
    expect(detachRequest('0000:01:10.0', { driver: 'vfio-pci', force: true, waitMs: 5 }, mode)).toEqual({
      device: '0000:01:10.0', stubDriver: 'vfio-pci', force: true, wait: { timeoutMs: 5 }, ...mode,
    });
    expect(reattachRequest('0000:01:10.0', { force: true, waitMs: 6 }, mode)).toEqual({ device: '0000:01:10.0', force: true, wait: { timeoutMs: 6 }, ...mode });
    expect(nodeRequest('0000:01:10.0', { waitMs: 7 }, mode)).toEqual({ device: '0000:01:10.0', wait: { timeoutMs: 7 }, ...mode });
    expect(setCountRequest('0000:01:00.0', { numVfs: 3, force: true, autoprobe: false, waitMs: 9 }, mode)).toEqual({
      pf: '0000:01:00.0', count: 3, force: true, autoprobe: false, waitMs: 9, ...mode,
    });
    const body = {
      domain: 'vm1', hypervisor: 'xen', devices: ['pci:0000:01:10.0'], unmanaged: ['01:10.1'], managed: false, withGroup: true, driver: 'vfio-pci',
      force: true, vf: { 'pci:0000:01:10.0': { mac: '52:54:00:00:00:01', vlan: 10 } }, waitMs: 3, holderPid: 4242, qmp: '/run/vm1.qmp',
    };
    const assigned = {
      domain: 'vm1', hypervisor: 'xen', addresses: ['0000:01:10.0'], unmanaged: ['0000:01:10.1'], managed: false, withGroup: true, stubDriver: 'vfio-pci', force: true,
      vf: { '0000:01:10.0': { mac: '52:54:00:00:00:01', vlan: 10 } }, wait: { timeoutMs: 3 }, holderPid: 4242, qmp: '/run/vm1.qmp', ...mode,
    };
    expect(assignRequest(body, 'xen', mode)).toEqual(assigned);
    const { domain: _domain, hypervisor: _hypervisor, unmanaged: _unmanaged, ...hotplugBody } = body;
    const { unmanaged: _none, ...hotplugged } = assigned;
    expect(hotplugRequest({ hypervisor: 'xen', domain: 'vm1' }, hotplugBody, mode)).toEqual(hotplugged);
    expect(unplugRequest({ hypervisor: 'qemu', domain: 'vm1' }, { qmp: '/run/vm1.qmp', devices: ['01:10.0'], timeoutMs: 6 }, mode)).toEqual({
      qmp: '/run/vm1.qmp', domain: 'vm1', hypervisor: 'qemu', addresses: ['0000:01:10.0'], timeoutMs: 6, ...mode,
    });
    expect(adoptRequest({ domain: 'vm1', devices: ['pci:0000:01:10.0'], managed: false, holderPid: 4242, qmp: '/run/vm1.qmp' }, 'qemu', mode)).toEqual({
      domain: 'vm1', hypervisor: 'qemu', addresses: ['0000:01:10.0'], managed: false, holderPid: 4242, qmp: '/run/vm1.qmp', ...mode,
    });
    expect(releaseRequest({ hypervisor: 'qemu', domain: 'vm1' }, { devices: '01:10.0,,pci:0000:01:10.2,mdev:4B20D080-1B54-4048-85B3-A6A62D165C01', force: true, waitMs: 4 }, mode)).toEqual({
      domain: 'vm1', hypervisor: 'qemu', addresses: ['0000:01:10.0', '0000:01:10.2', 'mdev:4b20d080-1b54-4048-85b3-a6a62d165c01'], force: true, wait: { timeoutMs: 4 }, ...mode,
    });
  });
});
