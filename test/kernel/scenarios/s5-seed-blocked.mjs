// Scenario 5, the seed (outcome 2, as measured on Linux): QEMU paused (-S) holds VF0 while an admin
// runs `echo 0 > sriov_numvfs` on the PF. On Linux the write blocks until QEMU lets go, and reading
// the PF's sriov_numvfs blocks too: hostdev status/list/watch run meanwhile must come back (sysfs
// reads need timeouts) instead of hanging. Then QEMU quits, the write completes, `release --domain
// vm1` succeeds, reattaches the e1000e and prunes VF0 from both tables; after `vf set-count PF 2`
// VF0's address can be assigned to vm2. On the simulator the holder is played by its 'vfio-release'
// block fault (VF0 loses its driver link, the device locks the write holds are taken: reads of the
// attributes that take them block, src/sim/held-files.ts; the write waits until released):
// releasing the fault stands for QEMU quitting. The transcript records which files block, what the
// tree shows meanwhile and how hostdev's commands end, and must equal Linux's (golden/s5-*.json).
import { spawn } from 'node:child_process';
import { NODE_FLAGS } from './lib.mjs';
import { tables } from './s2-detach.mjs';
import { holdVf0AndShrink, mentionsUnder, prepareDomain, setCount } from './vm-setup.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// status and list take 2-5 s in the guest; one still running after 30 s is stuck in a blocked read
const HUNG_MS = 30_000;
// list's bound on its sysfs read while the write is blocked (the default, 15 s, only costs time here)
const READ_BOUND = { HOSTDEV_READ_TIMEOUT_MS: '5000' };

export const s5SeedBlocked = {
  name: 's5-seed-blocked',
  title: 'the seed, outcome 2: echo 0 > sriov_numvfs blocks while QEMU holds VF0; hostdev stays responsive; release prunes VF0',
  async run(env) {
    await env.requireCommands('vf set-count', 'assign', 'release', 'status', 'list', 'qemu-args');
    const { pf, nic, vfs, vf0, argv } = await prepareDomain(env, 'vm1', 's5');
    const { holding, write, letGo } = await holdVf0AndShrink(env, { pf, vf0, argv });
    if (holding) {
      env.check('echo 0 > sriov_numvfs blocks while QEMU holds VF0', !write.done);
      const vf1 = vfs[1] ?? null;
      const dev = (a, f) => `/sys/bus/pci/devices/${a}/${f}`;
      env.observe('s5: tree while the write is blocked', {
        vf0Exists: env.exists(`/sys/bus/pci/devices/${vf0}`),
        vf0Driver: env.driverOf(vf0),
        vf0Physfn: env.exists(dev(vf0, 'physfn')),
        virtfn0: env.exists(dev(pf, 'virtfn0')),
        virtfn1: env.exists(dev(pf, 'virtfn1')),
        vfioNode: env.vfioNode(env.groupOf(vf0)),
      });
      const probes = [[pf, 'sriov_numvfs'], [pf, 'driver_override'], [pf, 'sriov_totalvfs'], [pf, 'vendor'], [vf0, 'driver_override'], [vf0, 'vendor'], [vf0, 'config']];
      if (vf1) probes.push([vf1, 'driver_override']);
      const reads = await Promise.all(probes.map(async ([a, f]) => [`${a === pf ? 'pf' : a === vf0 ? 'vf0' : 'vf1'}/${f}`, await env.readBounded(dev(a, f))]));
      env.observe('s5: reads while the write is blocked', Object.fromEntries(reads));
      env.check("reading the PF's sriov_numvfs blocks while the write is blocked", Object.fromEntries(reads)['pf/sriov_numvfs'] === 'blocks', reads);
      const watchCmd = (await env.commands()).has('watch');
      let watch = null;
      let watchOut = '';
      if (watchCmd) {
        watch = spawn(process.execPath, [...NODE_FLAGS, env.bin, 'watch', ...env.globals(), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
        watch.stdout.setEncoding('utf8').on('data', (d) => (watchOut += d));
        watch.stderr.setEncoding('utf8').on('data', (d) => (watchOut += d));
      }
      const status = await env.hostdev(['status'], { timeoutMs: HUNG_MS });
      env.check(`hostdev status comes back while the write is blocked (${status.ms} ms, exit ${status.code})`, !status.timedOut);
      const list = await env.hostdev(['list'], { timeoutMs: HUNG_MS, env: READ_BOUND });
      env.check(`hostdev list comes back while the write is blocked (${list.ms} ms, exit ${list.code})`, !list.timedOut);
      const outcome = (r) => ({ exit: r.timedOut ? 'hung' : r.code, error: r.errorCode });
      env.observe('s5: hostdev while the write is blocked', { status: outcome(status), list: outcome(list) });
      env.check('the write is still blocked', !write.done);
      if (watch) {
        const exitedEarly = watch.exitCode !== null;
        env.check('hostdev watch keeps running while the write is blocked', !exitedEarly, watchOut.slice(-2000));
        const t0 = Date.now();
        watch.kill('SIGTERM');
        const stopped = await Promise.race([new Promise((r) => watch.on('exit', () => r(true))), sleep(15_000).then(() => false)]);
        env.check(`hostdev watch stops on SIGTERM while the write is blocked (${Date.now() - t0} ms)`, stopped || exitedEarly, watchOut.slice(-2000));
        if (!stopped) watch.kill('SIGKILL');
      }
    }
    const done = await letGo();
    env.check('the write completes once nothing holds VF0', done?.ok === true, done);
    const gone = await env.waitFor(() => env.virtfns(pf).length === 0 && !env.exists(`/sys/bus/pci/devices/${vf0}`), { timeoutMs: 15_000 });
    env.observe('s5: after echo 0', { ok: done?.ok ?? null, errno: done?.errno ?? null, vfs: env.virtfns(pf), vf0Exists: env.exists(`/sys/bus/pci/devices/${vf0}`) });
    env.check('the VFs are gone', gone);

    const release = await env.hostdev(['release', '--domain', 'vm1']);
    const nicBack = await env.waitFor(() => env.driverOf(nic) === 'e1000e', { timeoutMs: 10_000 });
    const t = await tables(env);
    env.observe('s5: release', { exit: release.code, error: release.errorCode, nic: env.driverOf(nic), prunedVf0: mentionsUnder(release.json, 'pruned', vf0), tables: t });
    env.check('release --domain vm1 exits 0', release.code === 0, release.stderr);
    env.check('the e1000e is back on e1000e', nicBack, env.driverOf(nic));
    env.check('release reports VF0 as pruned', mentionsUnder(release.json, 'pruned', vf0), release.json);
    env.equal('VF0 is in neither table', t, { active: [], inactive: [] });

    const again = await setCount(env, pf, 2, 's5 again');
    env.equal('VF0 comes back at the same address', again[0], vf0);
    const assign = await env.hostdev(['assign', '--domain', 'vm2', vf0]);
    env.observe('s5: assign VF0 to vm2', { exit: assign.code, error: assign.errorCode, driver: env.driverOf(vf0) });
    env.check('assign --domain vm2 VF0 exits 0', assign.code === 0, assign.stderr);
    env.equal('VF0 on vfio-pci for vm2', env.driverOf(vf0), 'vfio-pci');
    const rel2 = await env.hostdev(['release', '--domain', 'vm2']);
    env.check('release --domain vm2 exits 0', rel2.code === 0, rel2.stderr);
    await env.hostdev(['vf', 'set-count', pf, '0'], { timeoutMs: 120_000 });
  },
};
