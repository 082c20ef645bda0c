import fs from 'node:fs';
import path from 'node:path';
import { OutsideRootError } from '../platform/contain.js';
import { KernelWriteError, ModuleLoadError, type KernelPort } from '../sysfs/kernel-port.js';
import { SysfsLayout } from '../sysfs/paths.js';
import { Errno, fail } from './errno.js';
import { FaultGate } from './fault-gate.js';
import { removeDevice, rescan, sriovNumvfs, type TopologyContext } from './kernel-topology.js';
import { blockedFile, faultsFromEnv, type Fault } from './faults.js';
import { guard, hold, isHeld, isLocked, letGo, recoverOrphans, restoreFiles, type HeldRecord } from './held-files.js';
import { idMatches, simDir, type DriverId } from './host-model.js';
import { hexFields, kstrtobool, kstrtoul, sysfsName } from './kstr.js';
import { SimTree } from './sim-tree.js';
import { SimState, type DriverRow, type SimEvent, type SimEventAction } from './state-db.js';
import { hex, writeDriverDir } from './tree-writer.js';
import { dropDanglingLinks, mdevAttributes, mdevPoolOf, nextFreeGroup, plugUsb, removeBelow, removeMdev, unplugUsb, writeBelow, writeMdev } from './nonpci-tree.js';
import type { UsbDeviceSpec } from './spec.js';
import { mdevParentOf, readHostModel } from './host-model.js';
import { isVfioDriver } from '../core/stub-driver.js';

/** The vfio-pci device a blocked write releases, and the device locks it holds meanwhile. */
interface VfioRelease {
  readonly dir: string;
  readonly group: number | null;
  readonly record: HeldRecord;
}

/** One write as the simulated kernel saw it, for tests. */
export interface WriteRecord {
  readonly path: string;
  readonly value: string;
  /** null when the write succeeded. */
  readonly errno: string | null;
}

export interface SimKernelOptions {
  /** Faults for this instance, in addition to $HOSTDEV_SIM_FAULTS and faults.json. */
  readonly faults?: readonly Fault[];
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * The simulated kernel: applies each sysfs write to the tree under `root` as Linux would
 * (drivers/pci/pci-sysfs.c, pci-driver.c, iov.c, drivers/base/bus.c, vfio-pci), with the real
 * errno values. Its own state lives in ROOT/.hostdev-sim/ so separate processes share one host.
 */
export class SimKernel implements KernelPort {
  readonly root: string;
  readonly layout: SysfsLayout;
  /** Every write this instance performed, in order, with its outcome. */
  readonly writes: WriteRecord[] = [];
  private readonly tree: SimTree;
  private stateDb: SimState | null = null;
  private readonly gate: FaultGate;
  private writeCount = 0;

  constructor(root: string, options: SimKernelOptions = {}) {
    this.layout = new SysfsLayout(root);
    this.root = this.layout.root;
    this.tree = new SimTree(this.root);
    this.gate = new FaultGate(this.root, [...faultsFromEnv(options.env ?? process.env), ...(options.faults ?? [])]);
    // A process killed while it held device locks left FIFOs in the tree (its guardian normally
    // restores them first).
    for (const id of recoverOrphans(this.root)) fs.rmSync(blockedFile(this.root, id), { force: true });
  }

  private get state(): SimState {
    this.stateDb ??= new SimState(this.root);
    return this.stateDb;
  }

  close(): void {
    this.stateDb?.close();
    this.stateDb = null;
  }

  // ---- test and fault-injection surface ----

  inject(fault: Fault): void {
    this.gate.inject(fault);
  }

  clearFaults(): void {
    this.gate.clear();
  }

  /** Releases a write blocked by a `block` fault with this id (in this process). */
  release(id: string): void {
    this.gate.release(id);
  }

  resetCount(address: string): number {
    return this.state.resetCount(address);
  }

  events(): SimEvent[] {
    try {
      return fs
        .readFileSync(this.state.eventsFile, 'utf8')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as SimEvent);
    } catch {
      return [];
    }
  }

  // ---- KernelPort ----

