// Shared steps of the scenarios: two igb VFs made by `hostdev vf set-count`, VF0 and the e1000e
// assigned to a domain, the QEMU arguments hostdev prints for it, and the seed's hold: QEMU holds VF0
// while `echo 0 > sriov_numvfs` waits for it.
import { qemuAvailable, startQemu, stopQemu, vfioFds } from './qemu.mjs';
import { igbPf } from './s1-list.mjs';
import { tables } from './s2-detach.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const BLOCK_ID = 'qemu-holds-vf0';

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

/**
 * QEMU (started from `argv` as `domain`) holds VF0 — on the simulator its 'vfio-release' block fault
 * plays the holder — and `echo 0 > PF/sriov_numvfs` starts in the background, given 3 s to block.
 * `holding` is false in a guest without QEMU (the write then just runs). `letGo` ends the hold and
 * waits (bounded) for the write's result.
 */
export async function holdVf0AndShrink(env, { pf, vf0, argv, domain = 'vm1' }) {
  const holding = env.sim || qemuAvailable();
  let vm = null;
  if (env.sim) {
    env.simFault({ action: 'block', match: 'sriov_numvfs', id: BLOCK_ID, stage: 'vfio-release' });
    env.onCleanup(() => env.simRelease(BLOCK_ID));
  } else if (holding) {
    vm = await startQemu(domain, argv);
    env.onCleanup(() => stopQemu(vm));
    env.check('QEMU holds VF0', vm.exited === null && vfioFds(vm.child.pid).includes(`/dev/vfio/${env.groupOf(vf0)}`), vm.output);
  }
  const write = env.kernelWriteBackground(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
  if (holding) await sleep(3000);
  const letGo = async () => {
    if (env.sim) env.simRelease(BLOCK_ID);
    else if (vm !== null) await stopQemu(vm);
    return Promise.race([write.result, sleep(90_000).then(() => null)]);
  };
  return { holding, write, letGo };
}
