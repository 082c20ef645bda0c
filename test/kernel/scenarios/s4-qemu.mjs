// Scenario 4, the positive path: 2 igb VFs with `hostdev vf set-count`, VF0 and the e1000e assigned to
// vm1, QEMU started paused with `hostdev qemu-args --domain vm1` opens both devices (the groups are
// viable), QEMU quits, `hostdev release --domain vm1` returns them to igbvf and e1000e.
import { qemuAvailable, qmp, startQemu, stopQemu, vfioFds } from './qemu.mjs';
import { tables } from './s2-detach.mjs';
import { prepareDomain } from './vm-setup.mjs';

export const s4Qemu = {
  name: 's4-qemu',
  title: 'set-count 2, assign VF0 + e1000e to vm1, QEMU -S opens them, quit, release gives them back',
  async run(env) {
    await env.requireCommands('vf set-count', 'assign', 'release', 'status', 'qemu-args');
    const { pf, nic, vfs, vf0, argv } = await prepareDomain(env, 'vm1', 's4');
    if (!env.sim && qemuAvailable()) {
      const vm = await startQemu('vm1', argv);
      env.onCleanup(() => stopQemu(vm));
      env.check('QEMU started with the qemu-args output and answers QMP', vm.exited === null, vm.output);
      if (vm.exited === null) {
        const fds = vfioFds(vm.child.pid);
        for (const a of [vf0, nic]) env.check(`QEMU holds /dev/vfio/${env.groupOf(a)} for ${a}`, fds.includes(`/dev/vfio/${env.groupOf(a)}`), fds);
        const [peripherals] = await qmp(vm.socket, [{ execute: 'qom-list', arguments: { path: '/machine/peripheral' } }]);
        const ids = (peripherals?.return ?? []).map((p) => p.name);
        const wanted = argv.filter((x) => x.startsWith('vfio-pci,')).map((x) => /id=([^,]+)/.exec(x)?.[1]);
        env.check('QMP lists the devices under the ids hostdev chose', wanted.every((id) => ids.includes(id)), { ids, wanted });
      }
      const exit = await stopQemu(vm);
      env.check('QEMU quit', exit !== null, vm.output);
    }
    const release = await env.hostdev(['release', '--domain', 'vm1']);
    const back = await env.waitFor(() => env.driverOf(vf0) === 'igbvf' && env.driverOf(nic) === 'e1000e', { timeoutMs: 10_000 });
    env.observe('s4: release', { exit: release.code, error: release.errorCode, vf0: env.driverOf(vf0), nic: env.driverOf(nic) });
    env.check('release exits 0', release.code === 0, release.stderr);
    env.check('VF0 back on igbvf and the e1000e on e1000e', back, { vf0: env.driverOf(vf0), nic: env.driverOf(nic) });
    env.equal('tables empty after release', await tables(env), { active: [], inactive: [] });
    const zero = await env.hostdev(['vf', 'set-count', pf, '0'], { timeoutMs: 120_000 });
    env.check('vf set-count 0 exits 0', zero.code === 0, zero.stderr);
    env.check('the VFs are gone', vfs.every((v) => !env.exists(`/sys/bus/pci/devices/${v}`)));
  },
};
