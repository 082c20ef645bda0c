import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { isHostdevError } from '../../src/core/errors.js';
import { HostdevService } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';

// A pool's device goes to the workload allocated it and back, by owner only: no sysfs write at all.
let base = '';
let root = '';
let service: HostdevService;
const VF0 = '0000:01:10.0';
const VF1 = '0000:01:10.1';
const pool = { domain: 'pool-vf', hypervisor: 'kubelet' };
const pod = { domain: 'pod:default:web:app', hypervisor: 'kubelet' };

beforeEach(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-hand-over-'));
  root = path.join(base, 'host');
  createSimulatedHost(root, { preset: 'sriov-nic' });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir: path.join(base, 'state') });
  await service.assign({ ...pool, addresses: [VF0, VF1] });
});
afterEach(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

const owners = async (): Promise<string[]> => (await service.status()).active.map((e) => `${e.address} ${e.usedBy.hypervisor}/${e.usedBy.vm} ${e.stubDriver} ${e.managed}`);
const driverOf = (address: string): string => path.basename(readlinkSync(path.join(root, 'sys/bus/pci/devices', address, 'driver')));

it('moves the owner and nothing else, and back', async () => {
  const before = await owners();
  const report = await service.handOver({ from: pool, to: pod, addresses: [`pci:${VF0}`] });
  expect(report.failures).toEqual([]);
  expect(report.plan.groups).toEqual([]);
  expect(await owners()).toEqual([`${VF0} kubelet/pod:default:web:app vfio-pci true`, before[1]]);
  await service.handOver({ from: pod, to: pool, addresses: [VF0] });
  expect(await owners()).toEqual(before);
  expect(driverOf(VF0)).toBe('vfio-pci');
});

it('refuses a device its source does not hold, before changing anything', async () => {
  await service.handOver({ from: pool, to: pod, addresses: [VF0] });
  const before = await owners();
  const error = await service.handOver({ from: pool, to: { domain: 'other', hypervisor: 'kubelet' }, addresses: [VF1, VF0] }).catch((e: unknown) => e);
  expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NOT_OWNED');
  expect((error as Error).message).toContain(`PCI device ${VF0} is not held by driver kubelet, domain pool-vf: it is in use by driver kubelet, domain pod:default:web:app`);
  expect(await owners()).toEqual(before);
});

it('a dry run changes nothing', async () => {
  const before = await owners();
  await service.handOver({ from: pool, to: pod, addresses: [VF0], dryRun: true });
  expect(await owners()).toEqual(before);
});
