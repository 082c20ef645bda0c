import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { tryParseAddress, type PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import { readDevicesBounded, readTimeoutFromEnv, type SlowReadListener } from '../sysfs/bounded-inventory.js';
import { readDevice, readVfGeneration, readVirtfnLinks, type VirtfnLink } from '../sysfs/read-device.js';
import type { SysfsLayout } from '../sysfs/paths.js';
import { readVfioAliases, type VfioAliasTable } from '../host/modules-alias.js';

/** How long an operation waits for device reads the kernel holds up, and who hears about it meanwhile. */
export interface DeviceWait {
  readonly timeoutMs?: number;
  readonly onSlow?: SlowReadListener;
}

/**
 * The reads the manager needs between writes: one device, its driver link, a group's members,
 * the functions of a bus. Reads only what a request touches, never the whole inventory, so an
 * operation costs the same on a host with 16 or 4,096 functions.
 */
export class HostReader {
  constructor(readonly layout: SysfsLayout) {}

  device(address: PciAddress): PciDevice | null {
    try {
      return readDevice(this.layout, address, { names: null });
    } catch {
      // Vanishing while being read (a VF removed by sriov_numvfs=0) is the same as vanished.
      return existsSync(this.layout.device(address)) ? readDevice(this.layout, address, { names: null }) : null;
    }
  }

  /**
   * Some devices, read in a bounded reader process (see readDevicesBounded): what a plan is made
   * of, so that a device the kernel holds (a VF whose removal waits for its VM) never blocks this
   * process, and the wait is bounded and told.
   */
  devices(addresses: readonly PciAddress[], wait: DeviceWait = {}): Promise<Map<PciAddress, PciDevice | null>> {
    return readDevicesBounded(this.layout, addresses, {
      timeoutMs: wait.timeoutMs ?? readTimeoutFromEnv(),
      ...(wait.onSlow === undefined ? {} : { onSlow: wait.onSlow }),
    });
  }

  /** A PF's virtfnN links with their N (the VF indexes); [] for anything else. */
  virtfnLinks(pf: PciAddress): VirtfnLink[] {
    return readVirtfnLinks(this.layout, pf);
  }

  exists(address: PciAddress): boolean {
    return existsSync(this.layout.device(address));
  }

  /** The driver the device is bound to now (its driver link), null when unbound or vanished. */
  driverOf(address: PciAddress): string | null {
    try {
      return path.basename(readlinkSync(this.layout.device(address, 'driver')));
    } catch {
      return null;
    }
  }

  /** The `vfio_pci:` aliases of the host kernel's modules (null: no modules.alias). */
  vfioAliases(): VfioAliasTable | null {
    return readVfioAliases(this.layout.root);
  }

  driverLoaded(name: string): boolean {
    return existsSync(this.layout.driver(name));
  }

  /** The generation of a PF's VFs: its virtfn0 link, made anew by every N -> 0 -> M. */
  vfGeneration(pf: PciAddress): string | null {
    return readVfGeneration(this.layout, pf);
  }

  /** The PF a VF's physfn link names; null for anything else (a link the kernel never holds). */
  physfnOf(address: PciAddress): PciAddress | null {
    try {
      return tryParseAddress(path.basename(readlinkSync(this.layout.device(address, 'physfn'))));
    } catch {
      return null;
    }
  }

  /** The interfaces under a device's net/ (a directory listing the kernel never holds), sorted. */
  netdevsOf(address: PciAddress): string[] {
    try {
      return readdirSync(this.layout.device(address, 'net')).sort();
    } catch {
      return [];
    }
  }

  /** The IOMMU group a device's iommu_group link names (a link the kernel never holds); null: none or vanished. */
  groupOf(address: PciAddress): number | null {
    try {
      const group = Number(path.basename(readlinkSync(this.layout.device(address, 'iommu_group'))));
      return Number.isInteger(group) ? group : null;
    } catch {
      return null;
    }
  }

  groupMembers(group: number): PciAddress[] {
    return this.addressesIn(this.layout.iommuGroup(group, 'devices'));
  }

  /** Every function on the host, from the bus directory. */
  allFunctions(): PciAddress[] {
    return this.addressesIn(this.layout.pciDevicesDir);
  }

  /** Every function on the same PCI domain:bus as `address` (itself included). */
  busFunctions(address: PciAddress): PciAddress[] {
    const bus = address.slice(0, 7);
    return this.addressesIn(this.layout.pciDevicesDir).filter((other) => other.startsWith(bus));
  }

  iommuEnabled(): boolean {
    try {
      return readdirSync(this.layout.iommuGroupsDir).length > 0;
    } catch {
      return false;
    }
  }

  vfioDevices(): string[] {
    try {
      return readdirSync(this.layout.vfioDevDir).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(a) - Number(b));
    } catch {
      return [];
    }
  }

  private addressesIn(dir: string): PciAddress[] {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    return names.map((name) => tryParseAddress(name)).filter((address): address is PciAddress => address !== null).sort();
  }
}