  /** A write whose path, or a file it would change, a link leads out of the root is refused whole (EXDEV). */
  async write(hostPath: string, value: string): Promise<void> {
    try {
      await this.writeInside(hostPath, value);
    } catch (error) {
      if (!(error instanceof OutsideRootError)) throw error;
      this.writes.push({ path: hostPath, value, errno: 'EXDEV' });
      throw KernelWriteError.outsideRoot(hostPath, value, error);
    }
  }

  private async writeInside(hostPath: string, value: string): Promise<void> {
    await this.waitForDeviceLocks(hostPath, value);
    const held = await this.maybeBlock(hostPath, value);
    this.writeCount++;
    this.gate.crashIfDue(this.writeCount, 'before', this.locked);
    let errno: string | null = null;
    try {
      this.state.transaction(() => {
        if (held) restoreFiles(held.record);
        const injected = this.gate.takeFail(hostPath);
        if (injected !== null) fail(injected);
        this.apply(hostPath, value);
        if (held) this.finishVfioRelease(held);
      });
    } catch (error) {
      if (!(error instanceof Errno)) throw error;
      errno = error.errno;
    } finally {
      // the locks go with the write: blocked readers get what the files hold now
      if (held) letGo(this.root, held.record);
    }
    this.writes.push({ path: hostPath, value, errno });
    this.gate.crashIfDue(this.writeCount, 'after', this.locked);
    if (errno !== null) throw new KernelWriteError(hostPath, value, errno);
  }

  async loadModule(name: string): Promise<void> {
    let known: boolean;
    try {
      known = this.state.transaction(() => {
        const row = this.state.driver(name);
        if (!row) return false;
        // The driver directory is what says a module is loaded: it is built aside and renamed into
        // place whole, so a kill leaves it complete or absent. A kill after the rename but before
        // this transaction commits leaves the row saying "not loaded": the next load completes it.
        if (this.tree.driverLoaded(name)) {
          if (!row.loaded) {
            this.state.setLoaded(name);
            this.vfioNodes(name);
            this.driverAttach(this.state.driver(name)!);
          }
          return true;
        }
        const staging = path.join(simDir(this.root), 'loading');
        this.tree.files.rm(staging, { recursive: true });
        writeDriverDir(this.root, name, path.join(staging, name));
        this.state.setLoaded(name);
        this.tree.files.rename(path.join(staging, name), path.join(this.root, 'sys/bus/pci/drivers', name));
        this.vfioNodes(name);
        this.driverAttach(this.state.driver(name)!);
        return true;
      });
    } catch (error) {
      if (error instanceof OutsideRootError) throw KernelWriteError.outsideRoot(`/sys/bus/pci/drivers/${name}`, '', error);
      throw error;
    }
    if (!known) throw new ModuleLoadError(name, `modprobe: FATAL: Module ${name} not found (the simulated host has no such driver)`, 'ENOENT');
  }

  /** vfio-pci's module init makes /dev/vfio/vfio. */
  private vfioNodes(name: string): void {
    if (name !== 'vfio-pci') return;
    this.tree.files.mkdir(path.join(this.root, 'dev/vfio'));
    this.tree.files.writeFile(path.join(this.root, 'dev/vfio/vfio'), '');
  }

  // ---- faults ----

  private readonly locked = <T>(fn: () => T): T => this.state.transaction(fn);

