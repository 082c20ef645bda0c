import fs from 'node:fs';
import path from 'node:path';
import { fail } from './errno.js';
import { idMatches, simDir, type VfTemplate } from './host-model.js';
import { kstrtoul } from './kstr.js';
import type { SimTree } from './sim-tree.js';
import type { SimEventAction, SimState } from './state-db.js';
import { busDeviceRel, linkVirtfn, relLink, writeFunction } from './tree-writer.js';
import { vfFunction, vfNetdevName } from './vf.js';

/**
 * The parts of the simulated kernel that create and destroy devices: SR-IOV (iov.c
 * sriov_numvfs_store), remove (pci-sysfs.c remove_store) and bus rescan.
 */
export interface TopologyContext {
  readonly root: string;
  readonly tree: SimTree;
  readonly state: SimState;
  emit(action: SimEventAction, dir: string, driver?: string): void;
  /** device_attach: probe the device against the loaded drivers. */
  deviceAttach(dir: string): void;
  /** The driver's remove, with its uevent. */
  unbindDevice(dir: string, driver: string): void;
}

// ---- SR-IOV (iov.c sriov_numvfs_store) ----

export function sriovNumvfs(ctx: TopologyContext, pf: string, value: string): void {
  const n = kstrtoul(value, 0xffff) ?? fail('EINVAL');
  const total = Number(ctx.tree.attr(pf, 'sriov_totalvfs') ?? '0');
  if (n > total) fail('ERANGE');
  const current = Number(ctx.tree.attr(pf, 'sriov_numvfs') ?? '0');
  if (n === current) return;
  const driver = ctx.tree.driverOf(pf);
  // No driver, or one without sriov_configure (vfio-pci without enable_sriov): ENOENT.
  if (driver === null || driver === 'vfio-pci') fail('ENOENT');
  if (n === 0) {
    disableVfs(ctx, pf);
  } else {
    if (current !== 0) fail('EBUSY');
    enableVfs(ctx, pf, n);
  }
  ctx.emit('change', pf);
}

function vfTemplate(ctx: TopologyContext, pf: string): VfTemplate {
  return (
    ctx.state.vfTemplate(path.basename(pf)) ?? {
      numaNode: Number(ctx.tree.attr(pf, 'numa_node') ?? '-1'),
      flr: true,
      resetMethods: ['flr'],
      netdev: null,
      pfNetdev: null,
    }
  );
}

function enableVfs(ctx: TopologyContext, pf: string, count: number): void {
  const t = ctx.tree;
  const template = vfTemplate(ctx, pf);
  const num = (name: string) => Number.parseInt(t.hexAttr(pf, name, 4), 16);
  const view = {
    address: path.basename(pf),
    devPath: t.rel(pf),
    vendor: num('vendor'),
    subsystemVendor: num('subsystem_vendor'),
    subsystemDevice: num('subsystem_device'),
    classCode: Number.parseInt(t.hexAttr(pf, 'class', 6), 16),
    revision: num('revision'),
    offset: Number(t.attr(pf, 'sriov_offset') ?? '1'),
    stride: Number(t.attr(pf, 'sriov_stride') ?? '1'),
    vfDevice: Number.parseInt(t.hexAttr(pf, 'sriov_vf_device', 4), 16),
  };
  const withGroups = t.groupOf(pf) !== null;
  const vfDirs: string[] = [];
  for (let i = 0; i < count; i++) {
    const vf = vfFunction(view, i, {
      numaNode: template.numaNode,
      flr: template.flr,
      resetMethods: template.resetMethods,
      driver: null,
      iommuGroup: withGroups ? t.freeGroup() : null,
      netdevs: [],
    });
    if (t.deviceDir(vf.address) !== null) fail('EEXIST');
    writeFunction(ctx.root, vf);
    linkVirtfn(ctx.root, view.devPath, vf.devPath, i);
    const dir = path.join(ctx.root, vf.devPath);
    vfDirs.push(dir);
    const names = vfNetdevName(template.netdev, template.pfNetdev, i);
    const vfDriver = defaultDriver(ctx, dir);
    if (names.length > 0 && vfDriver !== null) ctx.state.setNetdevs(vf.address, vfDriver, names);
    else ctx.state.dropNetdevs(vf.address);
    ctx.emit('add', dir);
  }
  t.writeAttr(pf, 'sriov_numvfs', `${count}\n`);
  t.setConfigNumVfs(pf, count);
  if (t.attr(pf, 'sriov_drivers_autoprobe') !== '0') for (const dir of vfDirs) ctx.deviceAttach(dir);
}

/** The driver probe would pick for a device without override (for netdev bookkeeping). */
function defaultDriver(ctx: TopologyContext, dir: string): string | null {
  const ids = ctx.tree.ids(dir);
  const found = ctx.state.drivers().find((d) => d.dynIds.some((id) => idMatches(id, ids)) || d.ids.some((id) => idMatches(id, ids)));
  return found?.name ?? null;
}

