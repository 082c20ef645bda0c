import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { HostdevError, isHostdevError } from '../core/errors.js';
import type { LiveEvent } from '../manager/watch-live.js';
import type { RecoveryReport } from '../manager/recovery.js';
import type { HostdevService, HostdevServiceOptions } from '../service/hostdev-service.js';
import type { QmpEvent } from '../qmp/qmp-client.js';
import { addressOfDeviceId } from '../core/qemu-args.js';
import { VmMonitors } from './vm-monitors.js';
import { buildApp, inFlightOf } from './app.js';
import { pciKey } from '../core/device-key.js';
import { makeOwner, sameOwner, type Owner, type Tables } from '../core/tables.js';
import { operationOfKind } from '../core/operations.js';
import { EventHub, type NewEvent } from './event-hub.js';
import { errorJson } from './http-errors.js';
import { activatedListeners, listenOnDir, type Listener } from './listen.js';
import { DaemonMetrics } from './metrics.js';
import { listenForMetrics, type MetricsAddress } from './metrics-listen.js';
import { OperationLog } from './operations.js';
import type { OperationRecordJson } from './schemas.js';

export interface DaemonOptions {
  /** Where hostdev.sock and hostdev-ro.sock are created (not used when systemd passes the sockets). */
  readonly socketDir: string;
  readonly stateDir: string;
  /** The host it works on, as GET /v1 says (absolute root and state dir, simulate mode). */
  readonly serves: { readonly root: string; readonly stateDir: string; readonly simulate: boolean };
  /** Opens the service as the command line's options say (root, kernel, host use). */
  readonly open: (mode: Pick<HostdevServiceOptions, 'dryRun' | 'cacheInventory' | 'probeQmp' | 'connectQmp'>) => Promise<HostdevService>;
  /** How often the holders of domains are checked (default 200 ms): a holder that is gone has its domain released. */
  readonly holderPollMs?: number;
  readonly logger?: Logger;
  /** The bound on the wait for in-flight operations at SIGTERM (default 30 s). */
  readonly drainMs?: number;
  /** Default true: the watcher runs in the daemon (prunes at once, feeds /v1/events). */
  readonly watch?: boolean;
  readonly heartbeatMs?: number;
  /** Events kept for replay (default 4096). */
  readonly eventCapacity?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** `--metrics-listen`: GET /metrics over TCP on a loopback address too. */
  readonly metricsListen?: MetricsAddress;
}

export interface RunningDaemon {
  readonly app: FastifyInstance;
  readonly listeners: readonly Listener[];
  readonly events: EventHub;
  readonly service: HostdevService;
  /** Stops accepting, drains in-flight operations (bounded), closes everything. */
  stop(): Promise<void>;
}

/** The event(s) a watch event is announced as on /v1/events. */
export function watchEvents(event: LiveEvent): NewEvent[] {
  if (event.kind === 'returned') {
    return [
      {
        time: event.time,
        type: 'returned',
        action: event.outcome,
        key: pciKey(event.address),
        owner: event.formerOwner,
        details: { pf: event.pf, vfIndex: event.vfIndex, detail: event.detail },
      },
    ];
  }
  const { kind, time, address, owner, pruned, ...details } = event as LiveEvent & { owner?: unknown; pruned?: unknown };
  const who = (owner ?? null) as NewEvent['owner'];
  const pci: NewEvent = { time, type: 'pci', action: kind, key: pciKey(address), owner: who, details };
  if (pruned === undefined) return [pci];
  return [pci, { time, type: 'prune', action: 'prune', key: pciKey(address), owner: who, details: { table: pruned } }];
}

