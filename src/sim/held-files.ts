import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processAlive } from '../platform/process-alive.js';
import { simDir } from './host-model.js';

/**
 * Sysfs attributes whose reads block in the kernel while a write holds a device's lock, played on
 * the simulated tree with FIFOs: plain readers (the inventory, lspci, cat) then block in open()
 * without any simulator code of their own, until the hold ends.
 *
 * While vfio-pci's remove waits for its user to let go (vfio_unregister_group_dev), Linux 6.1 holds:
 * - the released device's device_lock (device_release_driver takes it around the driver's remove);
 * - for `echo 0 > PF/sriov_numvfs`, the PF's too (sriov_numvfs_store holds it around
 *   sriov_configure, which removes the VFs), and for `echo 1 > PF/remove` (the PF's driver
 *   is released, under its lock, and its remove disables SR-IOV).
 * The PCI attributes whose show() takes device_lock: driver_override (pci-sysfs.c
 * driver_override_show) and, on a PF, sriov_numvfs (iov.c sriov_numvfs_show, "Serialize vs
 * sriov_numvfs_store()"; later kernels take the sriov mutex there instead, held by the store all
 * the same). sriov_vf_total_msix takes it too, but only drivers with per-VF MSI-X have it. Every
 * other attribute (vendor, config, sriov_totalvfs, reset_method, links...) reads without it.
 *
 * The hold is recorded in ROOT/.hostdev-sim/held/<id>/record.json, the regular files' values with
 * it, before any file is swapped: if the holding process dies (SIGKILL), a detached guardian (and
 * any later SimKernel) puts the regular files back, so the tree never keeps a FIFO.
 */
interface HeldFile {
  /** The attribute's absolute path in the tree. */
  readonly file: string;
  /** Its content when the hold began. */
  readonly value: string;
  readonly mode: number;
  /** A second name of the FIFO, under the held directory, to reach readers after the swap back. */
  readonly fifo: string;
}

export interface HeldRecord {
  readonly id: string;
  readonly pid: number;
  /** The device directories whose device_lock the hold stands for. */
  readonly locked: readonly string[];
  readonly files: readonly HeldFile[];
  /** Links the write removed before it blocked (absolute path, target), put back on restore. */
  readonly links: readonly { readonly link: string; readonly target: string }[];
}

/** The attributes of a device whose reads take its device_lock (see above). */
const LOCKED_READ_ATTRIBUTES = ['driver_override', 'sriov_numvfs'] as const;

function heldRoot(root: string): string {
  return path.join(simDir(root), 'held');
}

function recordFile(root: string, id: string): string {
  return path.join(heldRoot(root), id, 'record.json');
}

function readHeld(root: string, id: string): HeldRecord | null {
  try {
    return JSON.parse(fs.readFileSync(recordFile(root, id), 'utf8')) as HeldRecord;
  } catch {
    return null;
  }
}

function heldRecords(root: string): HeldRecord[] {
  let ids: string[];
  try {
    ids = fs.readdirSync(heldRoot(root));
  } catch {
    return [];
  }
  return ids.flatMap((id) => readHeld(root, id) ?? []);
}

/** The value a held file had when its hold began, or null when the file is not held. */
export function heldValue(root: string, file: string): string | null {
  for (const record of heldRecords(root)) {
    const found = record.files.find((f) => f.file === file);
    if (found) return found.value;
  }
  return null;
}

export function isHeld(root: string, file: string): boolean {
  return heldValue(root, file) !== null;
}

/** Whether a hold stands for this device directory's lock. */
export function isLocked(root: string, deviceDir: string): boolean {
  return heldRecords(root).some((r) => r.locked.includes(deviceDir));
}

/**
 * Takes the locks of these device directories: swaps each of their LOCKED_READ_ATTRIBUTES for a
 * FIFO (same name, same mode), removes the `unlinked` symlinks, and records the hold for `pid`.
 */
