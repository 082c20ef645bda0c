import { hostdevCommand, releaseCommand } from '../core/shell.js';
import { ownerCell, ownerName } from '../core/tables.js';
import { holdersOf } from '../core/device-entry.js';
import type { NonPciKind } from '../core/nonpci-device.js';
import type { DriftEntry } from '../manager/recovery.js';
import type { RecentRepair, StatusReport } from '../manager/status.js';
import { orDash, renderTable } from './render.js';
import { describeHolder, type HolderStatus } from '../core/holders.js';

/** The human output of `hostdev status`: the tables, then what needs attention and what was repaired. */


/** What settles a drifting entry: hostdev neither trusts nor fixes it on its own. */
function driftNext(drift: DriftEntry): string {
  if (drift.usedBy !== null) {
    return `check the VM no longer uses it, then \`${releaseCommand(drift.usedBy, drift.address)}\``;
  }
  return `\`${hostdevCommand('reattach', drift.address)}\` (or detach it again; --force if the host uses it)`;
}

function section(title: string, rows: readonly string[][], headers: readonly string[]): string[] {
  return ['', title, renderTable(headers, rows)];
}

function driftSection(drift: readonly DriftEntry[]): string[] {
  if (drift.length === 0) return [];
  const rows = drift.map((d) => [d.address, d.table, ownerCell({ table: d.table, owner: d.usedBy }), d.expectedDriver, d.actualDriver ?? '(none)', driftNext(d)]);
  return section(`Drift (${drift.length}), not on the driver the tables record (changed outside hostdev):`, rows, [
    'ADDRESS',
    'TABLE',
    'OWNER',
    'EXPECTED',
    'FOUND',
    'NEXT',
  ]);
}

function repairsSection(repairs: readonly RecentRepair[]): string[] {
  const rows: string[][] = [];
  for (const { at, by, report } of repairs) {
    const when = [at, by];
    for (const r of report.repaired) {
      const where = r.table === null ? 'in no table' : `${r.table} table`;
      const outcome = r.outcome === 'ok' ? `on ${orDash(r.driver)}, ${where}` : `FAILED: ${r.error ?? 'unknown'}; on ${orDash(r.driver)}, ${where}`;
      const next = r.outcome === 'ok' ? '-' : r.table === 'inactive' ? `\`${hostdevCommand('reattach', r.address)}\`` : 'check the device (see the warning)';
      rows.push([...when, r.address, `${r.operation} left unfinished, ${r.direction}`, outcome, next]);
    }
    for (const p of report.pruned) {
      const next = p.usedBy === null ? '-' : `\`${releaseCommand(p.usedBy, p.address)}\` reports it`;
      rows.push([...when, p.address, `pruned from ${p.table}`, `no longer on this host (owner ${ownerCell({ table: p.table, owner: p.usedBy })})`, next]);
    }
    for (const b of report.rebooted ?? []) {
      const was = b.formerOwner === null ? 'detached' : `owner ${ownerCell({ table: 'active', owner: b.formerOwner })}`;
      const where = b.table === null ? 'in no table' : `${b.table} table`;
      const outcome = b.outcome === 'ok' ? `on ${orDash(b.driver)}, ${where}` : `FAILED: ${b.error ?? 'unknown'}; on ${orDash(b.driver)}, ${where}`;
      const next = b.outcome === 'ok' ? '-' : `\`${hostdevCommand('reattach', b.address)}\``;
      rows.push([...when, b.address, `host rebooted (${was}): ${b.action}`, outcome, next]);
    }
    for (const v of report.vfConfig) {
      const outcome =
        v.outcome === 'restored' ? 'saved MAC/VLAN put back' : v.outcome === 'dropped' ? 'VF gone; saved config dropped' : `PENDING: ${v.reason ?? ''}`;
      rows.push([...when, v.address, 'VF network config', outcome, v.outcome === 'pending' ? 'bring the PF up; the next command retries' : '-']);
    }
  }
  if (rows.length === 0) return [];
  return section(
    `Repaired at open (${rows.length}), most recent first: what a hostdev that did not finish left, devices that left the host, saved VF config:`,
    rows,
    ['WHEN', 'BY', 'ADDRESS', 'REPAIR', 'OUTCOME', 'NEXT'],
  );
}

function departedSection(departed: StatusReport['departed']): string[] {
  if (departed.length === 0) return [];
  const rows = departed.map((d) => [
    d.address,
    `${d.vfIndex} of ${d.pf}`,
    ownerCell({ table: d.former.table, owner: d.owner }),
    d.departedAt,
    d.prunedBy,
    d.back === null ? 'awaited back' : `back as ${d.back.address} on ${d.back.driver ?? 'no driver'}`,
    d.back !== null
      ? `\`hostdev watch\` reports it${d.owner === null ? '' : ' (--reclaim readies it)'}, or \`${hostdevCommand('vf', 'forget', d.address)}\``
      : d.owner === null
        ? `\`${hostdevCommand('vf', 'forget', d.address)}\``
        : `\`hostdev watch --reclaim\` readies it on return`,
  ]);
  return section(`Departed VFs (${departed.length}), left the host while a table held them:`, rows, [
    'ADDRESS',
    'VF',
    'FORMER OWNER',
    'LEFT',
    'PRUNED BY',
    'NOW',
    'NEXT',
  ]);
}