/** What recovery at open did, as events. */
function recoveryEvents(recovery: RecoveryReport): NewEvent[] {
  return [
    ...recovery.repaired.map((device): NewEvent => ({
      type: 'recovery',
      action: device.direction,
      key: pciKey(device.address),
      owner: null,
      details: { operation: device.operation, outcome: device.outcome, driver: device.driver, table: device.table, error: device.error },
    })),
    ...recovery.pruned.map((entry): NewEvent => ({
      type: 'prune',
      action: 'prune',
      key: pciKey(entry.address),
      owner: entry.usedBy ?? null,
      details: { table: entry.table, by: 'recovery' },
    })),
    ...(recovery.rebooted ?? []).map((entry): NewEvent => ({
      type: 'recovery',
      action: entry.action,
      key: entry.key,
      owner: entry.formerOwner,
      details: { reason: 'reboot', formerTable: entry.formerTable, outcome: entry.outcome, driver: entry.driver, table: entry.table, error: entry.error },
    })),
    ...(recovery.devices ?? []).map((repair): NewEvent => ({
      type: 'recovery',
      action: repair.direction,
      key: repair.key,
      owner: null,
      details: { operation: repair.operation, outcome: repair.outcome, error: repair.error },
    })),
  ];
}

/**
 * Operations a daemon that died left as running: recovery at this open has rolled each back or
 * forward. One rolled forward is completed; any other failed, with what recovery did.
 */
function settleInterrupted(
  operations: OperationLog,
  recovery: RecoveryReport,
  tables: Tables,
  heldDeviceKeys: (owner: Owner) => readonly string[],
): OperationRecordJson[] {
  const settled: OperationRecordJson[] = [];
  for (const record of operations.running()) {
    if (record.id === null) continue;
    const repaired = recovery.repaired.filter(
      (device) => device.operation === operationOfKind(record.kind) && (record.devices.length === 0 || record.devices.includes(pciKey(device.address))),
    );
    const forward = repaired.length > 0 && repaired.every((device) => device.direction === 'rolled-forward' && device.outcome === 'ok');
    const finishedAt = new Date().toISOString();
    // A hot-plug whose assign was committed before the daemon stopped (its device_add unanswered):
    // the journal has nothing to undo and the VM may hold the devices, so the assign is kept as committed.
    const owner = record.owner;
    const kept =
      record.kind === 'hotplug' && repaired.length === 0 && owner !== null
        ? [
            ...tables.active.filter((entry) => sameOwner(entry.usedBy, owner) && record.devices.includes(entry.key)).map((entry): string => entry.address),
            // A hot-plug of other kinds: their entries were committed in one step, before blockdev-add and device_add.
            ...heldDeviceKeys(owner).filter((key) => record.devices.includes(key)),
          ]
        : [];
    const what =
      kept.length > 0
        ? `its assign was committed and is kept: ${kept.join(', ')} stay(s) assigned to ${owner!.vm}, which may or may not have plugged them`
        : repaired.length === 0
          ? 'found nothing of it to undo'
          : 'rolled it back';
    const done: OperationRecordJson & { id: string } = forward
      ? { ...record, id: record.id, state: 'completed', finishedAt, result: { recovered: repaired }, warnings: ['the daemon stopped during this operation; recovery at the next open finished it'] }
      : {
          ...record,
          id: record.id,
          state: 'failed',
          finishedAt,
          error: errorJson(
            new HostdevError('HOSTDEV_INTERRUPTED', `the daemon stopped during ${record.kind} ${record.id}; ${kept.length > 0 ? what : `recovery at the next open ${what}`}`, {
              hint:
                kept.length > 0
                  ? `Check the VM (query-pci): unplug the devices it holds, or release the ones it does not (hostdev release --domain ${owner!.vm} ADDRESS).`
                  : 'Look at the devices with GET /v1/status and send the request again if it is still wanted.',
              details: { operation: record.id, recovered: repaired, ...(kept.length > 0 ? { kept } : {}) },
            }),
          ).error,
        };
    operations.finish(done);
    settled.push(done);
  }
  return settled;
}