  /**
   * A `block` fault: waits until released. With stage 'vfio-release' it first does what Linux
   * does before vfio-pci's remove waits for the user to let go of the device: the device's
   * driver links go (its directory, /dev/vfio/<group> and everything else stay), the device
   * locks the write holds are taken (held-files.ts: reads of the attributes that take them block
   * in the tree from then on), and only then the write blocks. Returns that device, whose unbind
   * the write completes, and the hold that the write lets go of.
   */
  private async maybeBlock(hostPath: string, value: string): Promise<VfioRelease | null> {
    const fault = this.gate.takeBlock(hostPath, this.locked);
    if (fault === null) return null;
    let held: VfioRelease | null = null;
    if (fault.stage === 'vfio-release') {
      held = this.state.transaction(() => {
        const found = this.vfioDeviceReleasedBy(hostPath, value);
        if (found === null) return null;
        const group = this.tree.groupOf(found.dir);
        this.tree.unbind(found.dir, 'vfio-pci');
        // SR-IOV disable (pci_iov_remove_virtfn) drops the VF's virtfnN and physfn links before it
        // stops the VF; the write puts them back before it removes the VF as a whole.
        const pf = this.tree.physfn(found.dir);
        const index = pf !== null && found.locked.includes(pf) ? this.tree.virtfns(pf).find((v) => v.dir === found.dir)?.index : undefined;
        const unlinked = index === undefined || pf === null ? [] : [path.join(pf, `virtfn${index}`), path.join(found.dir, 'physfn')];
        return { dir: found.dir, group, record: hold(this.root, fault.id, found.locked, unlinked) };
      });
      if (held === null) return null;
      guard(this.root, fault.id);
    }
    await this.gate.waitReleased(fault.id);
    return held;
  }

  /**
   * The first device on vfio-pci this write would unbind (sriov_numvfs 0, remove, unbind), and the
   * devices whose lock is held while its remove waits: that device (device_release_driver), and
   * the PF whose sriov_numvfs or remove write removes its VFs (sriov_numvfs_store, or the PF's
   * own driver release, disable SR-IOV under the PF's lock).
   */
  private vfioDeviceReleasedBy(hostPath: string, value: string): { dir: string; locked: string[] } | null {
    const dir = this.attributeDir(hostPath);
    if (dir === null) return null;
    const attr = path.basename(hostPath);
    const onVfio = (d: string) => this.tree.driverOf(d) === 'vfio-pci';
    const found = (d: string | null | undefined): { dir: string; locked: string[] } | null => {
      if (d === null || d === undefined) return null;
      const pfLocked = (attr === 'sriov_numvfs' || attr === 'remove') && this.tree.physfn(d) === dir;
      return { dir: d, locked: pfLocked ? [d, dir] : [d] };
    };
    if (this.tree.rel(dir) === 'sys/bus/pci/drivers/vfio-pci' && attr === 'unbind') {
      const target = this.tree.deviceDir(sysfsName(value));
      return found(target !== null && onVfio(target) ? target : null);
    }
    if (!this.tree.isDeviceDir(dir)) return null;
    if (attr === 'sriov_numvfs' && kstrtoul(value) === 0) {
      return found(this.tree.virtfns(dir).find((v) => onVfio(v.dir))?.dir);
    }
    if (attr === 'remove') return found(this.removedWith(dir).find(onVfio));
    return null;
  }

  /** The devices a `remove` of this device takes away: its subtree and their VFs. */
  private removedWith(dir: string): string[] {
    return this.tree.subtree(dir).flatMap((d) => [d, ...this.tree.virtfns(d).map((v) => v.dir)]);
  }

