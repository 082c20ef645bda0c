// Scenario 15, issue 16's end to end (expensive: needs the nested guest, `--full`): hostdevd runs in the
// guest; a nested QEMU boots the rig's own kernel (busybox + igbvf, as in s6) with one spare root port
// and a QMP socket for hostdev. Through the daemon, `hostdev hotplug` adds VF0 (the nested guest sees it and
// binds igbvf: the slot is powered), `unplug` takes it out (DEVICE_DELETED once the nested guest gave it
// back), `hotplug` adds it again; then `echo 0 > sriov_numvfs`: the kernel asks QEMU for the VF, the
// nested guest ejects it, QEMU announces DEVICE_DELETED on its own, and the daemon releases VF0 and
// drops it from its tables (events on its stream), no command run. The re-created VF0 is hot-plugged
// once more, and quitting QEMU (its QMP connection closing: the holder gone) gives it back.
import fs from 'node:fs';
import { api, startDaemon } from './daemon.mjs';
import { qemuAvailable, startQemu, stopQemu, vfioFds } from './qemu.mjs';
import { igbPf } from './s1-list.mjs';
import { tables } from './s2-detach.mjs';
import { NESTED, nestedInitrd } from './s6-nested.mjs';
import { setCount } from './vm-setup.mjs';

const DOMAIN = 'vm5';

