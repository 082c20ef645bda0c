// Scenarios 13 and 14: a claim defined in the guest takes effect across a reboot. The rig boots the
// guest twice (test/kernel/rig/run.sh): on the first boot s13 claims the e1000e and carries its
// definition (/etc/hostdev/claims.d, what a persistent /etc keeps) to the second boot, then gives the
// device back so later scenarios find it as it was. On the second boot the guest's /init runs the
// initramfs init-top script before it loads any driver, then vfio_pci (the hook's force_load), then
// the host drivers; s14 finds the e1000e on vfio-pci, never bound by e1000e, and runs `claims
// apply` (the systemd unit's command), which records it. Real kernel only.
import fs from 'node:fs';
import { SkipScenario } from './lib.mjs';

const E1000E = ['8086', '10d3'];

export const s13ClaimsReboot = {
  name: 's13-claims-reboot',
  title: 'first boot: claim the e1000e and carry the claim to a second boot of the same image',
  kernelOnly: true,
  async run(env) {
    if (env.boot !== 1) throw new SkipScenario('runs on the first boot');
    await env.requireCommands('claim', 'unclaim', 'claims');
    const address = env.find(...E1000E);
    if (!env.check('e1000e present', address !== null)) return;
    env.equal('e1000e starts on e1000e', env.driverOf(address), 'e1000e');
    const claim = await env.hostdev(['claim', address, '--match', E1000E.join(':')]);
    env.check('claim exits 0', claim.code === 0, claim.stderr);
    const file = `/etc/hostdev/claims.d/pci-${address}`;
    const text = fs.readFileSync(file, 'utf8');
    env.observe('claim file', text.split('\n').filter((line) => line !== '' && !line.startsWith('#')));
    env.carry(file, text, 's14-claims-rebooted');
    const unclaim = await env.hostdev(['unclaim', address]);
    env.check('unclaim exits 0 (this boot goes on as before)', unclaim.code === 0, unclaim.stderr);
    env.check('back on e1000e', await env.waitFor(() => env.driverOf(address) === 'e1000e', { timeoutMs: 10_000 }), env.driverOf(address));
  },
};

export const s14ClaimsRebooted = {
  name: 's14-claims-rebooted',
  title: 'second boot: the claimed e1000e came up on vfio-pci, e1000e never bound it; claims apply records it',
  kernelOnly: true,
  async run(env) {
    if (env.boot !== 2) throw new SkipScenario('runs on the rig\'s second boot (after s13 carried a claim)');
    await env.requireCommands('claims', 'unclaim', 'status');
    const address = env.find(...E1000E);
    if (!env.check('e1000e present', address !== null)) return;
    const booted = {
      driver: env.driverOf(address),
      driverOverride: env.read(`/sys/bus/pci/devices/${address}/driver_override`),
      e1000eLoaded: env.exists('/sys/module/e1000e'),
      // what /init noted right after loading the host drivers
      afterHostDrivers: env.read('/run/hostdev-ktest-boot2-driver'),
    };
    env.observe('booted', booted);
    env.equal('came up on vfio-pci with e1000e loaded, which never had it', booted, {
      driver: 'vfio-pci',
      driverOverride: 'vfio-pci',
      e1000eLoaded: true,
      afterHostDrivers: 'vfio-pci',
    });
    const listed = await env.hostdev(['claims']);
    env.equal('claims: pending before apply (no table entry on this boot yet)', listed.json?.map((c) => c.state) ?? null, ['pending']);
    const apply = await env.hostdev(['claims', 'apply']);
    env.check('claims apply exits 0', apply.code === 0, apply.stderr);
    const outcome = apply.json?.claims?.map((c) => ({ address: c.address, outcome: c.outcome })) ?? null;
    env.observe('claims apply', { exit: apply.code, outcome });
    env.equal('claims apply records it, no write', outcome, [{ address, outcome: 'recorded' }]);
    const status = await env.hostdev(['status']);
    env.equal('inactive table holds it', status.json?.inactive?.map((e) => [e.address, e.stubDriver]) ?? null, [[address, 'vfio-pci']]);
    const unclaim = await env.hostdev(['unclaim', address]);
    env.check('unclaim exits 0', unclaim.code === 0, unclaim.stderr);
    const back = await env.waitFor(() => env.driverOf(address) === 'e1000e', { timeoutMs: 10_000 });
    env.observe('unclaim', { exit: unclaim.code, driver: env.driverOf(address) });
    env.check('back on e1000e after unclaim', back, env.driverOf(address));
  },
};