  /**
   * A write that needs a device lock a blocked write holds waits for it, as on Linux: the held
   * attributes' stores (driver_override, sriov_numvfs), reset (pci_dev_lock), bind, unbind
   * and drivers_probe naming the device (device_lock around probe and release), and a remove
   * that takes the device away (its driver is released under its lock).
   */
  private async waitForDeviceLocks(hostPath: string, value: string): Promise<void> {
    const needs = (): boolean => {
      const dir = this.attributeDir(hostPath);
      if (dir === null) return false;
      const attr = path.basename(hostPath);
      const rel = this.tree.rel(dir);
      const named = rel === 'sys/bus/pci' ? attr === 'drivers_probe' : /^sys\/bus\/pci\/drivers\/[^/]+$/.test(rel) && (attr === 'bind' || attr === 'unbind');
      if (named) {
        const target = this.tree.deviceDir(sysfsName(value));
        return target !== null && isLocked(this.root, target);
      }
      if (attr === 'remove' && this.tree.isDeviceDir(dir)) return this.removedWith(dir).some((d) => isLocked(this.root, d));
      return isHeld(this.root, path.join(dir, attr)) || (attr === 'reset' && isLocked(this.root, dir));
    };
    while (needs()) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  /** The real directory of the attribute a host path names, or null when it does not resolve. */
  private attributeDir(hostPath: string): string | null {
    try {
      return fs.realpathSync(path.dirname(this.layout.resolve(hostPath)));
    } catch {
      return null;
    }
  }

  /** Completes the unbind a 'vfio-release' block began: the uevent, and the group's node. */
  private finishVfioRelease(held: VfioRelease): void {
    if (held.group !== null && !this.groupHasVfio(held.group)) this.tree.files.rm(this.tree.vfioNode(held.group));
    this.state.event('unbind', path.basename(held.dir), 'vfio-pci');
  }

  // ---- the kernel ----

  private apply(hostPath: string, value: string): void {
    // Only sysfs takes writes: not the simulator's own files, not anything else under the root.
    if (!SysfsLayout.isSysfsPath(hostPath)) return fail('ENOENT');
    const target = this.layout.resolve(hostPath);
    // Links on the way are resolved and must stay under the root (OutsideRootError otherwise).
    const dir = this.tree.files.resolve(path.dirname(target));
    if (!fs.existsSync(dir)) return fail('ENOENT');
    const attr = path.basename(target);
    const file = path.join(dir, attr);
    if (!fs.existsSync(file)) fail('ENOENT');
    // What open(2) of something that is no attribute gives: a directory, a socket in its place.
    const kind = fs.statSync(file);
    if (kind.isDirectory()) fail('EISDIR');
    if (!kind.isFile() && !kind.isFIFO()) fail('ENXIO');
    const rel = this.tree.rel(dir);
    if (rel === 'sys/bus/pci') return this.busAttr(attr, value, file);
    if (attr === 'create' && path.basename(path.dirname(dir)) === 'mdev_supported_types') return this.mdevCreate(dir, value);
    if (attr === 'remove' && fs.existsSync(path.join(dir, 'mdev_type'))) return this.mdevRemove(dir, value);
    if (attr === 'remove' && fs.existsSync(path.join(dir, 'idVendor')) && fs.existsSync(path.join(dir, 'devpath'))) return this.usbRemove(dir);
    const driver = /^sys\/bus\/pci\/drivers\/([^/]+)$/.exec(rel);
    if (driver) return this.driverAttr(driver[1]!, attr, value, file);
    if (this.tree.isDeviceDir(dir)) return this.deviceAttr(dir, attr, value, file);
    return this.plainWrite(file, value);
  }

  /** An attribute with no behaviour of its own: stored if writable (kernfs: EACCES if not). */
  private plainWrite(file: string, value: string): void {
    if ((fs.statSync(file).mode & 0o222) === 0) fail('EACCES');
    this.tree.files.writeFile(file, value);
  }

  private emit(action: SimEventAction, dir: string, driver?: string): void {
    this.state.event(action, path.basename(dir), driver);
  }

  private busAttr(attr: string, value: string, file: string): void {
    switch (attr) {
      case 'drivers_probe': {
        // bus.c drivers_probe_store: ENODEV for an unknown name, else attach if unbound; a
        // probe that finds no driver (or fails) still returns success.
        const dir = this.tree.deviceDir(sysfsName(value)) ?? fail('ENODEV');
        if (this.tree.driverOf(dir) === null) this.deviceAttach(dir);
        return;
      }
      case 'rescan': {
        const n = kstrtoul(value) ?? fail('EINVAL');
        if (n !== 0) rescan(this.topology);
        return;
      }
      default:
        return this.plainWrite(file, value);
    }
  }

  private driverAttr(name: string, attr: string, value: string, file: string): void {
    const driver = this.state.driver(name) ?? this.adoptDriver(name);
    switch (attr) {
      case 'bind': {
        // bus.c bind_store: the device must exist and match the driver (override or ID
        // table), else ENODEV; a bound device is EBUSY; a failing probe returns its error.
        const dir = this.tree.deviceDir(sysfsName(value)) ?? fail('ENODEV');
        if (!this.matches(driver, dir)) fail('ENODEV');
        if (this.tree.driverOf(dir) !== null) fail('EBUSY');
        const errno = this.probe(driver, dir);
        if (errno !== null) fail(errno);
        return;
      }
      case 'unbind': {
        const dir = this.tree.deviceDir(sysfsName(value)) ?? fail('ENODEV');
        if (this.tree.driverOf(dir) !== name) fail('ENODEV');
        this.unbindDevice(dir, name);
        return;
      }
      case 'new_id':
        return this.newId(driver, value);
      case 'remove_id':
        return this.removeId(driver, value);
      default:
        return this.plainWrite(file, value);
    }
  }

  private deviceAttr(dir: string, attr: string, value: string, file: string): void {
    switch (attr) {
      case 'driver_override': {
        // driver_set_override: stops at the first newline; empty clears.
        if (value.length >= 4095) fail('EINVAL');
        const name = value.split('\n')[0]!;
        this.tree.writeAttr(dir, 'driver_override', `${name === '' ? '(null)' : name}\n`);
        return;
      }
      case 'remove': {
        const n = kstrtoul(value) ?? fail('EINVAL');
        if (n !== 0) {
          removeDevice(this.topology, dir);
          dropDanglingLinks(this.root);
        }
        return;
      }
      case 'reset':
        return this.reset(dir, value);
      case 'reset_method':
        return this.resetMethod(dir, value);
      case 'sriov_numvfs':
        sriovNumvfs(this.topology, dir, value);
        dropDanglingLinks(this.root);
        return;
      case 'sriov_drivers_autoprobe': {
        const on = kstrtobool(value) ?? fail('EINVAL');
        this.tree.writeAttr(dir, 'sriov_drivers_autoprobe', `${on ? 1 : 0}\n`);
        return;
      }
      default:
        return this.plainWrite(file, value);
    }
  }

  /** A driver directory nobody declared (a hand-made tree grew one): loaded, empty table. */
  private adoptDriver(name: string): DriverRow {
    this.state.db
      .prepare(`INSERT OR IGNORE INTO drivers (name, ord, loaded, ids) VALUES (?, (SELECT COALESCE(MAX(ord), 0) + 1 FROM drivers), 1, '[]')`)
      .run(name);
    return this.state.driver(name)!;
  }

  // ---- matching and probing (pci-driver.c) ----

  /** pci_match_device: an override admits only the named driver; dynamic IDs before static. */
  private matches(driver: DriverRow, dir: string): boolean {
    const override = this.tree.override(dir);
    if (override !== null) return override === driver.name;
    const ids = this.tree.ids(dir);
    return driver.dynIds.some((id) => idMatches(id, ids)) || driver.ids.some((id) => idMatches(id, ids));
  }

  /** The driver's probe: null on success (device bound), or the errno it fails with. */
  private probe(driver: DriverRow, dir: string): string | null {
    if (isVfioDriver(driver.name)) {
      // vfio-pci (and its variants, through vfio_pci_core) refuses bridges, and a device without an IOMMU group (no no-IOMMU mode).
      if (this.tree.isBridge(dir)) return 'EINVAL';
      const group = this.tree.groupOf(dir);
      if (group === null) return 'EINVAL';
      const node = this.tree.vfioNode(group);
      if (!fs.existsSync(node)) {
        this.tree.files.mkdir(path.dirname(node));
        this.tree.files.writeFile(node, '');
      }
    }
    const address = path.basename(dir);
    const net = this.state.netdevs(address);
    this.tree.bind(dir, driver.name, net && net.driver === driver.name ? net.names : []);
    const below = readHostModel(this.root)?.below?.[address];
    if (below?.driver === driver.name) writeBelow(this.root, this.tree.rel(dir), address, below);
    this.emit('bind', dir, driver.name);
    return null;
  }

  /** device_attach: try each loaded driver in registration order until one probes. */
  private deviceAttach(dir: string): void {
    for (const driver of this.state.drivers()) {
      // Loaded means its directory is there (see loadModule), whatever the row says.
      if (!this.tree.driverLoaded(driver.name)) continue;
      if (this.matches(driver, dir) && this.probe(driver, dir) === null) return;
    }
  }

  /** driver_attach: a newly registered driver (or new ID) binds every unbound device it matches. */
  private driverAttach(driver: DriverRow): void {
    for (const address of this.tree.addresses()) {
      const dir = this.tree.deviceDir(address);
      if (dir && this.tree.driverOf(dir) === null && this.matches(driver, dir)) this.probe(driver, dir);
    }
  }

  /** Unbinds: the driver's remove; vfio-pci drops /dev/vfio/<group> with the group's last device. */
  private unbindDevice(dir: string, driver: string): void {
    const address = path.basename(dir);
    const names = this.tree.netdevNames(dir);
    if (names.length > 0) this.state.setNetdevs(address, driver, names);
    if (readHostModel(this.root)?.below?.[address]?.driver === driver) removeBelow(this.root, dir);
    this.tree.unbind(dir, driver);
    if (isVfioDriver(driver)) {
      const group = this.tree.groupOf(dir);
      if (group !== null && !this.groupHasVfio(group)) this.tree.files.rm(this.tree.vfioNode(group));
    }
    this.emit('unbind', dir, driver);
  }

  private groupHasVfio(group: number): boolean {
    return this.tree.groupMembers(group).some((a) => {
      const dir = this.tree.deviceDir(a);
      const driver = dir !== null ? this.tree.driverOf(dir) : null;
      return driver !== null && isVfioDriver(driver);
    });
  }

  // ---- mediated devices (drivers/vfio/mdev/mdev_sysfs.c, mdev_core.c) ----

  /**
   * create_store: 36 or 37 bytes (a UUID, perhaps with echo's newline) that guid_parse takes, else
   * EINVAL; a UUID that names an mdev already EEXIST; a type with no instance left EUSERS. The
   * mdev binds to its parent's mdev driver and gets an IOMMU group of its own.
   */
  private mdevCreate(typeDir: string, value: string): void {
    if (value.length < 36 || value.length > 37) fail('EINVAL');
    const uuid = value.slice(0, 36).toLowerCase();
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) fail('EINVAL');
    if (fs.existsSync(path.join(this.root, 'sys/bus/mdev/devices', uuid))) fail('EEXIST');
    const available = kstrtoul(this.tree.attr(typeDir, 'available_instances') ?? '0') ?? 0;
    if (available < 1) fail('EUSERS');
    const parentDir = path.dirname(path.dirname(typeDir));
    const parent = path.basename(parentDir);
    const model = readHostModel(this.root);
    const parentSpec = mdevParentOf(model, parent);
    const driver = parentSpec?.driver ?? 'vfio_mdev';
    const group = model?.iommu === false ? null : nextFreeGroup(this.root);
    writeMdev(this.root, this.tree.rel(parentDir), path.basename(typeDir), uuid, driver, group, mdevAttributes(parentSpec, path.basename(typeDir)), mdevPoolOf(parentSpec));
    this.state.event('add', uuid);
  }