export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const logger = options.logger ?? pino({ base: { name: 'hostdevd' } });
  // DEVICE_DELETED can come before the service is open: such an event waits for it.
  let serviceReady: (service: HostdevService) => void = () => undefined;
  const opened = new Promise<HostdevService>((resolve) => (serviceReady = resolve));
  const monitors = new VmMonitors((socket, event) => void opened.then((svc) => deviceDeleted(svc, socket, event)));
  const service = await options
    .open({ cacheInventory: true, probeQmp: (socket) => monitors.probe(socket), connectQmp: (socket) => monitors.port(socket) })
    .catch((error: unknown) => {
      monitors.close();
      throw error;
    });
  serviceReady(service);
  const operations = OperationLog.open(options.stateDir);
  const events = new EventHub(options.eventCapacity);
  const metrics = new DaemonMetrics(async () => (await service.list()).report, () => events.clients);
  for (const warning of service.warnings) logger.warn({ warning }, warning);
  for (const end of service.holdersEnded) events.publish(holderEvent(end));

  /** QEMU gave a device back on its own (the guest ejected it, or its VF is being removed): released at once. */
  const deviceDeleted = async (svc: HostdevService, socket: string, event: QmpEvent): Promise<void> => {
    if (event.event !== 'DEVICE_DELETED' || typeof event.data['device'] !== 'string') return;
    const address = addressOfDeviceId(event.data['device']);
    if (address === null) return;
    const domain = (await svc.domains()).find(
      (d) => d.holder?.holder.kind === 'qmp' && d.holder.holder.socket === socket && d.devices.some((device) => device.address === address),
    );
    if (domain === undefined) return;
    const owner = makeOwner(domain.hypervisor, domain.domain);
    try {
      const report = await svc.release({ domain: domain.domain, hypervisor: domain.hypervisor, addresses: [address] });
      // An unplug of this daemon, waiting for the same event, may have released it first. A VF that
      // the kernel was removing (sriov_numvfs shrank) is gone by now: the release pruned it, and this
      // is the only announcement of it (the watcher later finds no entry to prune).
      if (!report.released.includes(address) && !report.pruned.includes(address)) return;
      events.publish({ type: 'qmp', action: 'device-deleted', key: pciKey(address), owner, details: { socket, released: report.released, pruned: report.pruned } });
      logger.info({ socket, device: address, owner }, `QEMU gave back ${address} (DEVICE_DELETED): released from ${domain.domain}`);
    } catch (error) {
      if (isHostdevError(error) && error.code === 'HOSTDEV_DOMAIN_NOT_FOUND') return;
      const message = error instanceof Error ? error.message : String(error);
      events.publish({ type: 'qmp', action: 'device-deleted', key: pciKey(address), owner, details: { socket, released: [], error: message } });
      logger.warn({ socket, device: address, err: error }, `QEMU gave back ${address} but its release failed: ${message}`);
    }
  };
  for (const event of recoveryEvents(service.recovery)) {
    events.publish(event);
    if (event.type === 'recovery') metrics.recoveries.inc();
    else metrics.prunes.inc();
  }
  for (const record of settleInterrupted(operations, service.recovery, service.tables(), (owner) => service.heldDeviceKeys(owner))) {
    metrics.recoveries.inc();
    events.publish({ type: 'operation', action: 'end', key: record.devices[0] ?? null, owner: record.owner, details: { id: record.id, kind: record.kind, state: record.state, recovered: true } });
    logger.info({ operation: record.id, kind: record.kind, owner: record.owner, devices: record.devices, outcome: record.state }, `${record.kind} ${record.state} (settled after restart)`);
  }

  const readOnlySockets = new WeakSet<Socket>();
  let stopping: Promise<void> | null = null;
  const app = await buildApp({
    service,
    openDryRun: () => options.open({ dryRun: true, connectQmp: (socket) => monitors.port(socket) }),
    operations,
    events,
    metrics,
    logger,
    readOnly: (socket) => readOnlySockets.has(socket),
    stopping: () => stopping !== null,
    serves: options.serves,
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
  });

  const watching = new AbortController();
  let started = (): void => undefined;
  const watchStarted = new Promise<void>((resolve) => (started = resolve));
  const watchLoop = options.watch === false ? Promise.resolve() : runWatch(service, events, metrics, logger, watching.signal, started);
  // Clients are answered once the watcher has its first snapshot (bounded: a slow sysfs read
  // must not keep the daemon from serving).
  if (options.watch !== false) await Promise.race([watchStarted, sleep(10_000, undefined, { ref: false })]);

  const holderLoop = runHolderWatch(service, events, logger, watching.signal, options.holderPollMs ?? HOLDER_POLL_MS);

  const sockets = new Set<Socket>();
  const accept = (socket: Socket, readOnly: boolean): void => {
    if (readOnly) readOnlySockets.add(socket);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // One HTTP server for both listeners: read-only is a property of the accepted connection.
    app.server.emit('connection', socket);
  };
  let listeners: Listener[] = [];
  let metricsServer: Server | null = null;
  try {
    listeners = (await activatedListeners(accept, options.env ?? process.env)) ?? (await listenOnDir(options.socketDir, accept));
    if (options.metricsListen !== undefined) metricsServer = await listenForMetrics(options.metricsListen, metrics);
  } catch (error) {
    for (const listener of listeners) listener.server.close();
    watching.abort();
    await watchLoop;
    await holderLoop;
    await app.close();
    operations.close();
    monitors.close();
    service.close();
    throw error;
  }
  logger.info(
    { sockets: listeners.map((l) => ({ path: l.path, readOnly: l.readOnly })), ...(options.metricsListen === undefined ? {} : { metrics: options.metricsListen }) },
    'hostdev daemon listening',
  );

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      for (const listener of listeners) listener.server.close();
      metricsServer?.close();
      metricsServer?.closeAllConnections();
      watching.abort();
      const inFlight = [...inFlightOf(app)];
      if (inFlight.length > 0) logger.info({ operations: inFlight.length }, 'draining in-flight operations');
      const drained = await Promise.race([
        Promise.allSettled(inFlight).then(() => true),
        sleep(options.drainMs ?? 30_000, false, { ref: false }),
      ]);
      if (!drained) logger.warn('in-flight operations did not finish within the drain bound; the next start settles them');
      await watchLoop;
      await holderLoop;
      const closing = app.close();
      for (const socket of sockets) socket.destroy();
      await closing;
      operations.close();
      monitors.close();
      service.close();
      logger.info('hostdev daemon stopped');
    })());
  return { app, listeners, events, service, stop };
}

