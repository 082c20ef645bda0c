import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliRun } from '../support/cli.js';
import { copyInto, makeDecoy, picture, pointAt } from '../support/decoy.js';
import { simHostPerTest } from '../support/sim-host-per-test.js';

// Links out of --root at each place a tree has them: nothing outside the root may change, and
// the command that would have followed one fails with exit 6 naming the link.
const PF = '0000:01:00.0';
const VF = '0000:01:10.0';

const host = simHostPerTest('hostdev-contain-', 'sriov-nic');
let decoy = '';
let before: Record<string, string> = {};

const real = (address: string): string => fs.realpathSync(path.join(host.root, 'sys/bus/pci/devices', address));
const simulated = (...args: string[]): CliRun => runCli(['--root', host.root, '--state-dir', host.stateDir, '--simulate', ...args]);
const plain = (...args: string[]): CliRun => runCli(['--root', host.root, '--state-dir', host.stateDir, ...args]);

/** Takes the decoy's picture once the hostile link is in place. */
function armed(): void {
  before = picture(decoy);
}

function refused(run: CliRun, link: string): void {
  expect(run.code, run.stderr).toBe(6);
  expect(run.stderr).toContain(link);
  expect(run.stderr).toContain('outside the root');
}

beforeEach(() => {
  decoy = makeDecoy(fs.mkdtempSync(path.join(path.dirname(host.root), 'decoy-')));
});
afterEach(() => {
  expect(picture(decoy)).toEqual(before);
  fs.rmSync(decoy, { recursive: true, force: true });
});

describe('links out of --root are never followed for a change', () => {
  it('virtfn: vf set-count 0 does not delete what a virtfn link points at', () => {
    const link = path.join(real(PF), 'virtfn0');
    pointAt(link, path.join(decoy, 'precious'));
    armed();
    refused(simulated('vf', 'set-count', PF, '0'), link);
  });

  it('bus link to a copy outside: detach, sim write remove, vf set-count refuse; so do detach and reset on a plain tree', () => {
    const copy = copyInto(decoy, real(VF), 'vf-copy');
    const pfCopy = copyInto(decoy, real(PF), 'pf-copy');
    const busVf = path.join(host.root, 'sys/bus/pci/devices', VF);
    const busPf = path.join(host.root, 'sys/bus/pci/devices', PF);
    pointAt(busVf, copy);
    pointAt(busPf, pfCopy);
    armed();
    refused(simulated('detach', VF), busVf);
    refused(simulated('sim', 'write', `/sys/bus/pci/devices/${VF}/remove`, '1'), busVf);
    refused(simulated('vf', 'set-count', PF, '1'), busPf);
    refused(plain('detach', VF), busVf);
    refused(plain('reset', VF), busVf);
  });

  it('driver directory linked out: detach does not write unbind into it', () => {
    const driverDir = path.join(host.root, 'sys/bus/pci/drivers/igbvf');
    pointAt(driverDir, copyInto(decoy, fs.realpathSync(driverDir), 'igbvf'));
    armed();
    refused(simulated('detach', VF), driverDir);
  });

  it('physfn linked out: removing the VF does not touch the copy its physfn names', () => {
    const link = path.join(real(VF), 'physfn');
    pointAt(link, copyInto(decoy, real(PF), 'pf-copy'));
    armed();
    refused(simulated('sim', 'write', `/sys/bus/pci/devices/${VF}/remove`, '1'), link);
  });

  it('iommu_group linked out: assign, release and remove leave it alone', () => {
    const link = path.join(real(VF), 'iommu_group');
    pointAt(link, copyInto(decoy, fs.realpathSync(link), '4'));
    armed();
    for (const run of [
      simulated('assign', '--domain', 'vm1', VF),
      simulated('release', '--domain', 'vm1'),
      simulated('sim', 'write', `/sys/bus/pci/devices/${VF}/remove`, '1'),
    ]) {
      expect([0, 6]).toContain(run.code);
    }
  });

  it('net linked out: the driver that binds does not create its netdev there; an unbind removes only the link', () => {
    expect(simulated('sim', 'write', '/sys/bus/pci/drivers/igbvf/unbind', VF).code).toBe(0);
    const link = path.join(real(VF), 'net');
    pointAt(link, path.join(decoy, 'precious'));
    armed();
    refused(simulated('sim', 'write', '/sys/bus/pci/drivers_probe', VF), link);
    const pfNet = path.join(real(PF), 'net');
    pointAt(pfNet, path.join(decoy, 'precious'));
    armed();
    expect(simulated('detach', PF).code).toBe(0);
    expect(fs.existsSync(pfNet)).toBe(false);
  });

  it('an attribute that is a link out (driver_override): detach and reset write nothing there', () => {
    pointAt(path.join(real(VF), 'driver_override'), path.join(decoy, 'file'));
    armed();
    const link = `${VF}/driver_override is a link to ${decoy}/file`;
    refused(simulated('detach', VF), link);
    refused(plain('detach', VF), link);
  });
});
