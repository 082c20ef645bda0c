// Shared steps of scenarios 4 and 5: two igb VFs made by `hostdev vf set-count`, VF0 and the e1000e
// assigned to a domain, and the QEMU arguments hostdev prints for it.
import { igbPf } from './s1-list.mjs';
import { tables } from './s2-detach.mjs';

/** True when `json` has, under a key named `key` at any depth, something that mentions `value`. */
export function mentionsUnder(json, key, value) {
  if (json === null || typeof json !== 'object') return false;
  for (const [k, v] of Object.entries(json)) {
    if (k === key && JSON.stringify(v).includes(value)) return true;
    if (mentionsUnder(v, key, value)) return true;
  }
  return false;
}

export async function setCount(env, pf, n, label) {
  const r = await env.hostdev(['vf', 'set-count', pf, String(n)], { timeoutMs: 120_000 });
  env.check(`${label}: vf set-count ${n} exits 0`, r.code === 0, r.stderr);
  const vfs = await env.waitFor(() => {
    const v = env.virtfns(pf);
    return v.length === n && v.every((a) => env.driverOf(a) === 'igbvf') ? v : null;
  }, { timeoutMs: 20_000 });
  env.check(`${label}: ${n} VFs on igbvf`, vfs !== null, env.virtfns(pf).map((a) => [a, env.driverOf(a)]));
  return env.virtfns(pf);
}

export async function prepareDomain(env, domain, label) {
  const pf = igbPf(env);
  const nic = env.find('8086', '10d3');
  const vfs = await setCount(env, pf, 2, label);
  env.onCleanup(async () => {
    await env.hostdev(['release', '--domain', domain]);
    if (env.virtfns(pf).length) await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
  }, { onlyOnFailure: true });
  const vf0 = vfs[0];
  const assign = await env.hostdev(['assign', '--domain', domain, vf0, nic]);
  const drivers = { vf0: env.driverOf(vf0), vf1: env.driverOf(vfs[1]), nic: env.driverOf(nic) };
  env.observe(`${label}: assign VF0 + e1000e`, { exit: assign.code, error: assign.errorCode, vfs, drivers });
  env.check(`${label}: assign exits 0`, assign.code === 0, assign.stderr);
  env.equal(`${label}: VF0 and the e1000e on vfio-pci, VF1 left on igbvf`, drivers, { vf0: 'vfio-pci', vf1: 'igbvf', nic: 'vfio-pci' });
  const t = await tables(env);
  env.observe(`${label}: tables after assign`, t);
  env.equal(`${label}: both active for ${domain}`, t.active.map((e) => [e.address, e.usedBy?.domain]).sort(), [[vf0, domain], [nic, domain]].sort());
  const args = await env.hostdev(['qemu-args', '--domain', domain]);
  env.check(`${label}: qemu-args --json exits 0 with an argv array`, args.code === 0 && Array.isArray(args.json), args.stdout);
  const argv = Array.isArray(args.json) ? args.json : [];
  env.observe(`${label}: qemu-args`, argv);
  for (const a of [vf0, nic]) env.check(`${label}: qemu-args has a vfio-pci device for ${a}`, argv.some((x) => x.startsWith('vfio-pci,') && x.includes(`host=${a}`)), argv);
  return { pf, nic, vfs, vf0, argv };
}
