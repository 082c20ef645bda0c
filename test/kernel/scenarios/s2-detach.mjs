// Scenario 2: detach / reset / reattach of the e1000e (back to e1000e) and of edu (no driver: back to
// none); /dev/vfio/<group> appears with the detach and goes with the reattach. vfio-pci is not loaded
// when the guest starts: the first detach has to load it.
import { tablesOf } from './lib.mjs';

export async function tables(env) {
  const r = await env.hostdev(['status']);
  env.check('hostdev status --json exits 0', r.code === 0 && r.json !== null, r.stderr);
  return tablesOf(r.json);
}

export const s2Detach = {
  name: 's2-detach',
  title: 'detach, reset and reattach of the e1000e and of edu; /dev/vfio/<group> appears and goes',
  async run(env) {
    await env.requireCommands('detach', 'reattach', 'reset', 'status');
    const cases = [
      { label: 'e1000e', address: env.find('8086', '10d3'), native: 'e1000e' },
      { label: 'edu', address: env.find('1234', '11e8'), native: null },
    ];
    for (const { label, address, native } of cases) {
      if (!env.check(`${label} present`, address !== null)) continue;
      env.onCleanup(async () => {
        if (env.driverOf(address) === 'vfio-pci') await env.hostdev(['reattach', address]);
      });
      const group = env.groupOf(address);
      env.equal(`${label} starts on its native driver`, env.driverOf(address), native);
      const detach = await env.hostdev(['detach', address]);
      const afterDetach = {
        exit: detach.code, error: detach.errorCode, driver: env.driverOf(address),
        vfioNode: env.vfioNode(group), driverOverride: env.read(`/sys/bus/pci/devices/${address}/driver_override`),
      };
      env.observe(`${label}: detach`, afterDetach);
      env.check(`${label}: detach exits 0`, detach.code === 0, detach.stderr);
      env.equal(`${label}: on vfio-pci after detach`, afterDetach.driver, 'vfio-pci');
      env.check(`${label}: /dev/vfio/${group} exists after detach`, afterDetach.vfioNode);
      const t1 = await tables(env);
      env.observe(`${label}: tables after detach`, t1);
      env.equal(`${label}: inactive entry after detach`, t1, {
        active: [], inactive: [{ address, managed: false, stubDriver: 'vfio-pci', originalDriver: native }],
      });

      const reset = await env.hostdev(['reset', address]);
      env.observe(`${label}: reset`, { exit: reset.code, error: reset.errorCode, driver: env.driverOf(address) });
      // e1000e has reset methods "pm bus"; edu (on the root bus, no FLR, no PM) has none
      if (native === 'e1000e') env.check(`${label}: reset exits 0`, reset.code === 0, reset.stderr);
      else env.check(`${label}: reset refused as unsupported`, reset.errorCode === 'HOSTDEV_RESET_UNSUPPORTED', reset.stderr);
      env.equal(`${label}: still on vfio-pci after reset`, env.driverOf(address), 'vfio-pci');

      const reattach = await env.hostdev(['reattach', address]);
      env.check(`${label}: reattach exits 0`, reattach.code === 0, reattach.stderr);
      const back = await env.waitFor(() => env.driverOf(address) === native, { timeoutMs: 10_000 });
      const afterReattach = {
        exit: reattach.code, error: reattach.errorCode, driver: env.driverOf(address),
        vfioNode: env.vfioNode(group), driverOverride: env.read(`/sys/bus/pci/devices/${address}/driver_override`),
      };
      env.observe(`${label}: reattach`, afterReattach);
      env.check(`${label}: back on ${native ?? 'no driver'} after reattach`, back, afterReattach.driver);
      env.check(`${label}: /dev/vfio/${group} gone after reattach`, !afterReattach.vfioNode);
      env.equal(`${label}: driver_override cleared`, afterReattach.driverOverride, '(null)');
      const t2 = await tables(env);
      env.observe(`${label}: tables after reattach`, t2);
      env.equal(`${label}: tables empty after reattach`, t2, { active: [], inactive: [] });
    }
  },
};
