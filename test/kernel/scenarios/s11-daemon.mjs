// Scenario 11: the seed, live, through hostdevd. The daemon runs with the scenario's root and state;
// a client assigns VF0 over its API and starts QEMU (paused) with the argv the API gives; an event
// subscriber listens on the read-only socket. `echo 0 > sriov_numvfs` blocks while QEMU holds VF0
// (on the simulator: its 'vfio-release' block fault); once QEMU lets go the VF leaves, and the
// subscriber sees its `remove` and the daemon's `prune` of vm1's entry without any command being run.
// The re-created VF is assigned again over the API.
import { api, startDaemon } from './daemon.mjs';
import { igbPf } from './s1-list.mjs';
import { holdVf0AndShrink, setCount } from './vm-setup.mjs';

export const s11Daemon = {
  name: 's11-daemon',
  title: 'hostdevd: a client assigns VF0 over the API, QEMU holds it, sriov_numvfs shrinks; the event stream shows its remove and prune; the re-created VF is assigned again',
  async run(env) {
    await env.requireCommands('daemon', 'vf set-count', 'status');
    const pf = igbPf(env);
    const vfs = await setCount(env, pf, 2, 's11');
    const vf0 = vfs[0];
    const key = `pci:${vf0}`;
    const daemon = await startDaemon(env);
    const { rw, ro } = daemon;
    env.onCleanup(async () => {
      await env.hostdev(['release', '--domain', 'vm1']);
      if (env.virtfns(pf).length) await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
    }, { onlyOnFailure: true });
    if (!env.check('the daemon answers on both sockets', daemon.up, daemon.output().slice(-2000))) return;
    const { feed } = daemon;

    const assign = await api(rw, 'POST', '/v1/assignments', { domain: 'vm1', devices: [vf0] });
    env.check('POST /v1/assignments: 200, the operation succeeded', assign.status === 200 && assign.json?.state === 'completed', assign.text);
    const args = await api(ro, 'GET', '/v1/domains/qemu/vm1/qemu-args');
    const argv = Array.isArray(args.json) ? args.json : [];
    env.check('GET qemu-args: an argv with VF0', args.status === 200 && argv.some((a) => a.startsWith('vfio-pci,') && a.includes(`host=${vf0}`)), args.text);
    env.observe('s11: assigned over the API', { assign: assign.status, state: assign.json?.state ?? null, driver: env.driverOf(vf0), qemuArgs: args.status });

    const { holding, write, letGo } = await holdVf0AndShrink(env, { pf, vf0, argv });
    if (holding) {
      env.check('echo 0 > sriov_numvfs blocks while QEMU holds VF0', !write.done);
      const status = await api(ro, 'GET', '/v1/status', undefined, { timeoutMs: 30_000 }).catch((error) => ({ status: `error: ${error.message}` }));
      env.check('GET /v1/status answers while the write is blocked', status.status === 200, status);
      env.check('no prune of VF0 yet: QEMU still holds it', !feed.events.some((e) => e.type === 'prune' && e.key === key), feed.events);
    }
    const done = await letGo();
    env.check('the write completes once nothing holds VF0', done?.ok === true, done);
    const seen = await env.waitFor(() => {
      const removed = feed.events.some((e) => e.type === 'pci' && e.action === 'remove' && e.key === key);
      const pruned = feed.events.find((e) => e.type === 'prune' && e.key === key);
      return removed && pruned ? pruned : null;
    }, { timeoutMs: 30_000 });
    env.check('the subscriber sees VF0 removed and pruned', seen !== null, feed.events.filter((e) => e.type !== 'heartbeat'));
    const status = await api(ro, 'GET', '/v1/status');
    const active = status.json?.active ?? null;
    env.observe('s11: after echo 0', {
      removeEvent: feed.events.some((e) => e.type === 'pci' && e.action === 'remove' && e.key === key),
      pruneOwner: seen?.owner?.vm ?? null,
      active: Array.isArray(active) ? active.map((e) => e.address) : active,
      inactive: Array.isArray(status.json?.inactive) ? status.json.inactive.map((e) => e.address) : null,
    });
    env.equal('no table holds VF0, without any command run', Array.isArray(active) && active.length === 0 && status.json.inactive.length === 0, true);

    const again = await setCount(env, pf, 2, 's11 again');
    env.equal('VF0 comes back at the same address', again[0], vf0);
    const reassign = await api(rw, 'POST', '/v1/assignments', { domain: 'vm2', devices: [vf0] });
    env.check('the re-created VF0 is assigned to vm2 over the API', reassign.status === 200 && reassign.json?.state === 'completed', reassign.text);
    const release = await api(rw, 'DELETE', '/v1/assignments/qemu/vm2');
    env.check('DELETE /v1/assignments/qemu/vm2: 200', release.status === 200, release.text);
    env.observe('s11: VF0 again', { assign: reassign.status, release: release.status, driver: env.driverOf(vf0) });
    feed.stop();
    const exit = await daemon.stop();
    env.check('the daemon exits 0 on SIGTERM', exit?.code === 0, { exit, out: daemon.output().slice(-2000) });
    await setCount(env, pf, 0, 's11');
  },
};
