import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { className } from '../core/device.js';
import type { DeviceWithOwnership } from '../manager/inventory-reports.js';

/** What /metrics exports; the device gauges are worked out from the (cached) inventory at each scrape. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly operations: Counter<'kind' | 'outcome'>;
  readonly latency: Histogram<'kind'>;
  readonly prunes: Counter;
  readonly recoveries: Counter;

  constructor(devices: () => Promise<readonly DeviceWithOwnership[]>, eventClients: () => number) {
    const registers = [this.registry];
    let scrape: Promise<readonly DeviceWithOwnership[]> | null = null;
    // One inventory read serves the three device gauges of a scrape.
    const current = (): Promise<readonly DeviceWithOwnership[]> => (scrape ??= devices().finally(() => setImmediate(() => (scrape = null))));
    new Gauge({
      name: 'hostdev_devices',
      help: 'PCI functions by class and state (active: owned by a domain; inactive: detached for nobody; host)',
      labelNames: ['class', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const device of await current()) {
          this.inc({ class: className(device.class) ?? 'unknown', state: device.table ?? 'host' });
        }
      },
    });
    new Gauge({
      name: 'hostdev_owners',
      help: 'domains that own at least one device',
      registers,
      async collect() {
        const owners = new Set((await current()).flatMap((device) => (device.owner === null ? [] : [`${device.owner.hypervisor}/${device.owner.vm}`])));
        this.set(owners.size);
      },
    });
    new Gauge({
      name: 'hostdev_vfs',
      help: 'SR-IOV VFs present per PF',
      labelNames: ['pf'],
      registers,
      async collect() {
        this.reset();
        for (const device of await current()) if (device.sriov !== null) this.set({ pf: device.address }, device.virtfns.length);
      },
    });
    this.operations = new Counter({
      name: 'hostdev_operations_total',
      help: 'operations finished, by kind and outcome (completed, failed)',
      labelNames: ['kind', 'outcome'],
      registers,
    });
    this.latency = new Histogram({
      name: 'hostdev_operation_duration_seconds',
      help: 'how long operations took, by kind',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.prunes = new Counter({ name: 'hostdev_prunes_total', help: 'table entries pruned because their device left the host', registers });
    this.recoveries = new Counter({
      name: 'hostdev_recoveries_total',
      help: 'devices repaired by recovery and operations settled after a daemon stopped mid-way',
      registers,
    });
    new Gauge({
      name: 'hostdev_event_stream_clients',
      help: 'clients connected to /v1/events',
      registers,
      collect() {
        this.set(eventClients());
      },
    });
  }
}