/** sriov_disable: iov.c sriov_del_vfs removes the VFs in order, VF0 first. */
function disableVfs(ctx: TopologyContext, pf: string): void {
  for (const { index, dir } of ctx.tree.virtfns(pf)) {
    destroy(ctx, dir);
    ctx.tree.files.rm(path.join(pf, `virtfn${index}`));
  }
  ctx.tree.writeAttr(pf, 'sriov_numvfs', '0\n');
  ctx.tree.setConfigNumVfs(pf, 0);
}

/** Detaches one device from everything (driver, group, bus); returns whether its group vanished. */
function detach(ctx: TopologyContext, dir: string): { group: number | null; groupVanished: boolean } {
  const driver = ctx.tree.driverOf(dir);
  if (driver !== null) ctx.unbindDevice(dir, driver);
  const group = ctx.tree.groupOf(dir);
  const groupVanished = ctx.tree.leaveGroup(dir);
  ctx.tree.files.rm(path.join(ctx.root, 'sys/bus/pci/devices', path.basename(dir)));
  ctx.emit('remove', dir);
  return { group, groupVanished };
}

/** A VF going away for good (SR-IOV disabled, or its PF removed). */
function destroy(ctx: TopologyContext, dir: string): void {
  detach(ctx, dir);
  ctx.state.dropNetdevs(path.basename(dir));
  ctx.tree.files.rm(dir, { recursive: true });
}

// ---- remove and rescan (pci-sysfs.c remove_store, bus rescan_store) ----

export function removeDevice(ctx: TopologyContext, top: string): void {
  const pfOfTop = ctx.tree.physfn(top);
  if (pfOfTop !== null) {
    // A VF removed by hand: it does not come back on rescan (only SR-IOV creates VFs).
    const link = ctx.tree.virtfns(pfOfTop).find((v) => v.dir === top);
    if (link) ctx.tree.files.rm(path.join(pfOfTop, `virtfn${link.index}`));
    destroy(ctx, top);
    return;
  }
  // VFs sit beside their PF in the tree; SR-IOV disable takes them away, they are never stashed.
  const devices = ctx.tree.subtree(top).filter((d) => ctx.tree.physfn(d) === null);
  for (const dir of devices) {
    if (ctx.tree.virtfns(dir).length > 0) disableVfs(ctx, dir);
  }
  const ord = ctx.state.nextOrd();
  const stash = path.join(simDir(ctx.root), 'removed', `${ord}-${path.basename(top)}`);
  for (const dir of [...devices].reverse()) {
    const { group, groupVanished } = detach(ctx, dir);
    ctx.state.addRemoved({
      address: path.basename(dir),
      stash,
      home: ctx.tree.rel(path.dirname(top)),
      // A group that vanished gets a fresh number on rescan; a shared one is rejoined.
      group: groupVanished ? (group === null ? null : -1 - group) : group,
      top: path.basename(top),
      ord: ord + devices.indexOf(dir),
    });
  }
  ctx.tree.files.mkdir(path.dirname(stash));
  ctx.tree.files.rename(top, stash);
}

export function rescan(ctx: TopologyContext): void {
  const renumbered = new Map<number, number>();
  // A device removed before its parent comes back only after the parent: go round until
  // nothing more can be restored.
  for (let restored = true; restored; ) {
    restored = false;
    const rows = ctx.state.removed();
    for (const topAddress of [...new Set(rows.map((r) => r.top))]) {
      const members = rows.filter((r) => r.top === topAddress).sort((a, b) => a.ord - b.ord);
      const first = members[0]!;
      const home = path.join(ctx.root, first.home, topAddress);
      if (!fs.existsSync(path.dirname(home)) || !fs.existsSync(first.stash)) continue;
      ctx.tree.files.rename(first.stash, home);
      const dirs = ctx.tree.subtree(home);
      for (const dir of dirs) {
        const row = members.find((m) => m.address === path.basename(dir));
        ctx.tree.writeAttr(dir, 'driver_override', '(null)\n');
        if (fs.existsSync(path.join(dir, 'sriov_numvfs'))) ctx.tree.writeAttr(dir, 'sriov_numvfs', '0\n');
        relLink(ctx.root, busDeviceRel(path.basename(dir)), ctx.tree.rel(dir));
        if (row && row.group !== null) {
          let group = renumbered.get(row.group) ?? row.group;
          if (group < 0) {
            const old = -1 - group;
            group = renumbered.get(old) ?? ctx.tree.freeGroup();
            renumbered.set(old, group);
          }
          ctx.tree.joinGroup(dir, group);
        }
        ctx.emit('add', dir);
      }
      for (const dir of dirs) ctx.deviceAttach(dir);
      ctx.state.dropRemoved(topAddress);
      restored = true;
    }
  }
}
