// Scenario 17, issue 15's mediated devices on the real kernel: the kernel's own mtty sample (a virtual
// serial-port card that is an mdev parent, built by the rig as a module for the guest kernel) is loaded;
// `hostdev mdev create` makes an mdev of it, `assign` gives it to vm9, QEMU (paused) is started from
// `qemu-args` and opens it through VFIO. `hostdev mdev remove` is refused while vm9 holds it; the same
// removal behind hostdev's back (`echo 1 > .../remove`) waits in the kernel for QEMU to let go, and once
// QEMU quits the mdev is gone: `status` prunes vm9's entry and `release --domain vm9` reports it pruned.
// On the simulator (a tree with mtty's parent as the loaded module registers it, see simSpec) there is no
// module to load and no QEMU: those steps are Linux-only checks, and the removal behind hostdev's back
// completes at once (nothing holds the mdev); the observations are the same.
import fs from 'node:fs';
import path from 'node:path';
import { SkipScenario, run } from './lib.mjs';
import { qemuAvailable, startQemu, stopQemu, vfioFds } from './qemu.mjs';

const MTTY = '/lib/modules/extra/mtty.ko';
const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const KEY = `mdev:${UUID}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const s17Mtty = {
  name: 's17-mtty',
  title: 'mdev on Linux: mtty loaded, mdev create/assign/qemu-args, QEMU opens it; removed behind hostdev\'s back while assigned, it is pruned',
  simSpec: withMtty,
  async run(env) {
    await env.requireCommands('mdev', 'assign', 'release', 'qemu-args', 'status');
    if (!env.sim) {
      if (!fs.existsSync(MTTY)) throw new SkipScenario(`the rig put no mtty module in the guest (${MTTY}): build-mtty.sh could not build it`);
      if (!env.check('QEMU is in the guest', qemuAvailable())) return;
      // mtty uses the VFIO core's and the mdev core's symbols: both loaded first
      const core = await run('modprobe', ['-a', 'vfio', 'mdev']);
      const loaded = await run('insmod', [MTTY]);
      if (!env.check('modprobe vfio mdev and insmod mtty.ko succeed', core.code === 0 && loaded.code === 0, `${core.stderr}${loaded.stderr}`)) return;
      env.onCleanup(() => run('rmmod', ['mtty']));
    }
    if (!env.check('mtty is an mdev parent', env.exists('/sys/class/mdev_bus/mtty'), env.exists('/sys/class/mdev_bus') ? fs.readdirSync(env.p('/sys/class/mdev_bus')) : 'no /sys/class/mdev_bus')) return;

    const list = await env.hostdev(['mdev', 'list']);
    const parent = (list.json?.parents ?? []).find((p) => p.name === 'mtty');
    env.check('mdev list shows the mtty parent and its types', list.code === 0 && parent !== undefined, list.stdout || list.stderr);
    const types = (parent?.types ?? []).map((t) => ({ id: t.id, name: t.name, deviceApi: t.deviceApi, availableInstances: t.availableInstances }));
    env.log(`  mtty types: ${JSON.stringify(types)}`);
    env.observe('s17 mdev list: mtty', { exit: list.code, key: parent?.key ?? null, types });
    const type = 'mtty-2';

    const made = await env.hostdev(['mdev', 'create', 'mtty', type, '--uuid', UUID]);
    const typesAfter = ((await env.hostdev(['mdev', 'list'])).json?.parents ?? []).find((p) => p.name === 'mtty')?.types?.map((t) => ({ id: t.id, availableInstances: t.availableInstances })) ?? null;
    env.observe('s17 mdev create', { exit: made.code, error: made.errorCode, onBus: env.exists(`/sys/bus/mdev/devices/${UUID}`), driver: (() => { try { return path.basename(fs.readlinkSync(env.p(`/sys/bus/mdev/devices/${UUID}/driver`))); } catch { return null; } })(), typesAfter });
    if (!env.check(`mdev create mtty ${type} exits 0`, made.code === 0, made.stderr)) return;
    env.onCleanup(async () => {
      await env.hostdev(['release', '--domain', 'vm9']);
      if (env.exists(`/sys/bus/mdev/devices/${UUID}`)) await env.kernelWrite(`/sys/bus/mdev/devices/${UUID}/remove`, 1);
    }, { onlyOnFailure: true });
    env.check('the mdev is on the mdev bus', env.exists(`/sys/bus/mdev/devices/${UUID}`));
    const group = (() => {
      try {
        return path.basename(fs.readlinkSync(env.p(`/sys/bus/mdev/devices/${UUID}/iommu_group`)));
      } catch {
        return null;
      }
    })();
    env.check('the mdev has an IOMMU group of its own', group !== null, group);

    const assign = await env.hostdev(['assign', '--domain', 'vm9', KEY]);
    env.observe('s17 assign', { exit: assign.code, error: assign.errorCode, assigned: assign.json?.assigned ?? null });
    env.check('assign --domain vm9 mdev:UUID exits 0', assign.code === 0 && assign.json?.assigned?.includes(KEY), assign.stderr || assign.stdout);
    const args = await env.hostdev(['qemu-args', '--domain', 'vm9']);
    const argv = Array.isArray(args.json) ? args.json : [];
    env.observe('s17 qemu-args', { exit: args.code, argv });
    env.check('qemu-args gives vfio-pci,sysfsdev= for the mdev', argv.some((a) => a.startsWith('vfio-pci,') && a.includes(`sysfsdev=/sys/bus/mdev/devices/${UUID}`)), argv);
    let vm = null;
    if (!env.sim) {
      vm = await startQemu('vm9', argv);
      env.onCleanup(() => stopQemu(vm));
      env.check('QEMU starts from qemu-args and opens the mdev\'s VFIO group', vm.exited === null && vfioFds(vm.child.pid).includes(`/dev/vfio/${group}`), `${vm.output}\n${vfioFds(vm.child.pid)}`);
    }

    const refused = await env.hostdev(['mdev', 'remove', UUID]);
    env.observe('s17 mdev remove while assigned', { exit: refused.code, error: refused.errorCode, onBus: env.exists(`/sys/bus/mdev/devices/${UUID}`) });
    env.check('mdev remove while vm9 holds it: HOSTDEV_IN_USE', refused.code !== 0 && refused.errorCode === 'HOSTDEV_IN_USE', refused.stderr);
    const write = env.kernelWriteBackground(`/sys/bus/mdev/devices/${UUID}/remove`, 1);
    if (vm !== null) {
      await sleep(3000);
      env.log(`  echo 1 > remove while QEMU holds the mdev: ${write.done ? 'returned at once' : 'blocks (the kernel waits for QEMU)'}`);
      await stopQemu(vm);
    }
    const done = await Promise.race([write.result, sleep(60_000).then(() => null)]);
    env.check('the removal behind hostdev\'s back completes (on Linux once QEMU quit)', done?.ok === true, done);
    env.check('the mdev left the mdev bus', await env.waitFor(() => !env.exists(`/sys/bus/mdev/devices/${UUID}`), { timeoutMs: 10_000 }));
    const status = await env.hostdev(['status']);
    const pruned = (status.json?.prunedDevices ?? []).some((p) => p.key === KEY) || (status.json?.departedDevices ?? []).some((d) => d.entry?.key === KEY);
    env.observe('s17 status after the removal', { exit: status.code, pruned, stillListed: (status.json?.devices ?? []).some((d) => d.key === KEY) });
    env.check('status prunes vm9\'s entry of the vanished mdev', status.code === 0 && pruned && !(status.json?.devices ?? []).some((d) => d.key === KEY), status.json);
    const release = await env.hostdev(['release', '--domain', 'vm9']);
    env.observe('s17 release --domain vm9', { exit: release.code, released: release.json?.devices?.released ?? null, pruned: release.json?.devices?.pruned ?? null });
    env.check('release --domain vm9 exits 0 and reports the mdev pruned', release.code === 0 && (release.json?.devices?.pruned ?? []).includes(KEY), release.json ?? release.stderr);
    const after = await env.hostdev(['status']);
    env.check('no entry left', after.code === 0 && (after.json?.devices ?? []).length === 0 && (after.json?.departedDevices ?? []).length === 0, after.json);
    const relist = ((await env.hostdev(['mdev', 'list'])).json?.parents ?? []).find((p) => p.name === 'mtty')?.types?.map((t) => ({ id: t.id, availableInstances: t.availableInstances })) ?? null;
    env.observe('s17 mdev list after the removal', relist);
    if (!env.sim) {
      const unloaded = await run('rmmod', ['mtty']);
      env.check('mtty unloads', unloaded.code === 0, unloaded.stderr);
    }
  },
};

/**
 * The guest once s17 loaded mtty.ko (samples/vfio-mdev/mtty.c of Linux 6.1): a virtual device
 * /sys/devices/virtual/mtty/mtty, an mdev parent whose two types share its 24 serial ports (mtty-1 takes
 * one, mtty-2 two), its mdevs bound to its mdev driver `mtty`.
 */
export function withMtty(spec) {
  return {
    ...spec,
    virtualMdevParents: [
      {
        name: 'mtty', class: 'mtty', driver: 'mtty', capacity: 24,
        types: [
          { id: 'mtty-1', name: 'Single port serial', availableInstances: 24, cost: 1 },
          { id: 'mtty-2', name: 'Dual port serial', availableInstances: 12, cost: 2 },
        ],
      },
    ],
  };
}
