// Scenario 12: a claim defined in the guest takes effect when the device is found again as at boot.
// The e1000e is claimed (detached now), then found afresh the way a boot finds it: the device is
// removed, its host driver's module unloaded and the bus rescanned (a new pci_dev: no driver, no
// driver_override), and the boot-time pieces run in boot order: the initramfs init-top script
// (driver_override from the claim), the host driver's module load (what udev's coldplug does: e1000e
// must not bind), then `hostdev claims apply` (the systemd unit's command), which puts it on vfio-pci.
// Real kernel only: the simulator has no module unload (test/cli/claims.test.ts covers its side).
import { run } from './lib.mjs';

const INIT_TOP = '/hostdev/deploy/boot/initramfs-tools/scripts/init-top/hostdev-claims';

export const s12Claims = {
  name: 's12-claims',
  title: 'a claim holds when the device is found afresh: init-top sets driver_override, e1000e never binds, claims apply binds vfio-pci',
  kernelOnly: true,
  async run(env) {
    await env.requireCommands('claim', 'unclaim', 'claims', 'status');
    const address = env.find('8086', '10d3');
    if (!env.check('e1000e present', address !== null)) return;
    env.onCleanup(async () => {
      if (!env.exists(`/sys/bus/pci/devices/${address}`)) await env.kernelWrite('/sys/bus/pci/rescan', 1);
      await run('modprobe', ['e1000e']);
      if (env.exists(`/etc/hostdev/claims.d/pci-${address}`)) await env.hostdev(['unclaim', address]);
    });
    env.equal('e1000e starts on e1000e', env.driverOf(address), 'e1000e');

    const claim = await env.hostdev(['claim', address, '--match', '8086:10d3']);
    env.check('claim exits 0', claim.code === 0, claim.stderr);
    env.observe('claim', { exit: claim.code, driver: env.driverOf(address), claim: claim.json?.claim ?? null });
    env.equal('on vfio-pci after claim', env.driverOf(address), 'vfio-pci');

    // Found afresh, as at boot: no driver bound, no driver_override, the host driver not loaded yet.
    await env.kernelWrite(`/sys/bus/pci/devices/${address}/remove`, 1);
    const unloaded = await run('rmmod', ['e1000e']);
    env.check('e1000e module unloaded', unloaded.code === 0, unloaded.stderr);
    await env.kernelWrite('/sys/bus/pci/rescan', 1);
    await env.waitFor(() => env.exists(`/sys/bus/pci/devices/${address}`), { timeoutMs: 10_000 });
    const fresh = { driver: env.driverOf(address), driverOverride: env.read(`/sys/bus/pci/devices/${address}/driver_override`) };
    env.observe('found afresh', fresh);
    env.equal('found afresh: no driver, no override', fresh, { driver: null, driverOverride: '(null)' });

    const initTop = await run('sh', [INIT_TOP], { timeoutMs: 30_000 });
    env.check('init-top script exits 0', initTop.code === 0, initTop.stderr);
    const afterInitTop = env.read(`/sys/bus/pci/devices/${address}/driver_override`);
    env.observe('init-top: driver_override', afterInitTop);
    env.equal('init-top set driver_override', afterInitTop, 'vfio-pci');

    const loaded = await run('modprobe', ['e1000e']);
    env.check('e1000e module loaded again', loaded.code === 0, loaded.stderr);
    const afterLoad = { driver: env.driverOf(address), e1000eHasIt: env.exists(`/sys/bus/pci/drivers/e1000e/${address}`) };
    env.observe('host driver loaded', afterLoad);
    env.equal('e1000e did not bind the claimed device', afterLoad, { driver: null, e1000eHasIt: false });

    const apply = await env.hostdev(['claims', 'apply']);
    env.check('claims apply exits 0', apply.code === 0, apply.stderr);
    const outcome = apply.json?.claims?.map((c) => ({ address: c.address, outcome: c.outcome, detail: c.detail })) ?? null;
    env.observe('claims apply', { exit: apply.code, outcome, driver: env.driverOf(address) });
    env.equal('claims apply bound it', outcome, [{ address, outcome: 'bound', detail: 'went from no driver to vfio-pci' }]);
    env.equal('on vfio-pci after claims apply', env.driverOf(address), 'vfio-pci');

    const again = await env.hostdev(['claims', 'apply']);
    env.equal('claims apply again: already', again.json?.claims?.map((c) => c.outcome) ?? null, ['already']);
    const listed = await env.hostdev(['claims']);
    env.equal('claims: applied', listed.json?.map((c) => c.state) ?? null, ['applied']);

    const unclaim = await env.hostdev(['unclaim', address]);
    env.check('unclaim exits 0', unclaim.code === 0, unclaim.stderr);
    const back = await env.waitFor(() => env.driverOf(address) === 'e1000e', { timeoutMs: 10_000 });
    env.observe('unclaim', { exit: unclaim.code, driver: env.driverOf(address), driverOverride: env.read(`/sys/bus/pci/devices/${address}/driver_override`) });
    env.check('back on e1000e after unclaim', back, env.driverOf(address));
  },
};
