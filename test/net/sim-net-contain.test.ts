import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isHostdevError } from '../../src/core/errors.js';
import { SimNetPort } from '../../src/net/sim-net.js';

// The simulated iproute2 keeps its state under ROOT/.hostdev-sim: a link there that leads out of the
// root is refused, and what it points at is left as it was.
describe('SimNetPort under a root with a link out of it', () => {
  let base = '';
  beforeEach(() => {
    base = mkdtempSync(path.join(tmpdir(), 'hostdev-simnet-'));
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('refuses to write its state through .hostdev-sim linked outside, and leaves the decoy as it was', async () => {
    const root = path.join(base, 'root');
    const decoy = path.join(base, 'decoy');
    mkdirSync(root);
    mkdirSync(decoy);
    writeFileSync(path.join(decoy, 'precious'), 'keep');
    symlinkSync(decoy, path.join(root, '.hostdev-sim'));
    const port = new SimNetPort(root, async () => ({ numVfs: 2, generation: null }));
    const error = await port.setVf('eth1', 0, { kind: 'vlan', vlan: 5, qos: 0 }).catch((caught: unknown) => caught);
    expect(isHostdevError(error) && error.code).toBe('HOSTDEV_NET_CONFIG');
    expect(isHostdevError(error) && error.message).toMatch(/\.hostdev-sim is a link to .*decoy, outside the root/);
    expect(readdirSync(decoy)).toEqual(['precious']);
  });

  it('writes its state inside the root as before', async () => {
    const root = path.join(base, 'root');
    mkdirSync(root);
    const port = new SimNetPort(root, async () => ({ numVfs: 2, generation: null }));
    await port.setVf('eth1', 0, { kind: 'vlan', vlan: 5, qos: 0 });
    expect(readdirSync(path.join(root, '.hostdev-sim'))).toEqual(['net.json']);
  });
});
