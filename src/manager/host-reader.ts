import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { tryParseAddress, type PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import { HostdevError } from '../core/errors.js';
import { readDevicesBounded, readTimeoutFromEnv, stallFromEnv, type SlowReadListener } from '../sysfs/bounded-inventory.js';
import { readSerialsBounded } from '../sysfs/serials.js';
import { readEntryFactsBounded, type EntryFacts } from '../sysfs/entry-facts.js';
import type { DeviceSerials } from '../core/hardware-identity.js';
import type { VirtfnLink } from '../sysfs/read-device.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import { ServingReader } from '../sysfs/serving-reader.js';
import { readVfioAliases, type VfioAliasTable } from '../host/modules-alias.js';
import { readBootId } from '../host/boot-id.js';
import { keyKind, pciAddressOf, type DeviceKey } from '../core/device-key.js';
import { readNonPciInventory } from '../sysfs/nonpci-inventory.js';

/** How long an operation waits for device reads the kernel holds up, and who hears about it meanwhile. */
export interface DeviceWait {
  readonly timeoutMs?: number;
  readonly onSlow?: SlowReadListener;
}

/**
 * The reads the manager needs between writes: one device, its driver link, a group's members,
 * the functions of a bus. Reads only what a request touches, never the whole inventory, so an
 * operation costs the same on a host with 16 or 4,096 functions.
 *
 * Every read is asynchronous and bounded (HOSTDEV_READ_TIMEOUT_MS): nothing here blocks the event
 * loop. Links and directory listings go through libuv (the kernel never holds them); attribute
 * files, which the kernel does hold (driver_override, sriov_numvfs of a PF whose VF removal waits
 * for its VM), are read only in the bounded reader process (`devices`).
 */
export class HostReader {
  /** The reader process of `devices`, kept between reads (see `serve`); null: one process per read. */
  private serving: ServingReader | null = null;

  constructor(
    readonly layout: SysfsLayout,
    private readonly boundMs: number = readTimeoutFromEnv(),
  ) {}

  /**
   * From now on `devices` reads through one long-lived reader process (until `close`): what a
   * manager does, so that each of its operations costs a round trip instead of a process start.
   */
  serve(): this {
    this.serving ??= new ServingReader(this.layout);
    return this;
  }

  close(): void {
    this.serving?.close();
    this.serving = null;
  }

  /** One device, read in the bounded reader process; null when it is not on the host. */
  async device(address: PciAddress, wait: DeviceWait = {}): Promise<PciDevice | null> {
    return (await this.devices([address], wait)).get(address) ?? null;
  }

  /**
   * Some devices, read in a bounded reader process (see readDevicesBounded): what a plan is made
   * of, so that a device the kernel holds (a VF whose removal waits for its VM) never blocks this
   * process, and the wait is bounded and told.
   */
  devices(addresses: readonly PciAddress[], wait: DeviceWait = {}): Promise<Map<PciAddress, PciDevice | null>> {
    return readDevicesBounded(this.layout, addresses, {
      timeoutMs: wait.timeoutMs ?? this.boundMs,
      ...(wait.onSlow === undefined ? {} : { onSlow: wait.onSlow }),
      ...(this.serving === null ? {} : { serving: this.serving }),
    });
  }

  /**
   * The serials (DSN, VPD) of some devices, read in a bounded reader process: a device the kernel
   * holds, or whose VPD does not answer, has unknown (null) serials instead of holding this up.
   */
  serials(addresses: readonly PciAddress[]): Promise<Map<PciAddress, DeviceSerials>> {
    return readSerialsBounded(this.layout, addresses, { stallMs: stallFromEnv() });
  }

  /**
   * Whether each device is there and its driver, for a walk of every table entry (status, recovery
   * at open), and with `ids` its IDs, with `serials` (a subset of them) also its DSN and VPD: one
   * bounded reader process for all of them. A device the kernel holds, or one the bound left
   * unread, has its links read here (the kernel never holds links) and an unknown identity.
   */
  async entryFacts(
    addresses: readonly PciAddress[],
    read: { readonly ids?: boolean; readonly serials?: ReadonlySet<PciAddress> } = {},
  ): Promise<Map<PciAddress, EntryFacts>> {
    if (addresses.length === 0) return new Map();
    const wanted = [...new Set(addresses)];
    const serials = wanted.filter((address) => read.ids === true && read.serials?.has(address) === true);
    const rest = serials.length === 0 ? wanted : wanted.filter((address) => read.serials?.has(address) !== true);
    const options = { timeoutMs: this.boundMs, stallMs: stallFromEnv() };
    const parts = await Promise.all([
      readEntryFactsBounded(this.layout, rest, { ...options, depth: read.ids === true ? 'ids' : 'links' }),
      serials.length === 0 ? new Map<PciAddress, EntryFacts>() : readEntryFactsBounded(this.layout, serials, { ...options, depth: 'serials' }),
    ]);
    const facts = new Map([...parts[0], ...parts[1]]);
    const unread = wanted.filter((address) => !facts.has(address));
    const links = await Promise.all(unread.map(async (address) => ({ address, driver: await this.driverOf(address), present: await this.exists(address) })));
    for (const { address, driver, present } of links) facts.set(address, { present, driver: present ? driver : null, identity: null });
    return facts;
  }

  /** A PF's virtfnN links with their N (the VF indexes), in N order; [] for anything else. */
  async virtfnLinks(pf: PciAddress): Promise<VirtfnLink[]> {
    const dir = this.layout.device(pf);
    const names = (await this.list(dir))
      .filter((name) => /^virtfn[0-9]+$/.test(name))
      .map((name) => ({ name, index: Number.parseInt(name.slice(6), 10) }))
      .sort((a, b) => a.index - b.index);
    const links = await Promise.all(names.map(async ({ name, index }) => ({ index, target: await this.link(path.join(dir, name)) })));
    return links.flatMap(({ index, target }) => {
      const address = target === null ? null : tryParseAddress(path.basename(target));
      return address === null ? [] : [{ index, address }];
    });
  }

  /** Whether a device of another kind is on the host (an mdev by its sysfs directory; the others through their inventory). */
  async devicePresent(key: DeviceKey): Promise<boolean> {
    const kind = keyKind(key);
    if (kind === 'pci') return this.exists(pciAddressOf(key)!);
    const inventory = await readNonPciInventory(this.layout, [kind], this.boundMs);
    return [...inventory.usb, ...inventory.mdev, ...inventory.nvme, ...inventory.scsi].some((device) => device.key === key);
  }

  async exists(address: PciAddress): Promise<boolean> {
    return this.present(this.layout.device(address));
  }

  /** Whether the function is an SR-IOV PF (it has sriov_totalvfs; looked up, never read). */
  async isPf(address: PciAddress): Promise<boolean> {
    return this.present(this.layout.device(address, 'sriov_totalvfs'));
  }

  /** The driver the device is bound to now (its driver link), null when unbound or vanished. */
  async driverOf(address: PciAddress): Promise<string | null> {
    const target = await this.link(this.layout.device(address, 'driver'));
    return target === null ? null : path.basename(target);
  }

  /** The `vfio_pci:` aliases of the host kernel's modules (null: no modules.alias). A file of /lib, not of sysfs. */
  vfioAliases(): VfioAliasTable | null {
    return readVfioAliases(this.layout.root);
  }

  async driverLoaded(name: string): Promise<boolean> {
    return this.present(this.layout.driver(name));
  }

  /** The generation of a PF's VFs: its virtfn0 link's inode and mtime, made anew by every N -> 0 -> M. */
  async vfGeneration(pf: PciAddress): Promise<string | null> {
    const file = this.layout.device(pf, 'virtfn0');
    try {
      const link = await this.bounded(file, lstat(file, { bigint: true }));
      return `${link.ino}:${link.mtimeNs}`;
    } catch (error) {
      if (error instanceof HostdevError) throw error;
      return null;
    }
  }

  /**
   * The kernel's uevent sequence number: it moves on with every device added or removed and every
   * driver bound or unbound, so while it stands still no table entry can have drifted or vanished.
   * null when the file is not there or says nothing (an older simulated tree).
   */
  async ueventSeqnum(): Promise<string | null> {
    const file = this.layout.ueventSeqnum;
    try {
      const text = (await this.bounded(file, readFile(file, 'utf8'))).trim();
      return /^\d+$/.test(text) ? text : null;
    } catch (error) {
      if (error instanceof HostdevError) throw error;
      return null;
    }
  }

  /**
   * What tells whether the host's devices may have changed since: the boot (a reboot starts the
   * sequence again) and the uevent sequence number. null when the kernel keeps no sequence number.
   */
  async hostFingerprint(): Promise<string | null> {
    const [seqnum, bootId] = await Promise.all([this.ueventSeqnum(), this.bootId()]);
    return seqnum === null ? null : `${bootId ?? 'no-boot-id'}/${seqnum}`;
  }

  /** The boot id as the table entries record it (one reading of it: host/boot-id.ts). */
  private bootId(): Promise<string | null> {
    return readBootId(this.layout.root);
  }

  /** The PF a VF's physfn link names; null for anything else (a link the kernel never holds). */
  async physfnOf(address: PciAddress): Promise<PciAddress | null> {
    const target = await this.link(this.layout.device(address, 'physfn'));
    return target === null ? null : tryParseAddress(path.basename(target));
  }

  /** The interfaces under a device's net/ (a directory listing the kernel never holds), sorted. */
  async netdevsOf(address: PciAddress): Promise<string[]> {
    return (await this.list(this.layout.device(address, 'net'))).sort();
  }

  /** The IOMMU group a device's iommu_group link names (a link the kernel never holds); null: none or vanished. */
  async groupOf(address: PciAddress): Promise<number | null> {
    const target = await this.link(this.layout.device(address, 'iommu_group'));
    if (target === null) return null;
    const group = Number(path.basename(target));
    return Number.isInteger(group) ? group : null;
  }

  groupMembers(group: number): Promise<PciAddress[]> {
    return this.addressesIn(this.layout.iommuGroup(group, 'devices'));
  }

  /** Every function on the host, from the bus directory. */
  allFunctions(): Promise<PciAddress[]> {
    return this.addressesIn(this.layout.pciDevicesDir);
  }

  /** Every function on the same PCI domain:bus as `address` (itself included). */
  async busFunctions(address: PciAddress): Promise<PciAddress[]> {
    const bus = address.slice(0, 7);
    return (await this.addressesIn(this.layout.pciDevicesDir)).filter((other) => other.startsWith(bus));
  }

  async iommuEnabled(): Promise<boolean> {
    return (await this.list(this.layout.iommuGroupsDir)).length > 0;
  }

  async vfioDevices(): Promise<string[]> {
    return (await this.list(this.layout.vfioDevDir)).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(a) - Number(b));
  }

  private async addressesIn(dir: string): Promise<PciAddress[]> {
    return (await this.list(dir))
      .map((name) => tryParseAddress(name))
      .filter((address): address is PciAddress => address !== null)
      .sort();
  }

  /** A directory's names; [] when it cannot be listed (absent, vanished). */
  private async list(dir: string): Promise<string[]> {
    try {
      return await this.bounded(dir, readdir(dir));
    } catch (error) {
      if (error instanceof HostdevError) throw error;
      return [];
    }
  }

  /** A link's target; null when it is not there. */
  private async link(file: string): Promise<string | null> {
    try {
      return await this.bounded(file, readlink(file));
    } catch (error) {
      if (error instanceof HostdevError) throw error;
      return null;
    }
  }

  private async present(file: string): Promise<boolean> {
    try {
      await this.bounded(file, lstat(file));
      return true;
    } catch (error) {
      if (error instanceof HostdevError) throw error;
      return false;
    }
  }

  /** A read that has not finished within the bound fails, naming the file (the thread it holds is the kernel's to free). */
  private bounded<T>(file: string, read: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new HostdevError('HOSTDEV_TIMEOUT', `reading ${file} did not finish within ${this.boundMs} ms`, {
              hint: 'The kernel holds the file (a device removal waiting for the VM that uses it?); retry once it lets go, or raise HOSTDEV_READ_TIMEOUT_MS.',
              details: { path: file },
            }),
          ),
        this.boundMs,
      );
      timer.unref();
    });
    return Promise.race([read, late]).finally(() => clearTimeout(timer));
  }
}
