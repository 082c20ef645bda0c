import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isBlocked, writeFaultsFile } from '../../src/sim/faults.js';
import { background, killBackgroundAfterEach, waitFor } from '../support/background.js';
import { CLI_BIN, runCli, runCliAsync } from '../support/cli.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';

// Every read is bounded in time and size: while the kernel holds a PF (a VF removal waiting for
// its VM) vf list and a release with VF network config end at the read bound instead of blocking
// in open(); a sriov_numvfs of 20 digits is malformed, not a count to allocate; a huge uevent is
// read no further than a uevent can be.
const PF0 = '0000:01:00.0';
const PF1 = '0000:01:00.1';
const VF0 = '0000:01:10.0';

killBackgroundAfterEach();
const sim = simHostPerTest('hostdev-bounded-', 'sriov-nic');
const host = (): { root: string; flags: string[] } => ({ root: sim.root, flags: ['--root', sim.root, '--state-dir', sim.stateDir, '--simulate'] });

describe('reads while the kernel holds a PF', () => {
  it('vf list of either PF and a release with VF config end by the read bound (exit 0 or 6), never hang', async () => {
    const { root, flags } = host();
    const assign = runCli([...flags, 'assign', '--domain', 'vm1', '--mac', '52:54:00:00:00:01', '--vlan', '5', VF0]);
    expect(assign.code, assign.stderr).toBe(0);
    writeFaultsFile(root, [{ action: 'block', match: 'sriov_numvfs', id: 'held', stage: 'vfio-release' }]);
    background(process.execPath, [CLI_BIN, '--root', root, 'sim', 'write', `/sys/bus/pci/devices/${PF0}/sriov_numvfs`, '0']);
    await waitFor(() => isBlocked(root, 'held'));
    const env = { HOSTDEV_READ_TIMEOUT_MS: '1500' };
    for (const args of [['--json', 'vf', 'list', PF0], ['--json', 'vf', 'list', PF1], ['--json', 'release', '--domain', 'vm1', '--wait', '1500']]) {
      const started = Date.now();
      const run = await runCliAsync([...flags, ...args], { env, timeoutMs: 20_000 });
      const ms = Date.now() - started;
      expect(run.code === 0 || run.code === 6, `${args.join(' ')}: exit ${run.code} ${run.stderr}`).toBe(true);
      if (run.code === 6) expect(JSON.parse(run.stderr.slice(run.stderr.indexOf('{'))).error.code).toBe('HOSTDEV_TIMEOUT');
      expect(ms, args.join(' ')).toBeLessThan(12_000);
    }
    runCli(['--root', root, 'sim', 'release', 'held']);
  }, 90_000);
});

describe('reads bounded in size', () => {
  it('a sriov_numvfs of 99999999999999999999 is malformed (read as no count): vf list answers instead of running out of heap', () => {
    const { root, flags } = host();
    const pfDir = fs.realpathSync(path.join(root, 'sys/bus/pci/devices', PF0));
    fs.writeFileSync(path.join(pfDir, 'sriov_numvfs'), '99999999999999999999\n');
    const run = runCli([...flags, '--json', 'vf', 'list', PF0], { timeoutMs: 20_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ pf: PF0, numVfs: 0 });
  });

  it('a 10 GB uevent (sparse) does not keep detach reading', () => {
    const { root, flags } = host();
    const vfDir = fs.realpathSync(path.join(root, 'sys/bus/pci/devices', VF0));
    fs.truncateSync(path.join(vfDir, 'uevent'), 10 * 1024 ** 3);
    const started = Date.now();
    const run = runCli([...flags, 'detach', VF0], { timeoutMs: 60_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(fs.statSync(path.join(vfDir, 'uevent')).size).toBeLessThan(1024 * 1024);
  });
});