function busySection(busy: StatusReport['busy']): string[] {
  if (busy === null) return [];
  const rows = busy.operations.map((op) => [op.operation, String(op.pid), op.running ? 'running' : 'gone', op.since, op.addresses.join(', ')]);
  const lines = ['', 'Busy: another hostdev operation holds the state lock; these tables are its last committed state.'];
  if (rows.length > 0) lines.push(renderTable(['OPERATION', 'PID', 'PROCESS', 'SINCE', 'DEVICES'], rows));
  if (busy.notPruned.length > 0) lines.push(`not pruned yet (no longer on this host): ${busy.notPruned.join(', ')}`);
  return lines;
}

/** A holder as a cell: "pid 4242 (alive)", "QMP /run/vm1.qmp (gone)". */
export function holderCell(held: HolderStatus | null): string {
  if (held === null) return '-';
  const life = held.alive === null ? 'not answering' : held.alive ? (held.startTimeUnknown === true ? 'alive, start time unknown' : 'alive') : 'gone';
  return `${describeHolder(held.holder)} (${life})`;
}

function holdersSection(holders: readonly HolderStatus[]): string[] {
  if (holders.length === 0) return [];
  const rows = holders.map((held) => [ownerName(held.owner), holderCell(held), held.since]);
  return section(`Holders (${holders.length}): a domain is released when its holder is gone`, rows, ['DOMAIN', 'HOLDER', 'SINCE']);
}

/** The kinds present, named in one order: "Mediated and USB devices", "SCSI devices", "Mediated, USB, NVMe and SCSI devices". */
export function kindsHeading(kinds: readonly NonPciKind[]): string {
  const names = (['mdev', 'usb', 'nvme', 'scsi'] as const).filter((kind) => kinds.includes(kind)).map((kind) => HEADING_NAMES[kind]);
  const listed = names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]!}`;
  return `${listed} devices`;
}

const HEADING_NAMES: Readonly<Record<NonPciKind, string>> = { mdev: 'Mediated', usb: 'USB', nvme: 'NVMe', scsi: 'SCSI' };

/** Mediated, USB, NVMe and SCSI devices held by domains, and those that left the host while held (only when there are any). */
function devicesSection(status: StatusReport): string[] {
  const devices = status.devices ?? [];
  const departed = status.departedDevices ?? [];
  const held =
    devices.length === 0
      ? []
      : section(
          `${kindsHeading(devices.map((e) => e.kind))} (${devices.length}), ${
            devices.some((e) => e.kind === 'nvme') ? "each namespace's controller in the active table" : 'ownership only'
          }:`,
          // A shared SCSI device names every domain that holds it.
          devices.map((e) => [e.key, `${holdersOf(e).map(ownerName).join(', ')}${e.shareable === true ? ' (shareable)' : ''}`]),
          ['KEY', 'OWNER'],
        );
  const gone =
    departed.length === 0
      ? []
      : section(
          `Departed devices (${departed.length}), left the host while a domain held them:`,
          departed.map((d) => [d.entry.key, ownerName(d.entry.usedBy), d.departedAt, d.prunedBy, d.back ? 'back (same IDs, same place)' : 'awaited back', releaseCommand(d.entry.usedBy)]),
          ['KEY', 'OWNER', 'DEPARTED', 'BY', 'STATE', 'FORGET WITH'],
        );
  return [...held, ...gone];
}

/**
 * `claimed`: the addresses claims are defined for; their inactive entries show the owner
 * hostdev/claim, a plain detach's `hostdev (detached)`.
 */
export function statusText(status: StatusReport, claimed: ReadonlySet<string> = new Set()): string {
  const active = status.active.map((entry) => [
    entry.address,
    ownerName(entry.usedBy),
    entry.managed ? 'managed' : 'unmanaged',
    entry.stubDriver,
    orDash(entry.originalDriver),
  ]);
  const inactive = status.inactive.map((entry) => [
    entry.address,
    ownerCell({ table: 'inactive', claimed: claimed.has(entry.address) }),
    entry.managed ? 'managed' : 'unmanaged',
    entry.stubDriver,
    orDash(entry.originalDriver),
  ]);
  const lines = [
    `IOMMU: ${status.iommu.enabled ? 'on' : 'off'}; vfio-pci: ${status.vfio.loaded ? 'loaded' : 'not loaded'}`,
    '',
    `Active (${active.length}):`,
    active.length > 0 ? renderTable(['ADDRESS', 'OWNER', 'MODE', 'STUB', 'ORIGINAL'], active) : '  none',
    '',
    `Inactive (${inactive.length}):`,
    inactive.length > 0 ? renderTable(['ADDRESS', 'OWNER', 'MODE', 'STUB', 'ORIGINAL'], inactive) : '  none',
    ...devicesSection(status),
    ...(status.hardwareChanged ?? []).flatMap((change) => [
      '',
      `${change.message} (${change.table}${change.owner === null ? '' : `, ${ownerName(change.owner)}`}): assign, release, detach and reattach refuse it without --force`,
    ]),
    ...driftSection(status.recovery.drift),
    ...departedSection(status.departed),
    ...repairsSection(status.recentRepairs),
    ...holdersSection(status.holders),
    ...busySection(status.busy),
  ];
  if (status.pruned.length > 0) lines.push('', `pruned (no longer on this host): ${status.pruned.join(', ')}`);
  const prunedDevices = status.prunedDevices ?? [];
  if (prunedDevices.length > 0) lines.push('', `pruned (no longer on this host): ${prunedDevices.map((p) => p.key).join(', ')}`);
  return lines.join('\n');
}
