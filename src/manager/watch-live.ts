import type { PciAddress } from '../core/address.js';
import { pciKey, type DeviceKey } from '../core/device-key.js';
import { describeEvent, matchReturned, type PciEvent } from '../core/events.js';
import type { EventBatch } from '../events/watcher.js';
import type { DepartedVfRecord, StateStore } from '../state/store.js';
import { formatOwner, ownerName, type Located, type Owner } from '../core/tables.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import { pruneVanished } from './reconcile.js';

/**
 * What `hostdev watch` does with each batch of PCI events:
 *  - a removed device that is in a table is pruned AT ONCE: one commit under the state lock
 *    removes it from both tables and drops its saved VF config (the seed's rule, applied live);
 *    the event names the owner it was taken from;
 *  - a VF that returns (same PF, same VF index) is reported as "returned" with its former owner;
 *    with the reclaim policy, and only if nobody holds the address meanwhile, it is made ready for
 *    that owner again (never silently handed to someone else).
 */

/** A table entry as it was when its device left. */
type FormerEntry = Located;

/** A departed VF as the state database remembers it (src/manager/departed.ts). */
export type Departed = DepartedVfRecord;

type WatchEvent = PciEvent extends infer E
  ? E extends PciEvent
    ? E & { readonly key: DeviceKey; readonly time: string; readonly owner?: Owner | null; readonly pruned?: 'active' | 'inactive'; readonly dryRun?: true }
    : never
  : never;

interface ReturnedEvent {
  readonly kind: 'returned';
  readonly time: string;
  readonly key: DeviceKey;
  readonly address: PciAddress;
  readonly pf: PciAddress;
  readonly vfIndex: number;
  readonly formerOwner: Owner | null;
  /**
   * reported: nothing done; readied: made ready for its former owner (would-ready: a dry-run watch
   * would have); held: someone else has it now.
   */
  readonly outcome: 'reported' | 'readied' | 'would-ready' | 'held' | 'failed';
  readonly detail: string | null;
  /** A dry-run watch: the tables and the host are left as they were (a prune is what it would do). */
  readonly dryRun?: true;
}

export type LiveEvent = WatchEvent | ReturnedEvent;

/** Makes a returned VF ready for its former owner (stub driver, table entry, VF config). */
export type ReclaimFn = (departed: Departed, address: PciAddress) => Promise<string>;

interface LiveWatchOptions {
  readonly store: StateStore;
  readonly emit: (event: LiveEvent) => void;
  readonly now?: () => Date;
  /** The reclaim policy: absent = report only. */
  readonly reclaim?: ReclaimFn;
  /** Reads an assigned VF's current network config (for reclaim: what its domain had). */
  readonly captureVfConfig?: (address: PciAddress) => Promise<VfNetRequest | null>;
  /**
   * A dry run: `store` is an in-memory snapshot (its commits reach no disk) and `reclaim` only
   * plans; events say what would be done.
   */
  readonly dryRun?: boolean;
}

export class LiveWatch {
  /** Departed VFs whose reclaim failed in this process: left for a later watch, not retried here. */
  private readonly gaveUp = new Set<string>();
  /**
   * Each VF's PF and index as last seen. While a PF removes its VFs, a snapshot can catch a VF
   * whose virtfnN link is already gone: its identity then comes from an earlier snapshot.
   */
  private readonly identity = new Map<PciAddress, { pf: PciAddress; vfIndex: number }>();
  /** Domain VF config of assigned VFs that had VF options at assign (captured while present). */
  private readonly domainConfigs = new Map<PciAddress, VfNetRequest>();
  private readonly now: () => Date;

