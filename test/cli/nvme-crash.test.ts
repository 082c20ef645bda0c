import { readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateStore } from '../../src/state/store.js';
import { simHostCopies } from '../support/sim-host-per-test.js';

// An NVMe assign killed at each sysfs write of its controller's detach: the namespaces' entries are
// in the PCI plan's own commit, so none is recorded, and the next open rolls the controller back
// to nvme (PCI recovery); then the assign works as if nothing happened.
const CONTROLLER = '0000:01:00.0';
const ASSIGN = ['assign', '--domain', 'vm1', `nvme:${CONTROLLER}/1`];
const freshHost = simHostCopies('hostdev-cli-nvme-crash-', 'virt-host');

describe('an NVMe assign killed at its controller\'s writes', () => {
  it.each([1, 2, 3])('killed after write %i: no namespace entry, the controller back on nvme at the next open', (afterWrites) => {
    const { root, stateDir, cli } = freshHost(`after-${afterWrites}`);
    const crashed = cli(ASSIGN, { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', afterWrites }]) });
    expect(crashed.code, crashed.stderr).not.toBe(0);
    const store = StateStore.openSnapshot(stateDir);
    try {
      expect(store.readDevices()).toEqual([]);
      expect(store.readJournal().length).toBeGreaterThan(0);
    } finally {
      store.close();
    }
    const status = cli(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    expect(path.basename(readlinkSync(path.join(root, 'sys/bus/pci/devices', CONTROLLER, 'driver')))).toBe('nvme');
    const again = cli(ASSIGN);
    expect(again.code, again.stderr).toBe(0);
    expect(path.basename(readlinkSync(path.join(root, 'sys/bus/pci/devices', CONTROLLER, 'driver')))).toBe('vfio-pci');
  });
});