  /** remove_store: a number (kstrtoul base 0) or EINVAL; 0 does nothing; anything else removes the mdev. */
  private mdevRemove(dir: string, value: string): void {
    const n = kstrtoul(value) ?? fail('EINVAL');
    if (n === 0) return;
    removeMdev(this.root, dir, mdevPoolOf(mdevParentOf(readHostModel(this.root), path.basename(path.dirname(dir)))));
    this.state.event('remove', path.basename(dir));
  }

  // ---- USB (drivers/usb/core/sysfs.c remove_store) ----

  /** Any value logically unplugs the device (usb_remove_device); a root hub has no port to leave: EINVAL. */
  private usbRemove(dir: string): void {
    if (this.tree.attr(dir, 'devpath') === '0') fail('EINVAL');
    unplugUsb(this.root, dir);
    this.state.event('remove', path.basename(dir));
  }

  /** Test surface: a device plugged into a port of a hub that is there (what no sysfs write can do). Returns its name (1-1.2). */
  plugUsb(bus: number, device: UsbDeviceSpec): string {
    const name = plugUsb(this.root, bus, device);
    this.state.event('add', name);
    return name;
  }

  // ---- dynamic IDs (pci-driver.c new_id_store / remove_id_store) ----

  private parseId(value: string): { id: DriverId; fields: number } {
    const f = hexFields(value);
    if (f.length < 2) fail('EINVAL');
    const id: { -readonly [K in keyof DriverId]: DriverId[K] } = {
      vendor: hex(f[0]!, 4),
      device: hex(f[1]!, 4),
    };
    if (f.length > 2 && f[2] !== 0xffffffff) id.subsystemVendor = hex(f[2]!, 4);
    if (f.length > 3 && f[3] !== 0xffffffff) id.subsystemDevice = hex(f[3]!, 4);
    if (f.length > 4) {
      id.class = hex(f[4]!, 6);
      id.classMask = hex(f[5] ?? 0, 6);
    }
    return { id, fields: f.length };
  }

