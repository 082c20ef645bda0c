// Scenario 6, the seed's outcome 1 (expensive: `npm run test:kernel:full`): a nested Linux guest runs
// igbvf on VF0; `echo 0 > sriov_numvfs` makes the kernel ask QEMU for the VF, QEMU turns that into an
// ACPI unplug the nested guest honours, and releases the device while it keeps running. `hostdev
// watch`, running meanwhile, prunes VF0 from the tables live; `release --domain vm1` later succeeds.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from './lib.mjs';
import { qemuAvailable, startQemu, stopQemu, vfioFds } from './qemu.mjs';
import { tables } from './s2-detach.mjs';
import { prepareDomain } from './vm-setup.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const here = path.dirname(fileURLToPath(import.meta.url));
export const NESTED = '/nested';

/** The nested initramfs: the base (busybox, igbvf) with the overlay's /init appended. */
export function nestedInitrd() {
  const out = '/tmp/nested-initrd.cpio';
  fs.writeFileSync(out, Buffer.concat([fs.readFileSync(`${NESTED}/initrd-base.cpio`), fs.readFileSync(path.join(here, '../nested-init.cpio'))]));
  return out;
}

export const s6Nested = {
  name: 's6-nested',
  title: 'the seed, outcome 1: a nested Linux guest gives VF0 back on request; watch prunes it live; release succeeds',
  kernelOnly: true,
  expensive: true,
  async run(env) {
    await env.requireCommands('vf set-count', 'assign', 'release', 'status', 'qemu-args', 'watch');
    if (!qemuAvailable() || !fs.existsSync(`${NESTED}/vmlinuz`)) {
      env.check('the nested kernel is in the guest (test:kernel:full appends it)', false);
      return;
    }
    const { pf, nic, vf0, argv } = await prepareDomain(env, 'vm1', 's6');
    const serial = '/tmp/nested-serial.log';
    fs.rmSync(serial, { force: true });
    const vm = await startQemu('vm1', argv, {
      memory: 256,
      paused: false,
      extra: ['-smp', '1', '-kernel', `${NESTED}/vmlinuz`, '-initrd', nestedInitrd(), '-append', 'console=ttyS0 quiet panic=-1', '-serial', `file:${serial}`],
    });
    env.onCleanup(() => stopQemu(vm));
    const t0 = Date.now();
    const ready = await env.waitFor(() => fs.existsSync(serial) && fs.readFileSync(serial, 'utf8').includes('NESTED-READY'), { timeoutMs: 400_000, intervalMs: 1000 });
    env.log(`  nested guest: ${ready ? 'ready' : 'not ready'} after ${Date.now() - t0} ms: ${fs.existsSync(serial) ? fs.readFileSync(serial, 'utf8').trim().split('\n').slice(-3).join(' | ') : ''}`);
    if (!env.check('the nested guest boots and binds igbvf to VF0', ready && fs.readFileSync(serial, 'utf8').includes('driver=igbvf'), vm.output)) return;

    let watchOut = '';
    const watch = spawn(process.execPath, [...NODE_FLAGS, env.bin, 'watch', ...env.globals(), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    watch.stdout.setEncoding('utf8').on('data', (d) => (watchOut += d));
    watch.stderr.setEncoding('utf8').on('data', (d) => (watchOut += d));
    env.onCleanup(() => watch.kill('SIGKILL'));
    await sleep(15_000); // the watcher takes its first snapshot

    const write = env.kernelWriteBackground(`/sys/bus/pci/devices/${pf}/sriov_numvfs`, 0);
    const done = await Promise.race([write.result, sleep(120_000).then(() => null)]);
    env.check('echo 0 > sriov_numvfs returns while QEMU keeps running', done?.ok === true && vm.exited === null, { done, exited: vm.exited });
    env.check('QEMU no longer holds VF0', !vfioFds(vm.child.pid).some((f) => f === `/dev/vfio/${env.groupOf(vf0) ?? 'gone'}`));
    env.check('the nested guest saw VF0 go', await env.waitFor(() => fs.readFileSync(serial, 'utf8').includes('NESTED-VF-GONE'), { timeoutMs: 30_000 }));
    const pruned = await env.waitFor(() => watchOut.includes(vf0) && /prune/i.test(watchOut), { timeoutMs: 60_000 });
    env.check('hostdev watch reports VF0 removed and pruned', pruned, watchOut.slice(-3000));
    const t = await tables(env);
    env.check('VF0 left both tables while the domain still runs', !JSON.stringify(t).includes(vf0), t);
    watch.kill('SIGTERM');
    await stopQemu(vm);
    const release = await env.hostdev(['release', '--domain', 'vm1']);
    env.check('release --domain vm1 exits 0', release.code === 0, release.stderr);
    env.check('the e1000e is back on e1000e', await env.waitFor(() => env.driverOf(nic) === 'e1000e', { timeoutMs: 10_000 }));
    env.equal('tables empty', await tables(env), { active: [], inactive: [] });
  },
};
