import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PciAddress } from '../core/address.js';
import type { PciDevice } from '../core/device.js';
import type { HostUse } from '../core/plan-types.js';
import type { HostUsagePort } from './host-usage-port.js';

/** Where a simulated tree says how its host uses its devices. */
export function simHostUsageFile(root: string): string {
  return path.join(root, '.hostdev-sim', 'host-usage.json');
}

/**
 * `ROOT/.hostdev-sim/host-usage.json`:
 *   {"devices": {"0000:01:00.0": [{"kind": "address", "detail": "eth0 has 192.0.2.10/24"}]}}
 * A missing file means the host uses nothing.
 */
export class SimHostUsage implements HostUsagePort {
  constructor(private readonly root: string) {}

  async usesOf(devices: readonly PciDevice[]): Promise<ReadonlyMap<PciAddress, readonly HostUse[]>> {
    let text: string;
    try {
      text = await readFile(simHostUsageFile(this.root), 'utf8');
    } catch {
      return new Map();
    }
    const parsed = JSON.parse(text) as { devices?: Record<string, HostUse[]> };
    const result = new Map<PciAddress, readonly HostUse[]>();
    for (const device of devices) {
      const uses = parsed.devices?.[device.address];
      if (uses && uses.length > 0) result.set(device.address, uses);
    }
    return result;
  }
}
