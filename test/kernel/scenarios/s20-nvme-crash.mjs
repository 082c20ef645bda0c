// Scenario 20: s19's NVMe assign killed with SIGKILL between the controller's writes. `hostdev assign
// --domain vm13` of both namespaces of the rig's nvme controller is killed as soon as the controller's state
// changed (driver_override written, the controller still on nvme), then, in a second round, once the
// controller left nvme (unbound, not yet on vfio-pci, or just bound). The next hostdev process (`status`)
// recovers and the invariants hold: the controller on vfio-pci with vm13's PCI entry and both namespace
// entries, or back on nvme with no entry at all (and its block devices back); nothing left in the journal;
// when it was assigned, `release --domain vm13` gives everything back.
import { spawn } from 'node:child_process';
import { NODE_FLAGS } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DOMAIN = 'vm13';

export const s20NvmeCrash = {
  name: 's20-nvme-crash',
  title: 'NVMe assign of two namespaces killed with SIGKILL between the controller\'s writes; the next hostdev process recovers, all or nothing',
  async run(env) {
    await env.requireCommands('assign', 'release', 'status');
    const controller = env.find('1b36', '0010');
    if (!env.check('the nvme controller is present', controller !== null)) return;
    const keys = [1, 2].map((n) => `nvme:${controller}/${n}`);
    const state = () => `${env.driverOf(controller)}|${env.read(`/sys/bus/pci/devices/${controller}/driver_override`)}`;
    const blocks = () => ['nvme0n1', 'nvme0n2'].filter((b) => env.exists(`/dev/${b}`));
    env.onCleanup(() => env.hostdev(['release', '--domain', DOMAIN]), { onlyOnFailure: true });
    const ready = await env.waitFor(() => blocks().length === 2, { timeoutMs: 20_000 });
    env.check('the controller starts on nvme with both block devices', ready && env.driverOf(controller) === 'nvme', { state: state(), blocks: blocks() });

    const rounds = [
      { label: 'killed once the controller changed', due: (initial) => state() !== initial },
      { label: 'killed once the controller left nvme', due: () => env.driverOf(controller) !== 'nvme' },
    ];
    for (const { label, due } of rounds) {
      const initial = state();
      const child = spawn(process.execPath, [...NODE_FLAGS, env.bin, 'assign', '--domain', DOMAIN, ...keys, ...env.globals(), '--json'], { stdio: 'ignore' });
      let exited = false;
      child.on('exit', () => (exited = true));
      let killedAt = null;
      const end = Date.now() + 120_000;
      while (!exited && Date.now() < end) {
        if (due(initial)) {
          child.kill('SIGKILL');
          killedAt = state();
          break;
        }
        await sleep(2);
      }
      while (!exited) await sleep(20);
      env.log(`  ${label}: ${killedAt ? `killed with the controller at ${killedAt}` : 'the assign finished before the kill'}`);

      const status = await env.hostdev(['status']);
      env.check(`${label}: the next hostdev status exits 0`, status.code === 0, status.stderr);
      const s = status.json ?? {};
      const pci = [...(s.active ?? []), ...(s.inactive ?? [])].filter((e) => e.address === controller);
      const nvme = (s.devices ?? []).filter((d) => d.kind === 'nvme');
      const driver = env.driverOf(controller);
      const assigned = driver === 'vfio-pci' && pci.length === 1 && pci[0].usedBy?.domain === DOMAIN
        && nvme.length === 2 && nvme.every((d) => d.usedBy?.domain === DOMAIN);
      const back = driver === 'nvme' && pci.length === 0 && nvme.length === 0;
      const report = { killedAt, driver, pci: pci.map((e) => ({ owner: e.usedBy?.domain ?? null, stub: e.stubDriver })), nvme: nvme.map((d) => d.key) };
      env.check(`${label}: all or nothing (assigned to ${DOMAIN} whole, or back on nvme in no table)`, assigned || back, report);
      if (back) env.check(`${label}: rolled back, the block devices are back`, await env.waitFor(() => blocks().length === 2, { timeoutMs: 20_000 }), blocks());
      env.check(`${label}: journal empty after recovery`, s.journal?.unfinished === 0, s.journal);
      env.observe(`s20 ${label}: recovered`, { exit: status.code, assignedOrRolledBack: assigned || back, journalUnfinished: s.journal?.unfinished ?? null });

      if (assigned) {
        const release = await env.hostdev(['release', '--domain', DOMAIN]);
        env.check(`${label}: release --domain ${DOMAIN} exits 0`, release.code === 0, release.stderr);
      }
      const home = await env.waitFor(() => env.driverOf(controller) === 'nvme' && blocks().length === 2, { timeoutMs: 20_000 });
      const after = await env.hostdev(['status']);
      const left = { driver: env.driverOf(controller), blocks: blocks(), active: after.json?.active?.length ?? null, inactive: after.json?.inactive?.length ?? null, devices: after.code === 0 ? (after.json?.devices ?? []).length : null };
      env.observe(`s20 ${label}: after release`, left);
      env.check(`${label}: afterwards the controller is on nvme with both block devices and no entry is left`, home && left.active === 0 && left.inactive === 0 && left.devices === 0, left);
    }
  },
};
