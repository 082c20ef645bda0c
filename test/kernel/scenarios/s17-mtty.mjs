// Scenario 17, issue 15's mediated devices on the real kernel: the kernel's own mtty sample (a virtual
// serial-port card that is an mdev parent, built by the rig as a module for the guest kernel) is loaded;
// `hostdev mdev create` makes an mdev of it, `assign` gives it to vm9, QEMU (paused) is started from
// `qemu-args` and opens it through VFIO. `hostdev mdev remove` is refused while vm9 holds it; the same
// removal behind hostdev's back (`echo 1 > .../remove`) waits in the kernel for QEMU to let go, and once
// QEMU quits the mdev is gone: `status` prunes vm9's entry and `release --domain vm9` reports it pruned.
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
  kernelOnly: true,
  async run(env) {
    await env.requireCommands('mdev', 'assign', 'release', 'qemu-args', 'status');
    if (!fs.existsSync(MTTY)) throw new SkipScenario(`the rig put no mtty module in the guest (${MTTY}): build-mtty.sh could not build it`);
    if (!env.check('QEMU is in the guest', qemuAvailable())) return;
    // mtty uses the VFIO core's and the mdev core's symbols: both loaded first
    const core = await run('modprobe', ['-a', 'vfio', 'mdev']);
    const loaded = await run('insmod', [MTTY]);
    if (!env.check('modprobe vfio mdev and insmod mtty.ko succeed', core.code === 0 && loaded.code === 0, `${core.stderr}${loaded.stderr}`)) return;
    env.onCleanup(() => run('rmmod', ['mtty']));
    if (!env.check('mtty is an mdev parent', env.exists('/sys/class/mdev_bus/mtty'), fs.existsSync('/sys/class/mdev_bus') ? fs.readdirSync('/sys/class/mdev_bus') : 'no /sys/class/mdev_bus')) return;

    const list = await env.hostdev(['mdev', 'list']);
    const parent = (list.json?.parents ?? []).find((p) => p.name === 'mtty');
    env.check('mdev list shows the mtty parent and its types', list.code === 0 && parent !== undefined, list.stdout || list.stderr);
    const types = (parent?.types ?? []).map((t) => ({ id: t.id, name: t.name, deviceApi: t.deviceApi, availableInstances: t.availableInstances }));
    env.log(`  mtty types: ${JSON.stringify(types)}`);
    const type = types.find((t) => t.availableInstances > 0)?.id ?? 'mtty-2';

    const made = await env.hostdev(['mdev', 'create', 'mtty', type, '--uuid', UUID]);
    if (!env.check(`mdev create mtty ${type} exits 0`, made.code === 0, made.stderr)) return;
    env.onCleanup(async () => {
      await env.hostdev(['release', '--domain', 'vm9']);
      if (env.exists(`/sys/bus/mdev/devices/${UUID}`)) await env.kernelWrite(`/sys/bus/mdev/devices/${UUID}/remove`, 1);
    }, { onlyOnFailure: true });
    env.check('the mdev is on the mdev bus', env.exists(`/sys/bus/mdev/devices/${UUID}`));
    const group = (() => {
      try {
        return path.basename(fs.readlinkSync(`/sys/bus/mdev/devices/${UUID}/iommu_group`));
      } catch {
        return null;
      }
    })();
    env.check('the mdev has an IOMMU group of its own', group !== null, group);

    const assign = await env.hostdev(['assign', '--domain', 'vm9', KEY]);
    env.check('assign --domain vm9 mdev:UUID exits 0', assign.code === 0 && assign.json?.assigned?.includes(KEY), assign.stderr || assign.stdout);
    const args = await env.hostdev(['qemu-args', '--domain', 'vm9']);
    const argv = Array.isArray(args.json) ? args.json : [];
    env.check('qemu-args gives vfio-pci,sysfsdev= for the mdev', argv.some((a) => a.startsWith('vfio-pci,') && a.includes(`sysfsdev=/sys/bus/mdev/devices/${UUID}`)), argv);
    const vm = await startQemu('vm9', argv);
    env.onCleanup(() => stopQemu(vm));
    env.check('QEMU starts from qemu-args and opens the mdev\'s VFIO group', vm.exited === null && vfioFds(vm.child.pid).includes(`/dev/vfio/${group}`), `${vm.output}\n${vfioFds(vm.child.pid)}`);

    const refused = await env.hostdev(['mdev', 'remove', UUID]);
    env.check('mdev remove while vm9 holds it: HOSTDEV_IN_USE', refused.code !== 0 && refused.errorCode === 'HOSTDEV_IN_USE', refused.stderr);
    const write = env.kernelWriteBackground(`/sys/bus/mdev/devices/${UUID}/remove`, 1);
    await sleep(3000);
    const blocked = !write.done;
    env.log(`  echo 1 > remove while QEMU holds the mdev: ${blocked ? 'blocks (the kernel waits for QEMU)' : 'returned at once'}`);
    await stopQemu(vm);
    const done = await Promise.race([write.result, sleep(60_000).then(() => null)]);
    env.check('the removal completes once QEMU quit', done?.ok === true, done);
    env.check('the mdev left the mdev bus', await env.waitFor(() => !env.exists(`/sys/bus/mdev/devices/${UUID}`), { timeoutMs: 10_000 }));
    const status = await env.hostdev(['status']);
    const pruned = (status.json?.prunedDevices ?? []).some((p) => p.key === KEY) || (status.json?.departedDevices ?? []).some((d) => d.entry?.key === KEY);
    env.check('status prunes vm9\'s entry of the vanished mdev', status.code === 0 && pruned && !(status.json?.devices ?? []).some((d) => d.key === KEY), status.json);
    const release = await env.hostdev(['release', '--domain', 'vm9']);
    env.check('release --domain vm9 exits 0 and reports the mdev pruned', release.code === 0 && (release.json?.devices?.pruned ?? []).includes(KEY), release.json ?? release.stderr);
    const after = await env.hostdev(['status']);
    env.check('no entry left', after.code === 0 && (after.json?.devices ?? []).length === 0 && (after.json?.departedDevices ?? []).length === 0, after.json);
    const unloaded = await run('rmmod', ['mtty']);
    env.check('mtty unloads', unloaded.code === 0, unloaded.stderr);
  },
};
