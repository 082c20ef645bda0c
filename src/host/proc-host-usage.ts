import { readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import type { HostUse } from '../core/plan-types.js';
import { execIp, type IpRunner } from '../net/iproute2.js';
import { readHead } from '../platform/bounded-read.js';
import { SysfsLayout } from '../sysfs/paths.js';
import type { HostUsagePort } from './host-usage-port.js';
import { parseIpAddr, parseMounts, routedInterfaces } from './host-usage-parse.js';

/** /proc/mounts and /proc/net/route of a real host are a few KiB; a larger file is cut there. */
const PROC_FILE_MAX_BYTES = 4 * 1024 * 1024;

async function readOr(file: string, fallback: string): Promise<string> {
  try {
    return await readHead(file, PROC_FILE_MAX_BYTES);
  } catch {
    return fallback;
  }
}

/**
 * The real host: /proc/mounts and /proc/net/route under the root, `ip -j addr` (only when the root
 * is the real "/": a copied tree has no live interfaces), /sys/class/block for the disks behind a
 * device, and boot_vga for the console.
 */
export class ProcHostUsage implements HostUsagePort {
  private readonly layout: SysfsLayout;

  constructor(
    root: string,
    private readonly runIp: IpRunner | null = root === '/' ? execIp() : null,
  ) {
    this.layout = new SysfsLayout(root);
  }

  async usesOf(devices: readonly PciDevice[]): Promise<ReadonlyMap<PciAddress, readonly HostUse[]>> {
    const result = new Map<PciAddress, HostUse[]>();
    if (devices.length === 0) return result;
    const routes = routedInterfaces(await readOr(this.layout.resolve('/proc/net/route'), ''));
    const mounts = await this.mountedDisks();
    for (const device of devices) {
      const uses: HostUse[] = [];
      for (const netdev of device.netdevs) {
        for (const address of await this.addressesOf(netdev)) uses.push({ kind: 'address', detail: `${netdev} has ${address}` });
        for (const route of routes.get(netdev) ?? []) uses.push({ kind: 'route', detail: `${netdev} carries route ${route}` });
      }
      for (const mount of mounts) {
        if (mount.sysPath.includes(`/${device.address}/`)) {
          uses.push({ kind: 'mount', detail: `${mount.target} is mounted from ${mount.source}` });
        }
      }
      const bootVga = await readOr(this.layout.device(device.address, 'boot_vga'), '0');
      if (bootVga.trim() === '1') uses.push({ kind: 'console', detail: 'it is the boot VGA device (the host console)' });
      if (uses.length > 0) result.set(device.address, uses);
    }
    return result;
  }

  private async addressesOf(netdev: string): Promise<string[]> {
    if (this.runIp === null) return [];
    try {
      return parseIpAddr((await this.runIp(['-j', 'addr', 'show', 'dev', netdev])).stdout);
    } catch {
      return [];
    }
  }

  /** Mounted block devices with the sysfs path of each disk (and of the disks under a dm/md device). */
  private async mountedDisks(): Promise<Array<{ source: string; target: string; sysPath: string }>> {
    const mounts = parseMounts(await readOr(this.layout.resolve('/proc/mounts'), ''));
    const disks: Array<{ source: string; target: string; sysPath: string }> = [];
    for (const mount of mounts) {
      if (!mount.source.startsWith('/dev/')) continue;
      let name = path.basename(mount.source);
      try {
        name = path.basename(await realpath(this.layout.resolve(mount.source)));
      } catch {
        // /dev is not under a copied root; the source's own name is what /sys/class/block uses.
      }
      for (const sysPath of await this.blockPaths(name, 0)) disks.push({ ...mount, sysPath: `${sysPath}/` });
    }
    return disks;
  }

  private async blockPaths(name: string, depth: number): Promise<string[]> {
    let own: string;
    try {
      own = await realpath(this.layout.block(name));
    } catch {
      return [];
    }
    if (depth > 4) return [own];
    let slaves: string[] = [];
    try {
      slaves = await readdir(this.layout.block(name, 'slaves'));
    } catch {
      slaves = [];
    }
    const below = await Promise.all(slaves.map((slave) => this.blockPaths(slave, depth + 1)));
    return [own, ...below.flat()];
  }
}