  private newId(driver: DriverRow, value: string): void {
    const { id, fields } = this.parseId(value);
    const probeIds = { vendor: id.vendor!, device: id.device!, subsystemVendor: id.subsystemVendor ?? '', subsystemDevice: id.subsystemDevice ?? '', class: id.class ?? '' };
    // Only when driver_data is not given does the kernel refuse IDs its static table has.
    if (fields < 7 && driver.ids.some((s) => idMatches(s, probeIds))) fail('EEXIST');
    if (driver.dynIds.some((d) => JSON.stringify(d) === JSON.stringify(id))) fail('EEXIST');
    this.state.setDynIds(driver.name, [...driver.dynIds, id]);
    this.driverAttach(this.state.driver(driver.name)!);
  }

  private removeId(driver: DriverRow, value: string): void {
    const { id } = this.parseId(value);
    const keep = driver.dynIds.filter(
      (d) =>
        !(
          d.vendor === id.vendor &&
          d.device === id.device &&
          (id.subsystemVendor === undefined || d.subsystemVendor === id.subsystemVendor) &&
          (id.subsystemDevice === undefined || d.subsystemDevice === id.subsystemDevice)
        ),
    );
    if (keep.length === driver.dynIds.length) fail('ENODEV');
    this.state.setDynIds(driver.name, keep);
  }

