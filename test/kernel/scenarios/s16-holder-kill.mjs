// Scenario 16: a domain's devices end with their holder. VF0 is assigned with `--holder-pid` of the
// QEMU that holds it (started paused with a spare root port; VF0 is added over QMP once hostdev readied
// it, so QEMU really has its VFIO group open) and that QEMU is killed with SIGKILL:
//   round 1, with hostdevd running: the daemon gives VF0 back to igbvf by itself and announces a
//     `holder` `released` event on its stream, no command run;
//   round 2, without a daemon: the next command (`status`) gives it back, with a warning naming the domain.
// On the simulator a plain child process (`sleep`) plays the holder; the observations are the same.
import { spawn } from 'node:child_process';
import { api, startDaemon } from './daemon.mjs';
import { qemuAvailable, qmp, startQemu, stopQemu, vfioFds } from './qemu.mjs';
import { igbPf } from './s1-list.mjs';
import { tables } from './s2-detach.mjs';
import { setCount } from './vm-setup.mjs';

const hostdevId = (address) => `hostdev-${address.replace(/[:.]/g, '_')}`;

/**
 * The holder of `domain`: on Linux a paused QEMU with one free root port, on the simulator a child
 * process. `take(vf)` makes it hold the VF (QMP device_add; nothing on the simulator), `kill()` sends SIGKILL
 * and resolves once it has exited, with the time of the kill.
 */
async function startHolder(env, domain) {
  if (env.sim) {
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    env.onCleanup(() => child.kill('SIGKILL'));
    return { pid: child.pid, take: async () => true, holds: () => true, kill: async () => { const at = Date.now(); child.kill('SIGKILL'); await exited; return at; } };
  }
  const vm = await startQemu(domain, ['-device', 'pcie-root-port,id=rp1,chassis=1']);
  env.onCleanup(() => stopQemu(vm));
  let group = null;
  return {
    pid: vm.child.pid,
    take: async (vf) => {
      group = `/dev/vfio/${env.groupOf(vf)}`;
      const [reply] = await qmp(vm.socket, [{ execute: 'device_add', arguments: { driver: 'vfio-pci', host: vf, id: hostdevId(vf), bus: 'rp1' } }]);
      return reply?.return !== undefined ? true : reply;
    },
    holds: () => group !== null && vfioFds(vm.child.pid).includes(group),
    kill: async () => {
      const at = Date.now();
      vm.child.kill('SIGKILL');
      await vm.waitExit(20_000);
      return at;
    },
  };
}

export const s16HolderKill = {
  name: 's16-holder-kill',
  title: 'holder leases: VF0 assigned with --holder-pid of the QEMU that holds it; kill -9 that QEMU and the daemon (round 2: the next command) gives VF0 back to igbvf',
  async run(env) {
    await env.requireCommands('daemon', 'vf set-count', 'assign', 'status');
    if (!env.sim && !env.check('QEMU is in the guest', qemuAvailable())) return;
    const pf = igbPf(env);
    const [vf0] = await setCount(env, pf, 2, 's16');
    env.onCleanup(async () => {
      for (const domain of ['vm7', 'vm8']) await env.hostdev(['release', '--domain', domain], { env: { HOSTDEV_NO_DAEMON: '1' } });
      if (env.virtfns(pf).length) await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
    }, { onlyOnFailure: true });

    // round 1: the daemon notices
    const daemon = await startDaemon(env);
    if (!env.check('the daemon answers', daemon.up, daemon.output().slice(-2000))) return;
    const { feed, cliEnv: viaDaemon } = daemon;
    const holder1 = await startHolder(env, 'vm7');
    const assign1 = await env.hostdev(['assign', '--domain', 'vm7', '--holder-pid', String(holder1.pid), vf0], { env: viaDaemon, timeoutMs: 120_000 });
    env.check('round 1: assign --holder-pid exits 0', assign1.code === 0, assign1.stderr);
    env.check('round 1: QEMU takes VF0 over QMP', (await holder1.take(vf0)) === true);
    env.check('round 1: the holder holds VF0 (its VFIO group open)', holder1.holds());
    const status1 = await api(daemon.ro, 'GET', '/v1/status');
    const held1 = (status1.json?.holders ?? []).find((h) => h.owner?.vm === 'vm7' || h.owner?.domain === 'vm7');
    env.observe('s16 round 1: assigned with a holder', { exit: assign1.code, driver: env.driverOf(vf0), holder: held1?.holder?.kind ?? null, alive: held1?.alive ?? null });
    const killedAt = await holder1.kill();
    const released = await env.waitFor(() => feed.events.find((e) => e.type === 'holder' && e.action === 'released' && JSON.stringify(e).includes(vf0)), { timeoutMs: 30_000, intervalMs: 50 });
    const announcedMs = released ? Date.now() - killedAt : null;
    env.check('round 1: the daemon announces the holder gone and VF0 released', Boolean(released), feed.events.filter((e) => e.type !== 'heartbeat'));
    env.log(`  round 1: holder killed, release announced after ${announcedMs} ms (poll granularity 50 ms)`);
    const back1 = await env.waitFor(() => env.driverOf(vf0) === 'igbvf', { timeoutMs: 20_000 });
    env.check('round 1: VF0 back on igbvf with no command run', back1, env.driverOf(vf0));
    const t1 = await tables(env);
    env.observe('s16 round 1: after kill -9', { event: released ? { type: released.type, action: released.action, owner: released.owner?.vm ?? null } : null, driver: env.driverOf(vf0), tables: t1 });
    env.equal('round 1: tables empty', t1, { active: [], inactive: [] });
    feed.stop();
    const exit = await daemon.stop();
    env.check('the daemon exits 0 on SIGTERM', exit?.code === 0, { exit, out: daemon.output().slice(-2000) });

    // round 2: no daemon; the next command notices
    const direct = { HOSTDEV_NO_DAEMON: '1' };
    const holder2 = await startHolder(env, 'vm8');
    const assign2 = await env.hostdev(['assign', '--domain', 'vm8', '--holder-pid', String(holder2.pid), vf0], { env: direct, timeoutMs: 120_000 });
    env.check('round 2: assign --holder-pid exits 0', assign2.code === 0, assign2.stderr);
    env.check('round 2: QEMU takes VF0 over QMP', (await holder2.take(vf0)) === true);
    env.check('round 2: the holder holds VF0', holder2.holds());
    await holder2.kill();
    env.check('round 2: with no daemon, VF0 stays on vfio-pci until a command runs', env.driverOf(vf0) === 'vfio-pci', env.driverOf(vf0));
    const status2 = await env.hostdev(['status'], { env: direct, timeoutMs: 120_000 });
    const warned = /holder of domain vm8\b.*is gone/.test(status2.stderr);
    env.check('round 2: status warns that the holder of vm8 is gone and released VF0', warned && status2.stderr.includes(vf0), status2.stderr);
    const back2 = await env.waitFor(() => env.driverOf(vf0) === 'igbvf', { timeoutMs: 20_000 });
    env.check('round 2: VF0 back on igbvf', back2, env.driverOf(vf0));
    const t2 = await tables(env);
    env.observe('s16 round 2: status after kill -9', { exit: status2.code, warned, driver: env.driverOf(vf0), tables: t2 });
    env.equal('round 2: tables empty', t2, { active: [], inactive: [] });
    await setCount(env, pf, 0, 's16');
  },
};
