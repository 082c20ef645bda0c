// Scenario 8, a release in the middle of the seed's outcome 2: QEMU holds VF0, an admin's
// `echo 0 > sriov_numvfs` waits for it, and `hostdev release --domain vm1` starts meanwhile. The
// release must wait (bounded, without holding up status or list, which names the devices the kernel
// holds), and when QEMU lets go it must exit 0 with
// VF0 pruned, both tables empty and nothing awaited back. A second round, with QEMU never letting
// go before the bound, must end at `--wait` with HOSTDEV_TIMEOUT (exit 6) naming VF0's
// driver_override and the pending removal, the tables as they were. On the simulator the holder is
// the 'vfio-release' block fault, as in scenario 5.
import { qemuAvailable } from './qemu.mjs';
import { tables } from './s2-detach.mjs';
import { holdVf0AndShrink, prepareDomain, setCount } from './vm-setup.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const s8BlockedRelease = {
  name: 's8-blocked-release',
  title: 'release while QEMU holds VF0 and echo 0 > sriov_numvfs waits: it waits, status answers, VF0 pruned when QEMU lets go; --wait bounds it',
  async run(env) {
    await env.requireCommands('vf set-count', 'assign', 'release', 'status', 'qemu-args');
    if (!env.sim && !qemuAvailable()) {
      env.check('QEMU is available in the guest', false);
      return;
    }
    const { pf, nic, vf0, argv } = await prepareDomain(env, 'vm1', 's8');

    // Round 1: QEMU lets go while the release waits.
    const first = await holdVf0AndShrink(env, { pf, vf0, argv });
    env.check('echo 0 > sriov_numvfs blocks while VF0 is held', !first.write.done);
    const releasing = env.hostdev(['release', '--domain', 'vm1', '--wait', '300000'], { timeoutMs: 360_000 });
    await sleep(2000);
    const status = await env.hostdev(['status'], { timeoutMs: 30_000 });
    const during = status.json ?? {};
    env.observe('s8: status while the release waits', {
      exit: status.timedOut ? 'hung' : status.code,
      error: status.errorCode,
      active: (during.active ?? []).map((e) => e.address).sort(),
    });
    env.check(`status answers while the release waits (${status.ms} ms)`, !status.timedOut && status.code === 0, status.stderr);
    const list = await env.hostdev(['list'], { timeoutMs: 30_000 });
    const held = [...list.stderr.matchAll(/warning: ([0-9a-f:.]+): the kernel holds this device/g)].map((m) => m[1]).sort();
    env.observe('s8: list while the release waits', { exit: list.timedOut ? 'hung' : list.code, error: list.errorCode, held });
    env.check(`list answers while the release waits (${list.ms} ms), naming the held devices`, !list.timedOut && list.code === 0, list.stderr);
    const done = await first.letGo();
    env.check('the write completes once QEMU lets go', done?.ok === true, done);
    const release = await releasing;
    const nicBack = await env.waitFor(() => env.driverOf(nic) === 'e1000e', { timeoutMs: 10_000 });
    const after = await env.hostdev(['status']);
    env.observe('s8: release once QEMU let go', {
      exit: release.code,
      error: release.errorCode,
      pruned: release.json?.pruned ?? null,
      released: release.json?.released ?? null,
      failures: release.json?.failures ?? null,
      nic: env.driverOf(nic),
      tables: await tables(env),
      departed: (after.json?.departed ?? []).map((d) => d.address),
    });
    env.check('the release exits 0', release.code === 0, release.stderr);
    env.check('the e1000e is back on e1000e', nicBack, env.driverOf(nic));
    env.equal('the release names VF0 as pruned', release.json?.pruned, [vf0]);
    env.equal('VF0 is in neither table', await tables(env), { active: [], inactive: [] });
    env.equal('nothing is awaited back', (after.json?.departed ?? []).length, 0);

    // Round 2: QEMU holds on past the release's bound.
    const again = await setCount(env, pf, 2, 's8 again');
    env.equal('VF0 comes back at the same address', again[0], vf0);
    const assign = await env.hostdev(['assign', '--domain', 'vm1', vf0]);
    env.check('assign --domain vm1 VF0 again exits 0', assign.code === 0, assign.stderr);
    const args = await env.hostdev(['qemu-args', '--domain', 'vm1']);
    const second = await holdVf0AndShrink(env, { pf, vf0, argv: Array.isArray(args.json) ? args.json : [] });
    const bounded = await env.hostdev(['release', '--domain', 'vm1', '--wait', '5000'], { timeoutMs: 120_000 });
    const error = bounded.error ?? null;
    env.observe('s8: release bounded by --wait while QEMU holds VF0', {
      exit: bounded.timedOut ? 'hung' : bounded.code,
      error: bounded.errorCode,
      namesFile: (error?.message ?? bounded.stderr).includes(`/sys/bus/pci/devices/${vf0}/driver_override`),
      namesRemoval: (error?.message ?? bounded.stderr).includes('being removed'),
      tables: (await tables(env)).active.map((e) => [e.address, e.usedBy?.domain]),
    });
    env.check('the bounded release exits 6', bounded.code === 6, bounded.stderr);
    const done2 = await second.letGo();
    env.check('the second write completes once QEMU lets go', done2?.ok === true, done2);
    const last = await env.hostdev(['release', '--domain', 'vm1']);
    env.check('the release after QEMU let go exits 0', last.code === 0, last.stderr);
    env.equal('both tables empty at the end', await tables(env), { active: [], inactive: [] });
  },
};