async function runWatch(
  service: HostdevService,
  events: EventHub,
  metrics: DaemonMetrics,
  logger: Logger,
  signal: AbortSignal,
  onStarted: () => void,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const notice = (n: { level: string; message: string }): void => logger[n.level === 'warning' ? 'warn' : 'info'](n.message);
      for await (const event of service.watch({ signal, onNotice: notice, onStarted })) {
        for (const announced of watchEvents(event)) {
          events.publish(announced);
          if (announced.type === 'prune') metrics.prunes.inc();
        }
      }
    } catch (error) {
      logger.error({ err: error }, 'the watcher failed; restarting it in 1 s');
      await sleep(1_000, undefined, { ref: false });
    }
  }
}

/** How often the daemon checks the holders of domains (a /proc read per process holder; QMP holders answer from their open connection). */
const HOLDER_POLL_MS = 200;

/** A domain whose holder is gone, as an event: `holder` `released` (or `failed`, the release to be tried again). */
function holderEvent(end: HostdevService['holdersEnded'][number] & { readonly line?: string }): NewEvent {
  const { owner, holder, reason } = end.holder;
  return {
    type: 'holder',
    action: end.error === null ? 'released' : 'failed',
    key: end.released[0] !== undefined ? pciKey(end.released[0]) : (end.releasedDevices[0] ?? null),
    owner,
    details: { holder, reason, released: end.released, releasedDevices: end.releasedDevices, error: end.error },
  };
}

/**
 * The daemon's watch on holders: pidfd is not in Node.js, so the holders are polled at a short
 * bounded interval; a domain whose holder is gone is released at once and announced.
 */
async function runHolderWatch(service: HostdevService, events: EventHub, logger: Logger, signal: AbortSignal, intervalMs: number): Promise<void> {
  while (!signal.aborted) {
    try {
      for (const end of await service.releaseEndedHolders()) {
        events.publish(holderEvent(end));
        logger[end.error === null ? 'info' : 'warn']({ owner: end.holder.owner, holder: end.holder.holder, released: end.released, releasedDevices: end.releasedDevices }, end.line);
      }
    } catch (error) {
      logger.error({ err: error }, 'checking the holders of domains failed; trying again');
    }
    await sleep(intervalMs, undefined, { ref: false, signal }).catch(() => undefined);
  }
}

/** `hostdev daemon`: runs until SIGTERM or SIGINT, drains, and resolves with the exit code. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const daemon = await startDaemon(options);
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await daemon.stop();
  return 0;
}
