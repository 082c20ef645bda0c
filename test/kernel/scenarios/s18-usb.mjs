// Scenario 18, issue 15's USB on the real kernel: the rig's QEMU has an xHCI controller with a USB
// keyboard (only when s18 is selected: see run.sh). hostdev lists it, assigns it to vm10 by its port key,
// `qemu-args` gives `usb-host,hostbus=B,hostport=P` and a nested QEMU (paused) is started with them; then the
// keyboard is unplugged from the outside (the rig's outer QEMU gets `device_del` through its QMP socket)
// and vm10's entry is pruned by `status`, and reported by `release --domain vm10`.
// On the simulator (a tree with the same xHCI and keyboard, see simSpec) there is no QEMU: the nested QEMU's
// steps are Linux-only checks, and the unplug is the simulated kernel's `echo 1 > .../remove` (a logical
// unplug, what the device leaving the bus looks like to hostdev); the observations are the same.
import { SkipScenario, run } from './lib.mjs';
import { openFiles, qemuAvailable, startQemu, stopQemu } from './qemu.mjs';

const QEMU_KBD = { vendor: '0627', product: '0001' };

/** Asks the rig's own QEMU (outside this guest) to run a QMP command: a line the rig's monitor acts on. */
function outerQmp(command) {
  process.stdout.write(`HOSTDEV-KTEST-OUTER ${JSON.stringify(command)}\n`);
}

/** The usbfs files (/dev/bus/usb/B/D) a process holds open. */
const usbFds = (pid) => openFiles(pid, (target) => target.startsWith('/dev/bus/usb/'));

