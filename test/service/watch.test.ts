import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import type { LiveEvent } from '../../src/manager/watch-live.js';
import { HostdevService, type WatchNotice } from '../../src/service/hostdev-service.js';
import { createSimulatedHost, simulatedHost } from '../../src/sim-entry.js';

// HostdevService.watch(): an async iterable of typed events that prunes as it goes and ends when
// its AbortSignal fires.
const PF1 = '0000:01:00.1';
const VF = '0000:01:10.1' as PciAddress;
let base = '';
let root = '';
let service: HostdevService;

beforeEach(async () => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-service-watch-'));
  root = path.join(base, 'host');
  createSimulatedHost(root, { preset: 'sriov-nic' });
  service = await HostdevService.open({ ...simulatedHost(root), stateDir: path.join(base, 'state') });
  await service.assign({ domain: 'vm1', addresses: [VF] });
});
afterEach(() => {
  service.close();
  rmSync(base, { recursive: true, force: true });
});

describe('HostdevService.watch', () => {
  it('yields the removal of an assigned VF with its pruned entry and owner, and ends on abort', async () => {
    const stop = new AbortController();
    const events: LiveEvent[] = [];
    const notices: WatchNotice[] = [];
    const watching = (async () => {
      for await (const event of service.watch({ signal: stop.signal, intervalMs: 50, onNotice: (n) => notices.push(n) })) events.push(event);
    })();
    const until = async (probe: () => boolean): Promise<void> => {
      const end = Date.now() + 10_000;
      while (!probe()) {
        if (Date.now() > end) throw new Error(`timed out; events: ${JSON.stringify(events)}; notices: ${JSON.stringify(notices)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await until(() => notices.some((n) => n.level === 'info' && n.message.startsWith('watching PCI devices')));
    await simulatedHost(root).kernel.write(`/sys/bus/pci/devices/${PF1}/sriov_numvfs`, '0');
    await until(() => events.some((event) => event.kind === 'remove' && event.address === VF));
    expect(events.find((event) => event.kind === 'remove' && event.address === VF)).toMatchObject({
      pruned: 'active',
      owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' },
    });
    expect((await service.status()).active).toEqual([]);
    stop.abort();
    await watching;
  });

  it('ends at once when its signal is already aborted', async () => {
    const stop = new AbortController();
    stop.abort();
    const events: LiveEvent[] = [];
    for await (const event of service.watch({ signal: stop.signal, intervalMs: 50 })) events.push(event);
    expect(events).toEqual([]);
  });
});
