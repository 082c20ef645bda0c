// Scenario 10: hot-plug over QMP on the real kernel. hostdev readies a real igb VF and adds it to a
// running QEMU (paused, so no nested guest boots; its root port does native PCIe hot-plug, and with no
// guest to power the slot QEMU removes the device at once on device_del), takes it out again and adds
// it once more: QEMU really opens the VF's VFIO group, and lets it go.
import { qemuAvailable, startQemu, stopQemu, vfioFds } from './qemu.mjs';
import { igbPf } from './s1-list.mjs';
import { tables } from './s2-detach.mjs';
import { setCount } from './vm-setup.mjs';

export const s10Hotplug = {
  name: 's10-hotplug',
  title: 'hot-plug over QMP: a VF readied by hostdev is added to a running QEMU, taken out and added again; no free port is refused',
  kernelOnly: true,
  async run(env) {
    await env.requireCommands('vf set-count', 'hotplug', 'unplug', 'status');
    if (!env.check('QEMU is in the guest', qemuAvailable())) return;
    const pf = igbPf(env);
    const [vf0, vf1] = await setCount(env, pf, 2, 's10');
    env.onCleanup(async () => {
      await env.hostdev(['release', '--domain', 'vm3']);
      if (env.virtfns(pf).length) await env.kernelWrite(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
    }, { onlyOnFailure: true });
    const vm = await startQemu('vm3', ['-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off', '-device', 'pcie-root-port,id=rp1,chassis=1']);
    env.onCleanup(() => stopQemu(vm));
    const group = `/dev/vfio/${env.groupOf(vf0)}`;
    const holds = () => vfioFds(vm.child.pid).includes(group);

    for (const round of [1, 2]) {
      const plug = await env.hostdev(['hotplug', '--qmp', vm.socket, '--domain', 'vm3', vf0], { timeoutMs: 120_000 });
      env.check(`round ${round}: hotplug exits 0`, plug.code === 0, plug.stderr);
      env.equal(`round ${round}: placed on rp1 with the qemu-args id`, plug.json?.plugged, [{ address: vf0, id: `hostdev-${vf0.replace(/[:.]/g, '_')}`, bus: 'rp1' }]);
      env.check(`round ${round}: VF0 on vfio-pci and QEMU holds its group`, env.driverOf(vf0) === 'vfio-pci' && holds(), vfioFds(vm.child.pid));
      const t = await tables(env);
      env.equal(`round ${round}: VF0 active for vm3`, t.active.map((e) => [e.address, e.usedBy?.domain]), [[vf0, 'vm3']]);
      if (round === 1) {
        const full = await env.hostdev(['hotplug', '--qmp', vm.socket, '--domain', 'vm3', vf1]);
        env.check('a second VF with no free root port: exit 4, HOSTDEV_NO_FREE_SLOT', full.code === 4 && full.errorCode === 'HOSTDEV_NO_FREE_SLOT', full.stderr);
        env.check('VF1 stays on igbvf', env.driverOf(vf1) === 'igbvf');
      }
      const out = await env.hostdev(['unplug', '--qmp', vm.socket, '--domain', 'vm3', vf0], { timeoutMs: 120_000 });
      env.check(`round ${round}: unplug exits 0 after DEVICE_DELETED`, out.code === 0 && out.json?.unplugged?.[0] === vf0, out.stderr);
      env.check(`round ${round}: QEMU no longer holds the group`, await env.waitFor(() => !holds(), { timeoutMs: 10_000 }), vfioFds(vm.child.pid));
      env.check(`round ${round}: VF0 back on igbvf`, await env.waitFor(() => env.driverOf(vf0) === 'igbvf', { timeoutMs: 10_000 }), env.driverOf(vf0));
      env.equal(`round ${round}: tables empty`, await tables(env), { active: [], inactive: [] });
    }
    env.check('QEMU kept running throughout', vm.exited === null, vm.output);
    await stopQemu(vm);
    await setCount(env, pf, 0, 's10');
  },
};