export const s18Usb = {
  name: 's18-usb',
  title: 'USB on Linux: the outer QEMU\'s usb-kbd assigned, given to a nested QEMU with usb-host, unplugged from the outside: pruned',
  simSpec: withXhciKeyboard,
  async run(env) {
    await env.requireCommands('assign', 'release', 'qemu-args', 'status', 'list');
    if (!env.find('1b36', '000d')) throw new SkipScenario('the guest has no xHCI controller: the rig adds it only when s18 is named in --only');
    if (!env.sim) {
      if (!env.check('QEMU is in the guest', qemuAvailable())) return;
      const loaded = await run('modprobe', ['xhci_pci']);
      env.check('modprobe xhci_pci', loaded.code === 0, loaded.stderr);
    }
    const kbd = async () => {
      const r = await env.hostdev(['list', '--kind', 'usb']);
      return (Array.isArray(r.json) ? r.json : []).find((d) => d.vendor === QEMU_KBD.vendor && d.product === QEMU_KBD.product) ?? null;
    };
    const dev = await env.waitFor(kbd, { timeoutMs: 30_000, intervalMs: 1000 });
    if (!env.check('list --kind usb shows the QEMU USB keyboard', dev !== null)) return;
    env.log(`  the keyboard: ${JSON.stringify(dev)}`);
    const key = dev.key;
    env.observe('s18 list --kind usb: the keyboard', { key, bus: dev.bus, port: dev.port, vendor: dev.vendor, product: dev.product, productName: dev.productName, owner: dev.owner ?? null });

    const assign = await env.hostdev(['assign', '--domain', 'vm10', key]);
    env.observe('s18 assign', { exit: assign.code, error: assign.errorCode, assigned: assign.json?.assigned ?? null });
    env.check(`assign --domain vm10 ${key} exits 0`, assign.code === 0 && assign.json?.assigned?.includes(key), assign.stderr || assign.stdout);
    env.onCleanup(() => env.hostdev(['release', '--domain', 'vm10']), { onlyOnFailure: true });
    const args = await env.hostdev(['qemu-args', '--domain', 'vm10']);
    const argv = Array.isArray(args.json) ? args.json : [];
    env.observe('s18 qemu-args', { exit: args.code, argv });
    env.check('qemu-args gives usb-host with the bus and port', argv.some((a) => a.startsWith('usb-host,') && a.includes(`hostbus=${dev.bus}`) && a.includes(`hostport=${dev.port}`)), argv);
    let vm = null;
    if (!env.sim) {
      // running, not paused: QEMU's usb-host looks for its device only while the VM runs (SeaBIOS idles, no disk)
      vm = await startQemu('vm10', argv, { paused: false });
      env.onCleanup(() => stopQemu(vm));
      env.check('the nested QEMU starts from qemu-args', vm.exited === null, vm.output);
      const opened = await env.waitFor(() => usbFds(vm.child.pid).length > 0, { timeoutMs: 20_000, intervalMs: 500 });
      env.check('the nested QEMU opens the keyboard through usbfs', opened, { fds: usbFds(vm.child.pid), output: vm.output });
      outerQmp({ execute: 'device_del', arguments: { id: 'ukbd' } });
    } else {
      const w = await env.kernelWrite(`/sys/bus/usb/devices/${dev.bus}-${dev.port}/remove`, 1);
      env.check('the simulated kernel unplugs the keyboard (echo 1 > remove)', w.ok, w);
    }
    const gone = await env.waitFor(() => !env.exists(`/sys/bus/usb/devices/${dev.bus}-${dev.port}`), { timeoutMs: 30_000, intervalMs: 500 });
    env.check('the keyboard leaves the guest once it is unplugged', gone);
    const status = await env.hostdev(['status']);
    const pruned = (status.json?.prunedDevices ?? []).some((p) => p.key === key) || (status.json?.departedDevices ?? []).some((d) => d.entry?.key === key);
    env.observe('s18 status after the unplug', { exit: status.code, pruned, stillListed: (status.json?.devices ?? []).some((d) => d.key === key) });
    env.check('status prunes vm10\'s entry of the unplugged device', status.code === 0 && pruned && !(status.json?.devices ?? []).some((d) => d.key === key), status.json);
    if (vm !== null) {
      env.check('the nested QEMU keeps running', vm.exited === null, vm.output);
      await stopQemu(vm);
    }
    const release = await env.hostdev(['release', '--domain', 'vm10']);
    env.observe('s18 release --domain vm10', { exit: release.code, released: release.json?.devices?.released ?? null, pruned: release.json?.devices?.pruned ?? null });
    env.check('release --domain vm10 exits 0 and reports it pruned', release.code === 0 && (release.json?.devices?.pruned ?? []).includes(key), release.json ?? release.stderr);
    const after = await env.hostdev(['status']);
    env.check('no entry left', after.code === 0 && (after.json?.devices ?? []).length === 0 && (after.json?.departedDevices ?? []).length === 0, after.json);
    const relist = await env.hostdev(['list', '--kind', 'usb']);
    env.observe('s18 list --kind usb after the unplug', { exit: relist.code, keys: (Array.isArray(relist.json) ? relist.json : []).map((d) => d.key) });
  },
};

/**
 * The rig's guest when s18 is selected: run.sh adds `-device qemu-xhci -device usb-kbd,bus=xhci.0`. QEMU puts the
 * xHCI (1b36:000d) at the first free slot of the root bus, 00:05.0; xhci_hcd gives it a USB 2 bus (1) and a
 * USB 3 bus (2), and QEMU's usb-kbd (full speed) is on port 1 of bus 1. Its IOMMU group number is not
 * observed (not compared with Linux).
 */
export function withXhciKeyboard(spec) {
  const next = structuredClone(spec);
  next.drivers = { ...next.drivers, xhci_hcd: { ids: [{ class: '0c0330', classMask: 'ffffff' }] } };
  const root = next.roots[0];
  const group = 1 + Math.max(...JSON.stringify(next).match(/"iommuGroup":\d+/g).map((m) => Number(m.split(':')[1])));
  root.devices.push({
    at: '05.0', vendor: '1b36', device: '000d', subsystemVendor: '1af4', subsystemDevice: '1100', class: '0c0330', revision: '01',
    driver: 'xhci_hcd', iommuGroup: group, resetMethods: [],
    usbBuses: [
      { bus: 1, speed: 480, devices: [{ port: '1', vendor: QEMU_KBD.vendor, product: QEMU_KBD.product, manufacturer: 'QEMU', productName: 'QEMU USB Keyboard', interfaces: [{ class: '03', driver: null }] }] },
      { bus: 2, speed: 5000, devices: [] },
    ],
  });
  return next;
}
