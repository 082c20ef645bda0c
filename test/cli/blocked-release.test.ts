import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBlocked, writeFaultsFile } from '../../src/sim/faults.js';
import { swapCard } from '../../src/sim/swap.js';
import { background, killBackgroundAfterEach, waitFor, type Background } from '../support/background.js';
import { CLI_BIN, jsonOf, runCli, runCliAsync } from '../support/cli.js';

// The seed's outcome 2 with a release in the middle: QEMU holds VF0 (the simulator's block at
// vfio-pci's release), an admin's `echo 0 > sriov_numvfs` waits for it, and vm1's release starts.
// The release waits, bounded and saying so, without holding up anyone who only looks; when QEMU
// lets go, the VF is gone and the release prunes it: exit 0, both tables empty, nothing awaited.
const PF = '0000:01:00.0';
const VF0 = '0000:01:10.0';
const BLOCK_ID = 'qemu-holds-vf0';

let base = '';
killBackgroundAfterEach();
afterAll(() => {
  if (base !== '') rmSync(base, { recursive: true, force: true });
});

const hostdev = (args: readonly string[]): Background => background(process.execPath, [CLI_BIN, ...args]);

/** A host where vm1 holds VF0 and `echo 0 > PF/sriov_numvfs` waits for it; the hostdev flags for it. */
async function heldByQemu(name: string): Promise<{ root: string; flags: string[]; writer: Background }> {
  if (base === '') base = mkdtempSync(path.join(tmpdir(), 'hostdev-blocked-release-'));
  const root = path.join(base, name, 'root');
  const flags = ['--root', root, '--state-dir', path.join(base, name, 'state'), '--simulate'];
  expect(runCli(['sim', 'create', root, '--preset', 'sriov-nic']).code).toBe(0);
  const assign = runCli([...flags, 'assign', '--domain', 'vm1', VF0]);
  expect(assign.code, assign.stderr).toBe(0);
  writeFaultsFile(root, [{ action: 'block', match: 'sriov_numvfs', id: BLOCK_ID, stage: 'vfio-release' }]);
  const writer = hostdev(['--root', root, 'sim', 'write', `/sys/bus/pci/devices/${PF}/sriov_numvfs`, '0']);
  await waitFor(() => isBlocked(root, BLOCK_ID));
  return { root, flags, writer };
}

describe('a release while QEMU holds a VF whose removal is pending', () => {
  it('waits, telling what for, while status and list answer; when QEMU lets go it exits 0 with the VF pruned and nothing left', async () => {
    const { root, flags, writer } = await heldByQemu('lets-go');
    const release = hostdev([...flags, '--json', 'release', '--domain', 'vm1', '--wait', '60000']);
    await waitFor(() => release.stderr().includes('waiting for'), 10_000);
    expect(release.stderr()).toContain(`waiting for ${VF0}: the kernel holds it`);

    // Its IDs read as another card's: the kernel holds the VF, so its identity now is unknown, never 'changed'.
    swapCard(root, VF0, { device: '101e' });
    const started = Date.now();
    const status = await runCliAsync([...flags, '--json', 'status'], { timeoutMs: 10_000 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(status.code, status.stderr).toBe(0);
    expect(jsonOf<{ active: Array<{ address: string }> }>(status).active.map((entry) => entry.address)).toEqual([VF0]);
    expect(jsonOf<Record<string, unknown>>(status)).not.toHaveProperty('hardwareChanged');
    const listStarted = Date.now();
    const list = await runCliAsync([...flags, '--json', 'list'], { timeoutMs: 10_000 });
    const listMs = Date.now() - listStarted;
    expect(list.code, list.stderr).toBe(0);
    expect(list.stderr).toContain(`${VF0}: the kernel holds this device`);
    expect(listMs).toBeLessThan(3_000);
    process.stdout.write(`list answered in ${listMs} ms while the release waited\n`);
    expect(release.finished()).toBe(false);

    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await writer.done).code).toBe(0);
    const done = await release.done;
    expect(done.code, done.stderr).toBe(0);
    const report = JSON.parse(done.stdout) as { pruned: string[]; released: string[]; failures: unknown[] };
    expect(report.pruned).toEqual([VF0]);
    expect(report.failures).toEqual([]);
    const after = jsonOf<{ active: unknown[]; inactive: unknown[]; departed: unknown[] }>(runCli([...flags, '--json', 'status']));
    expect(after).toMatchObject({ active: [], inactive: [], departed: [] });
  }, 60_000);

  it('ends at the --wait bound with exit 6 naming the file and the pending removal when QEMU never lets go; the tables stay as they were', async () => {
    const { root, flags, writer } = await heldByQemu('holds-on');
    const release = await runCliAsync([...flags, '--json', 'release', '--domain', 'vm1', '--wait', '1500'], { timeoutMs: 20_000 });
    expect(release.code, release.stderr).toBe(6);
    const error = JSON.parse(release.stderr.slice(release.stderr.indexOf('{'))) as { error: { code: string; message: string; hint: string } };
    expect(error.error.code).toBe('HOSTDEV_TIMEOUT');
    expect(error.error.message).toContain(`reading ${VF0} did not finish in 1500 ms`);
    expect(error.error.message).toContain(`/sys/bus/pci/devices/${VF0}/driver_override`);
    expect(error.error.message).toContain('being removed');
    expect(error.error.hint).toContain('sriov_numvfs');
    const status = jsonOf<{ active: Array<{ address: string }>; journal: { unfinished: number } }>(runCli([...flags, '--json', 'status']));
    expect(status.active.map((entry) => entry.address)).toEqual([VF0]);
    expect(status.journal.unfinished).toBe(0);
    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await writer.done).code).toBe(0);
  }, 60_000);

  it('a whole read that hits its bound names the file it was reading: list, and the watch snapshot', async () => {
    const { root, flags, writer } = await heldByQemu('names-the-file');
    const devices = `${root}/sys/bus/pci/devices`;
    // No stall detection: the whole-read bound is what ends the list.
    const list = await runCliAsync([...flags, '--json', 'list'], { env: { HOSTDEV_READ_TIMEOUT_MS: '1500', HOSTDEV_STALL_MS: '600000' }, timeoutMs: 20_000 });
    expect(list.code, list.stderr).toBe(6);
    const error = JSON.parse(list.stderr.slice(list.stderr.indexOf('{'))) as { error: { code: string; message: string; details: { files: string[] } } };
    expect(error.error.code).toBe('HOSTDEV_TIMEOUT');
    // The PF comes first, and its driver_override before its sriov_numvfs: that is where the reader waits.
    expect(error.error.message).toContain(`reading ${devices}/${PF}/driver_override did not finish within 1500 ms`);
    expect(error.error.details.files).toEqual([`${devices}/${PF}/driver_override`]);

    const watch = hostdev([...flags, 'watch', '--source', 'poll', '--read-timeout', '500']);
    await waitFor(() => watch.stderr().includes('did not finish'), 20_000);
    // The watcher's snapshot reads a function's links and SR-IOV counts: the PF's sriov_numvfs waits.
    expect(watch.stderr()).toContain(`reading ${devices}/${PF}/sriov_numvfs did not finish within 500 ms; the reading process was abandoned`);
    watch.child.kill('SIGINT');
    expect((await watch.done).code).toBe(0);

    runCli(['--root', root, 'sim', 'release', BLOCK_ID]);
    expect((await writer.done).code).toBe(0);
  }, 60_000);
});
