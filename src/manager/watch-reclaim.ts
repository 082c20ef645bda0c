import type { PciAddress } from '../core/address.js';
import type { VfNetRequest } from '../core/vf-net-config.js';
import { NO_MAC } from '../net/vf-net-config.js';
import type { NetPort } from '../net/net-port.js';
import type { HostdevManager } from './hostdev-manager.js';
import { VfNetConfigurator } from './vf-net.js';
import { HostReader } from './host-reader.js';
import { vfNetLookup } from './host-view.js';
import { vfNetTargetOf } from '../core/plan-vf-net.js';
import type { Departed, ReclaimFn } from './watch-live.js';
import { formatOwner } from '../core/tables.js';

/**
 * The reclaim policy of `hostdev watch --reclaim`: a VF that returns (same PF, same index) while
 * its former domain still claims it is made ready for that domain again, the way it was given:
 * on its stub driver, managed or not as before, with the VF network config the domain had
 * (saved anew, so that release restores the host's). LiveWatch only calls this when no table
 * holds the address: a VF someone else took meanwhile is never handed back.
 */
export function vfReclaimer(manager: HostdevManager, warn: (line: string) => void): ReclaimFn {
  const reader = new HostReader(manager.layout);
  return async (departed: Departed, address: PciAddress) => {
    const owner = departed.owner;
    if (owner === null) throw new Error(`${address} had no domain`);
    const { managed, stubDriver } = departed.former.entry;
    await settled(reader, address);
    if (!managed) await manager.detach(address, { stubDriver });
    const request = departed.domainConfig;
    const vf = new Map(request === null ? [] : [[address, request] as const]);
    await manager.assign({ domain: owner.vm, hypervisor: owner.hypervisor, addresses: [address], managed, stubDriver, vf, onWarning: warn });
    const config = request === null ? '' : ', with its VF network config';
    return `ready again for ${formatOwner(owner)} on ${stubDriver} (${managed ? 'managed' : 'unmanaged'}${config})`;
  };
}

/**
 * The reclaim policy of a dry-run watch (`watch --reclaim --dry-run`): the same checks, as the
 * dry-run plans of the detach and assign a reclaim would do, and what it would do; nothing changes.
 */
export function vfReclaimPreview(manager: HostdevManager): ReclaimFn {
  return async (departed: Departed, address: PciAddress) => {
    const owner = departed.owner;
    if (owner === null) throw new Error(`${address} had no domain`);
    const { managed, stubDriver } = departed.former.entry;
    // An unmanaged VF is detached first; its assign is then planned on tables that dry run leaves as they were.
    if (managed) await manager.assign({ domain: owner.vm, hypervisor: owner.hypervisor, addresses: [address], managed, stubDriver, dryRun: true });
    else await manager.detach(address, { stubDriver, dryRun: true });
    const config = departed.domainConfig === null ? '' : ', with its VF network config';
    return `would be ready again for ${formatOwner(owner)} on ${stubDriver} (${managed ? 'managed' : 'unmanaged'}${config}); dry run: nothing was changed`;
  };
}

/** What an assigned VF's domain has now, as an assign request (for reclaim). */
export function vfConfigCapturer(manager: HostdevManager, net: NetPort): (address: PciAddress) => Promise<VfNetRequest | null> {
  const configurator = new VfNetConfigurator(net);
  const reader = new HostReader(manager.layout);
  return async (address) => {
    const current = await configurator.current(vfNetTargetOf(address, await vfNetLookup(reader, address)));
    return {
      vlan: current.vlan,
      ...(current.trust === null ? {} : { trust: current.trust }),
      ...(current.mac === NO_MAC ? {} : { mac: current.mac }),
      ...(current.spoofchk === null ? {} : { spoofchk: current.spoofchk }),
    };
  };
}

/**
 * Waits (bounded) until a VF that just appeared stops changing driver: the PF driver probes new
 * VFs one after the other, and detaching one while its probe is still coming would race it.
 */
async function settled(reader: HostReader, address: PciAddress, stableMs = 150, limitMs = 3_000): Promise<void> {
  const start = Date.now();
  // The driver link: read without the device lock, so a VF the kernel holds never blocks the watch.
  let last = await reader.driverOf(address);
  let since = Date.now();
  while (Date.now() - start < limitMs) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    const now = await reader.driverOf(address);
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= stableMs) {
      return;
    }
  }
}
