import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HostdevManager } from '../../src/manager/hostdev-manager.js';
import { pci, simManagerHost, treeSnapshot, type SimManagerHost } from '../support/sim-manager.js';

// libvirt parity: only endpoints are reset ("Invalid attempt to reset PCI device X. Only PCI
// endpoint devices can be reset") or handed to a stub; a bridge's reset or unbind would hit every
// device behind it. Refused before any write.
const ROOT_PORT = pci('0000:00:01.0');
let host: SimManagerHost;
let manager: HostdevManager;

beforeEach(async () => {
  host = simManagerHost('workstation');
  manager = await host.open();
});
afterEach(() => {
  manager.close();
  host.cleanup();
});

describe('bridges are refused', () => {
  it('reset of a root port: libvirt wording, nothing written', async () => {
    const before = treeSnapshot(host.root);
    await expect(manager.reset(ROOT_PORT)).rejects.toMatchObject({
      code: 'HOSTDEV_NOT_ENDPOINT',
      message: `Invalid attempt to reset PCI device ${ROOT_PORT}. Only PCI endpoint devices can be reset (it is a bridge)`,
    });
    expect(treeSnapshot(host.root)).toEqual(before);
  });

  it('detach of a root port, nothing written, no table entry', async () => {
    const before = treeSnapshot(host.root);
    await expect(manager.detach(ROOT_PORT)).rejects.toMatchObject({
      code: 'HOSTDEV_NOT_ENDPOINT',
      message: expect.stringMatching(new RegExp(`^Non-endpoint PCI device ${ROOT_PORT} cannot be detached for guests`)),
    });
    expect(treeSnapshot(host.root)).toEqual(before);
    expect(manager.tables()).toEqual({ active: [], inactive: [] });
  });
});
