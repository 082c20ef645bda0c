import type { PciAddress } from './address.js';
import { HostdevError } from './errors.js';
import { notFound } from './plan-errors.js';
import type { HostView, Plan, Step, StepGroup, VfNetLookup } from './plan-types.js';
import { settingsFor, type VfNetRequest, type VfNetTarget } from './vf-net-config.js';

/**
 * VF network config as plan steps (libvirt's virHostdevNetConfigReplace/Restore):
 *  - assign: before the first sysfs write, each VF's config is read from its PF and SAVED in the
 *    state (durable before anything changes), then what was asked is set, in the order Intel NICs
 *    need (VLAN, trust, MAC, spoofchk);
 *  - release: the saved config goes back BEFORE the VF is rebound to its host driver (the PF hands
 *    the restored admin MAC to the VF driver when it probes); the saved row is dropped in the
 *    release's commit;
 *  - crash: a saved row whose VF is not in the active table belongs to an assign that never
 *    completed (or a release that never committed): recovery at open puts it back.
 */

/** Where a VF's network config lives, or the error that says why it has no such place. */
export function vfNetTargetOf(address: PciAddress, lookup: VfNetLookup): VfNetTarget {
  switch (lookup.kind) {
    case 'target':
      return lookup.target;
    case 'gone':
      throw notFound(address);
    case 'not-vf':
      throw new HostdevError('HOSTDEV_NOT_SRIOV', `${address} is not an SR-IOV VF: --mac/--vlan/--spoofchk/--trust apply to VFs only`, {
        hint: 'Give the address of a VF (see `hostdev vf list PF`).',
        details: { address, driver: lookup.driver },
      });
    case 'no-pf-netdev':
      throw new HostdevError(
        'HOSTDEV_NET_CONFIG',
        `the PF ${lookup.pf} of VF ${address} has no network interface (driver ${lookup.pfDriver ?? 'none'}); its VFs' MAC and VLAN cannot be set`,
        { hint: 'Bind the PF to its network driver first.', details: { address, pf: lookup.pf } },
      );
  }
}

/** The steps of one VF's config at assign: save, then each setting. */
export function vfNetAssignSteps(target: VfNetTarget, request: VfNetRequest): Step[] {
  return [
    { kind: 'net-save', address: target.address, target, request },
    ...settingsFor(request).map((setting): Step => ({ kind: 'net-set', address: target.address, target, setting })),
  ];
}

/** One `vf-net` group per VF of the request that carries network config, in request order. */
export function planVfNetAssign(view: HostView, requests: ReadonlyMap<PciAddress, VfNetRequest>): StepGroup[] {
  return [...requests].map(([address, request]) => ({
    address,
    phase: 'vf-net',
    restore: { driver: null, driverOverride: null },
    steps: vfNetAssignSteps(vfNetTargetOf(address, view.vfNet?.get(address) ?? { kind: 'gone' }), request),
  }));
}

/**
 * The saved config of each VF the release gives back (not of a pruned one: its VF is gone), as
 * `vf-net` groups that run before the release's first sysfs write.
 */
export function planVfNetRelease(view: HostView, plan: Plan): StepGroup[] {
  const pruned = new Set<string>(plan.pruned);
  const released = plan.changes.map((change) => (change.kind === 'remove' ? change.address : change.entry.address));
  return released.flatMap((address): StepGroup[] => {
    const saved = view.savedVfNet?.get(address);
    if (saved === undefined || pruned.has(address)) return [];
    return [{ address, phase: 'vf-net', restore: { driver: null, driverOverride: null }, steps: [{ kind: 'net-restore', address, saved }] }];
  });
}

/** The plan with the VF network groups first (before any sysfs write). */
export function withVfNet(plan: Plan, groups: readonly StepGroup[]): Plan {
  return groups.length === 0 ? plan : { ...plan, groups: [...groups, ...plan.groups] };
}