export const s15NestedHotplug = {
  name: 's15-nested-hotplug',
  title: 'issue 16 end to end: hotplug/unplug/hotplug of VF0 into a booted nested guest through hostdevd; sriov_numvfs shrinks, QEMU sends DEVICE_DELETED on its own, the daemon releases and prunes; the re-created VF is hot-plugged again',
  kernelOnly: true,
  expensive: true,
  async run(env) {
    await env.requireCommands('daemon', 'vf set-count', 'hotplug', 'unplug', 'status');
    if (!qemuAvailable() || !fs.existsSync(`${NESTED}/vmlinuz`)) {
      env.check('the nested kernel is in the guest (run with --full)', false);
      return;
    }
    const pf = igbPf(env);
    const [vf0] = await setCount(env, pf, 2, 's15');
    const key = `pci:${vf0}`;
    env.onCleanup(async () => {
      await env.hostdev(['release', '--domain', DOMAIN], { env: { HOSTDEV_NO_DAEMON: '1' } });
      if (env.virtfns(pf).length) await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
    }, { onlyOnFailure: true });
    const daemon = await startDaemon(env);
    if (!env.check('the daemon answers', daemon.up, daemon.output().slice(-2000))) return;
    const { feed, cliEnv: viaDaemon } = daemon;

    // QEMU serves one client per QMP socket: the daemon keeps its own, the scenario quits QEMU over the other
    const qmpSock = `/tmp/qmp-${DOMAIN}-hostdev.sock`;
    fs.rmSync(qmpSock, { force: true });
    const serial = '/tmp/nested-s15-serial.log';
    fs.rmSync(serial, { force: true });
    const t0 = Date.now();
    const vm = await startQemu(DOMAIN, ['-device', 'pcie-root-port,id=rp1,chassis=1'], {
      memory: 256,
      paused: false,
      extra: ['-smp', '1', '-kernel', `${NESTED}/vmlinuz`, '-initrd', nestedInitrd(), '-append', 'console=ttyS0 quiet panic=-1', '-serial', `file:${serial}`,
        '-qmp', `unix:${qmpSock},server=on,wait=off`],
    });
    env.onCleanup(() => stopQemu(vm));
    const nested = () => (fs.existsSync(serial) ? fs.readFileSync(serial, 'utf8') : '');
    const count = (re) => (nested().match(re) ?? []).length;
    const ready = await env.waitFor(() => nested().includes('NESTED-READY'), { timeoutMs: 900_000, intervalMs: 1000 });
    env.log(`  nested guest: ${ready ? 'ready' : 'not ready'} after ${Date.now() - t0} ms`);
    if (!env.check('the nested guest boots', ready, `${vm.output}\n${nested().slice(-2000)}`)) return;
    const group = `/dev/vfio/${env.groupOf(vf0)}`;
    const holds = () => vfioFds(vm.child.pid).includes(group);

    /** hotplug VF0 through the daemon; the nested guest must report it with igbvf bound. */
    const plug = async (label) => {
      const added = count(/NESTED-VF-ADDED [^\n]*driver=igbvf/g);
      const t = Date.now();
      const r = await env.hostdev(['hotplug', '--qmp', qmpSock, '--domain', DOMAIN, vf0], { env: viaDaemon, timeoutMs: 180_000 });
      env.check(`${label}: hotplug exits 0`, r.code === 0, r.stderr);
      env.equal(`${label}: placed on rp1 with the qemu-args id`, r.json?.plugged, [{ address: vf0, id: `hostdev-${vf0.replace(/[:.]/g, '_')}`, bus: 'rp1' }]);
      env.check(`${label}: QEMU holds VF0's group`, holds(), vfioFds(vm.child.pid));
      const seen = await env.waitFor(() => count(/NESTED-VF-ADDED [^\n]*driver=igbvf/g) > added, { timeoutMs: 120_000, intervalMs: 500 });
      env.log(`  ${label}: nested guest bound igbvf ${Date.now() - t} ms after the hotplug began`);
      env.check(`${label}: the nested guest sees VF0 and binds igbvf (the slot is powered)`, seen, nested().slice(-1500));
      const tab = await tables(env);
      env.equal(`${label}: VF0 active for ${DOMAIN}`, tab.active.map((e) => [e.address, e.usedBy?.domain]), [[vf0, DOMAIN]]);
    };

    await plug('hotplug 1');
    const gone1 = count(/NESTED-VF-GONE/g);
    const tu = Date.now();
    const out = await env.hostdev(['unplug', '--qmp', qmpSock, '--domain', DOMAIN, '--wait', '120000', vf0], { env: viaDaemon, timeoutMs: 180_000 });
    env.log(`  unplug took ${Date.now() - tu} ms`);
    env.check('unplug exits 0 after DEVICE_DELETED', out.code === 0 && out.json?.unplugged?.[0] === vf0, out.stderr || out.stdout);
    env.check('the nested guest gave VF0 back', await env.waitFor(() => count(/NESTED-VF-GONE/g) > gone1, { timeoutMs: 30_000 }), nested().slice(-1500));
    env.check('QEMU no longer holds the group', await env.waitFor(() => !holds(), { timeoutMs: 10_000 }), vfioFds(vm.child.pid));
    env.check('VF0 back on igbvf', await env.waitFor(() => env.driverOf(vf0) === 'igbvf', { timeoutMs: 10_000 }), env.driverOf(vf0));
    env.equal('after unplug: tables empty', await tables(env), { active: [], inactive: [] });

    await plug('hotplug 2');
    const gone2 = count(/NESTED-VF-GONE/g);
    const seqBefore = feed.events.at(-1)?.seq ?? 0;
    const ts = Date.now();
    const write = await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0, { timeoutMs: 180_000 });
    env.log(`  echo 0 > sriov_numvfs returned after ${Date.now() - ts} ms`);
    env.check('echo 0 > sriov_numvfs returns while QEMU keeps running', write.ok && vm.exited === null, { write, exited: vm.exited });
    env.check('the nested guest gave VF0 back on the kernel\'s request', await env.waitFor(() => count(/NESTED-VF-GONE/g) > gone2, { timeoutMs: 30_000 }), nested().slice(-1500));
    const mine = () => feed.events.filter((e) => e.seq > seqBefore && e.type !== 'heartbeat' && JSON.stringify(e).includes(vf0));
    const deleted = await env.waitFor(() => mine().find((e) => e.type === 'qmp' && e.action === 'device-deleted' && e.key === key), { timeoutMs: 60_000 });
    env.check('the daemon saw QEMU\'s own DEVICE_DELETED for VF0 and announced it', Boolean(deleted), mine());
    const gone = await env.waitFor(() => mine().find((e) => (e.type === 'prune' && e.key === key) || (e.type === 'pci' && e.action === 'remove' && e.key === key)), { timeoutMs: 60_000 });
    env.check('the event stream shows VF0 leave the host', Boolean(gone), mine());
    env.log(`  events for VF0 after the shrink: ${mine().map((e) => `${e.type}/${e.action}${e.details?.error ? ` (error: ${JSON.stringify(e.details.error).slice(0, 200)})` : ''}`).join(', ')}`);
    const status = await api(daemon.ro, 'GET', '/v1/status');
    env.check('no table holds VF0, no command run', status.status === 200 && !JSON.stringify(status.json?.active ?? 'x').includes(vf0) && !JSON.stringify(status.json?.inactive ?? 'x').includes(vf0), status.json);
    env.check('QEMU kept running', vm.exited === null, vm.output);

    const again = await setCount(env, pf, 2, 's15 again');
    env.equal('VF0 comes back at the same address', again[0], vf0);
    await plug('hotplug of the re-created VF0');
    await stopQemu(vm);
    env.check('QEMU quit: its QMP connection closing gives VF0 back (the holder gone)', await env.waitFor(() => env.driverOf(vf0) === 'igbvf', { timeoutMs: 30_000 }), env.driverOf(vf0));
    env.equal('after QEMU quit: tables empty', await tables(env), { active: [], inactive: [] });
    feed.stop();
    const exit = await daemon.stop();
    env.check('the daemon exits 0 on SIGTERM', exit?.code === 0, { exit, out: daemon.output().slice(-2000) });
    await setCount(env, pf, 0, 's15');
  },
};
