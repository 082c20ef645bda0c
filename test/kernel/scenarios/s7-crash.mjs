// Scenario 7: crash recovery on the real kernel. `hostdev assign` of three devices is killed with
// SIGKILL in the middle (as soon as it has changed the first, then the second device); a fresh
// hostdev process (status) recovers, and the invariants hold: no device on vfio-pci without a table
// entry, no table entry whose device is not on its stub, every device either fully assigned or back
// on its original driver and in no table, nothing left in the journal.
import { spawn } from 'node:child_process';
import { NODE_FLAGS, tablesOf } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const s7Crash = {
  name: 's7-crash',
  title: 'SIGKILL in the middle of a 3-device assign; the next hostdev process recovers; invariants hold',
  async run(env) {
    await env.requireCommands('assign', 'release', 'status');
    const devices = [env.find('8086', '10d3'), env.find('1234', '11e8'), env.find('1b36', '0010')];
    if (!env.check('e1000e, edu and nvme present', devices.every(Boolean))) return;
    const original = Object.fromEntries(devices.map((a) => [a, env.driverOf(a)]));
    const state = (a) => `${env.driverOf(a)}|${env.read(`/sys/bus/pci/devices/${a}/driver_override`)}`;
    env.onCleanup(() => env.hostdev(['release', '--domain', 'vm7']), { onlyOnFailure: true });

    // kill points: with the second device half-moved (always), and with the first (full runs)
    for (const killAfter of env.full ? [1, 2] : [2]) {
      const label = `kill after device ${killAfter} changed`;
      const initial = Object.fromEntries(devices.map((a) => [a, state(a)]));
      const child = spawn(process.execPath, [...NODE_FLAGS, env.bin, 'assign', '--domain', 'vm7', ...devices, ...env.globals(), '--json'], { stdio: 'ignore' });
      let exited = false;
      child.on('exit', () => (exited = true));
      let killedAt = null;
      const end = Date.now() + 120_000;
      while (!exited && Date.now() < end) {
        const changed = devices.filter((a) => state(a) !== initial[a]).length;
        if (changed >= killAfter) {
          child.kill('SIGKILL');
          killedAt = Object.fromEntries(devices.map((a) => [a, state(a)]));
          break;
        }
        await sleep(5);
      }
      while (!exited) await sleep(20);
      env.log(`  ${label}: ${killedAt ? `killed with ${JSON.stringify(killedAt)}` : 'the assign finished before the kill'}`);

      const status = await env.hostdev(['status']);
      env.check(`${label}: the next hostdev status exits 0`, status.code === 0, status.stderr);
      const t = tablesOf(status.json);
      const entry = (a) => t.active.find((e) => e.address === a) ?? t.inactive.find((e) => e.address === a) ?? null;
      const report = devices.map((a) => ({ address: a, driver: env.driverOf(a), entry: entry(a) }));
      env.check(`${label}: no device on vfio-pci without a table entry`, report.every((d) => d.driver !== 'vfio-pci' || d.entry), report);
      env.check(`${label}: every table entry's device is on its stub`, report.every((d) => !d.entry || d.driver === d.entry.stubDriver), report);
      const assigned = report.every((d) => d.driver === 'vfio-pci' && t.active.some((e) => e.address === d.address && e.usedBy?.domain === 'vm7'));
      const rolledBack = report.every((d) => d.driver === original[d.address] && !d.entry);
      env.check(`${label}: all-or-nothing (all assigned to vm7, or all back and in no table)`, assigned || rolledBack, report);
      const unfinished = status.json?.journal?.unfinished;
      env.check(`${label}: journal empty after recovery`, unfinished === 0, status.json?.journal);
      env.observe(`${label}: invariants`, { assignedOrRolledBack: assigned || rolledBack });

      const release = await env.hostdev(['release', '--domain', 'vm7']);
      await env.waitFor(() => devices.every((a) => env.driverOf(a) === original[a]), { timeoutMs: 10_000 });
      env.check(`${label}: afterwards every device is back on its driver`, devices.every((a) => env.driverOf(a) === original[a]),
        { release: release.code, drivers: devices.map((a) => env.driverOf(a)) });
      const after = tablesOf((await env.hostdev(['status'])).json);
      env.equal(`${label}: tables empty afterwards`, after, { active: [], inactive: [] });
    }
  },
};