export function hold(root: string, id: string, locked: readonly string[], unlinked: readonly string[] = [], pid = process.pid): HeldRecord {
  const dir = path.join(heldRoot(root), id);
  fs.mkdirSync(dir, { recursive: true });
  const files = locked.flatMap((d) => LOCKED_READ_ATTRIBUTES.map((a) => path.join(d, a)));
  const held: HeldFile[] = [];
  for (const [n, file] of files.entries()) {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(file);
    } catch {
      continue;
    }
    if (!stat.isFile() || isHeld(root, file)) continue;
    held.push({ file, value: fs.readFileSync(file, 'latin1'), mode: stat.mode & 0o777, fifo: path.join(dir, `${n}.fifo`) });
  }
  const links = unlinked.flatMap((link) => {
    try {
      return [{ link, target: fs.readlinkSync(link) }];
    } catch {
      return [];
    }
  });
  const record: HeldRecord = { id, pid, locked, files: held, links };
  // The record (with every value) is on disk before the first swap: whoever restores needs it.
  fs.writeFileSync(`${recordFile(root, id)}.tmp`, JSON.stringify(record));
  fs.renameSync(`${recordFile(root, id)}.tmp`, recordFile(root, id));
  for (const f of held) {
    // Node has no mkfifo(2).
    execFileSync('mkfifo', ['-m', f.mode.toString(8), f.fifo]);
    const swap = `${f.fifo}.swap`;
    fs.linkSync(f.fifo, swap);
    fs.renameSync(swap, f.file);
  }
  for (const l of links) fs.rmSync(l.link, { force: true });
  return record;
}

/**
 * Puts the regular files back, with the values they had when the hold began (atomic renames), and
 * the removed links.
 */
export function restoreFiles(record: HeldRecord): void {
  for (const l of record.links) {
    try {
      fs.symlinkSync(l.target, l.link);
    } catch {
      /* there again, or its directory is gone */
    }
  }
  for (const f of record.files) {
    const tmp = `${f.fifo}.value`;
    fs.writeFileSync(tmp, f.value, { encoding: 'latin1', mode: f.mode });
    fs.chmodSync(tmp, f.mode);
    try {
      fs.renameSync(tmp, f.file);
    } catch {
      // the attribute's directory went away meanwhile (a removed device)
      fs.rmSync(tmp, { force: true });
    }
  }
}

/**
 * Lets the readers blocked on the FIFOs go: each FIFO gets the file's current content (the value
 * the kernel's show() returns once the lock is free), or its old one when the file is gone. Then
 * the hold's record goes. Readers that are woken together share one FIFO: the first reads the
 * value and the others an empty file (a FIFO cannot hand one message to each reader).
 */
export function letGo(root: string, record: HeldRecord): void {
  for (const f of record.files) {
    let content = f.value;
    try {
      if (fs.lstatSync(f.file).isFile()) content = fs.readFileSync(f.file, 'latin1');
    } catch {
      /* gone: the old value */
    }
    // Opening the write end wakes every reader waiting in open(); closing it gives them end of file.
    let fd: number;
    try {
      fd = fs.openSync(f.fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    } catch {
      continue; // ENXIO: nobody is waiting (or the FIFO is gone)
    }
    try {
      fs.writeSync(fd, content);
    } catch {
      /* the readers left */
    } finally {
      fs.closeSync(fd);
    }
  }
  fs.rmSync(path.join(heldRoot(root), record.id), { recursive: true, force: true });
}

/** Restores the holds whose process died; returns their ids. */
export function recoverOrphans(root: string): string[] {
  const out: string[] = [];
  for (const record of heldRecords(root)) {
    if (processAlive(record.pid)) continue;
    restoreFiles(record);
    letGo(root, record);
    out.push(record.id);
  }
  return out;
}

/** The compiled guardian: beside this file in dist/, or in dist/ when this file runs from src/ (tests). */
function guardianScript(): string {
  const beside = fileURLToPath(new URL('./held-guardian.js', import.meta.url));
  return fs.existsSync(beside) ? beside : fileURLToPath(new URL('../../dist/sim/held-guardian.js', import.meta.url));
}

/**
 * Starts a detached process that watches the holder: when it dies with the hold still recorded,
 * the guardian restores the files; when the record goes (a normal release), the guardian exits.
 */
export function guard(root: string, id: string, pid = process.pid): void {
  const child = spawn(process.execPath, [guardianScript(), root, id, String(pid)], { detached: true, stdio: 'ignore' });
  child.on('error', () => {});
  child.unref();
}

/** The guardian's loop (src/sim/held-guardian.ts); true when it restored an orphaned hold. */
export async function guardHold(root: string, id: string, pid: number, intervalMs = 100): Promise<boolean> {
  for (;;) {
    const record = readHeld(root, id);
    if (record === null || record.pid !== pid) return false;
    if (!processAlive(pid)) {
      restoreFiles(record);
      letGo(root, record);
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