  constructor(private readonly options: LiveWatchOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** The departed VFs still awaited (the state database's, so also those an earlier process recorded). */
  get away(): readonly Departed[] {
    return this.options.store.readDeparted();
  }

  /**
   * Starts from the first snapshot: learns its VFs, and reports the departed VFs that are back
   * already (they returned while no watch ran).
   */
  async start(snapshot: EventBatch['after']): Promise<void> {
    this.learn(snapshot);
    await this.returned(presentVfs(snapshot), this.now().toISOString());
  }

  /** Learns the VFs of a snapshot (call with the first snapshot; batches do it themselves). */
  learn(snapshot: EventBatch['after']): void {
    for (const state of snapshot.values()) {
      if (state.pf !== null && state.vfIndex !== null) this.identity.set(state.address, { pf: state.pf, vfIndex: state.vfIndex });
    }
  }

  async handle(batch: EventBatch): Promise<void> {
    const time = this.now().toISOString();
    this.learn(batch.before);
    const removed = batch.events.filter((event) => event.kind === 'remove').map((event) => event.address);
    const pruned = removed.length > 0 ? await this.prune(removed, batch) : new Map<PciAddress, FormerEntry>();
    for (const event of batch.events) {
      const former = event.kind === 'remove' ? pruned.get(event.address) : undefined;
      const extra =
        former === undefined
          ? {}
          : { owner: former.table === 'active' ? former.entry.usedBy : null, pruned: former.table };
      this.options.emit({ ...event, key: pciKey(event.address), time, ...extra, ...this.dryRunMark } as WatchEvent);
    }
    // Matched against the whole new snapshot, not only its "add" events: a VF whose virtfnN link
    // appeared one snapshot after its directory has no identity in its add event.
    await this.returned(presentVfs(batch.after), time);
    this.learn(batch.after);
    await this.capture();
  }

  /** Captures the VF config of assigned VFs with saved config, once each, while they exist. */
  async capture(): Promise<void> {
    const read = this.options.captureVfConfig;
    if (read === undefined) return;
    const active = new Set(this.options.store.readTables().active.map((entry) => entry.address));
    for (const address of this.domainConfigs.keys()) if (!active.has(address)) this.domainConfigs.delete(address);
    for (const row of this.options.store.readVfConfigs()) {
      if (!active.has(row.address) || this.domainConfigs.has(row.address)) continue;
      const config = await read(row.address).catch(() => null);
      if (config !== null) this.domainConfigs.set(row.address, config);
    }
  }

  /** Removes vanished devices from both tables in ONE commit; returns what each entry was. */
  private async prune(addresses: readonly PciAddress[], batch: EventBatch): Promise<Map<PciAddress, FormerEntry>> {
    const inTables = this.options.store.readTables();
    const candidates = new Set(addresses);
    const anyInTable =
      inTables.active.some((entry) => candidates.has(entry.address)) || inTables.inactive.some((entry) => candidates.has(entry.address));
    const found = new Map<PciAddress, FormerEntry>();
    if (!anyInTable) return found;
    await this.options.store.exclusive('watch-prune', async (op) => {
      // Between the snapshot and the lock the device may have come back: it is a new device then
      // (fresh driver, fresh config), so the stale entry goes all the same.
      const tables = op.lookup(candidates);
      for (const entry of tables.active) found.set(entry.address, { table: 'active', entry });
      for (const entry of tables.inactive) found.set(entry.address, { table: 'inactive', entry });
      const prune = pruneVanished(op, candidates, 'watch', { known: this.identity, domainConfigs: this.domainConfigs });
      for (const address of found.keys()) this.domainConfigs.delete(address);
      op.commit(prune.changes);
    });
    return found;
  }

  private async returned(events: readonly PciEvent[], time: string): Promise<void> {
    const awaited = this.away.filter((vf) => !this.gaveUp.has(key(vf)));
    if (awaited.length === 0) return;
    const { returned } = matchReturned(awaited, events);
    for (const { departed, address } of returned) {
      const vf = departed as Departed;
      const outcome = await this.settle(vf, address, time);
      if (outcome === 'failed') this.gaveUp.add(key(vf));
      else await this.options.store.exclusive('watch-returned', async (op) => op.commit([{ kind: 'drop-departed', pf: vf.pf, vfIndex: vf.vfIndex }]));
    }
  }

  /** Reports a returned VF and, with the reclaim policy, readies it for its former domain. */
  private get dryRunMark(): { readonly dryRun?: true } {
    return this.options.dryRun === true ? { dryRun: true } : {};
  }

  private async settle(vf: Departed, address: PciAddress, time: string): Promise<ReturnedEvent['outcome']> {
    const base = { kind: 'returned' as const, time, key: pciKey(address), address, pf: vf.pf, vfIndex: vf.vfIndex, formerOwner: vf.owner, ...this.dryRunMark };
    if (this.options.reclaim === undefined || vf.owner === null) {
      this.options.emit({ ...base, outcome: 'reported', detail: null });
      return 'reported';
    }
    const tables = this.options.store.readTables();
    const holder = tables.active.find((entry) => entry.address === address);
    if (holder !== undefined || tables.inactive.some((entry) => entry.address === address)) {
      const who = holder ? ownerName(holder.usedBy) : 'the inactive table';
      this.options.emit({ ...base, outcome: 'held', detail: `${address} is held by ${who} now; left alone` });
      return 'held';
    }
    try {
      const detail = await this.options.reclaim(vf, address);
      const outcome = this.options.dryRun === true ? 'would-ready' : 'readied';
      this.options.emit({ ...base, outcome, detail });
      return outcome;
    } catch (error) {
      this.options.emit({ ...base, outcome: 'failed', detail: (error as Error).message });
      return 'failed';
    }
  }
}

const key = (vf: Departed): string => `${vf.pf}/${vf.vfIndex}`;

/** Every VF of a snapshot as an "add": what departed VFs are matched against. */
function presentVfs(snapshot: EventBatch['after']): PciEvent[] {
  return [...snapshot.values()]
    .filter((state) => state.pf !== null && state.vfIndex !== null)
    .map((state) => ({ kind: 'add', address: state.address, pf: state.pf, vfIndex: state.vfIndex, driver: state.driver }));
}

export function describeLiveEvent(event: LiveEvent): string {
  if (event.kind === 'returned') {
    const detail = event.detail === null ? '' : `: ${event.detail}`;
    return `returned ${event.address} (VF ${event.vfIndex} of ${event.pf}), formerly ${formatOwner(event.formerOwner)} [${event.outcome}]${detail}`;
  }
  const line = describeEvent(event);
  if (event.pruned === undefined) return line;
  const pruned = event.dryRun === true ? 'would be pruned' : 'pruned';
  return `${line}: ${pruned} from the ${event.pruned} table (${formatOwner(event.owner ?? null)})`;
}