  // ---- reset (pci-sysfs.c reset_store, reset_method_store) ----

  private supportedResets(dir: string): string[] {
    const address = path.basename(dir);
    let supported = this.state.supportedResetMethods(address);
    if (supported === null) {
      supported = (this.tree.attr(dir, 'reset_method') ?? '').split(/\s+/).filter((m) => m.length > 0);
      this.state.setSupportedResetMethods(address, supported);
    }
    return supported;
  }

  private reset(dir: string, value: string): void {
    if (kstrtoul(value) !== 1) fail('EINVAL');
    const methods = (this.tree.attr(dir, 'reset_method') ?? '').split(/\s+/).filter((m) => m.length > 0);
    if (methods.length === 0) fail('ENOTTY');
    this.state.countReset(path.basename(dir));
  }

  private resetMethod(dir: string, value: string): void {
    const supported = this.supportedResets(dir);
    const text = sysfsName(value).trim();
    if (text === 'default') {
      this.tree.writeAttr(dir, 'reset_method', `${supported.join(' ')}\n`);
      return;
    }
    const wanted = text.split(/\s+/).filter((m) => m.length > 0);
    if (wanted.some((m) => !supported.includes(m))) fail('EINVAL');
    this.tree.writeAttr(dir, 'reset_method', `${wanted.join(' ')}\n`);
  }

  /** What the SR-IOV and remove/rescan code (kernel-topology.ts) may use of this kernel. */
  private get topology(): TopologyContext {
    return {
      root: this.root,
      tree: this.tree,
      state: this.state,
      emit: (action, dir, driver) => this.emit(action, dir, driver),
      deviceAttach: (dir) => this.deviceAttach(dir),
      unbindDevice: (dir, driver) => this.unbindDevice(dir, driver),
    };
  }
}
