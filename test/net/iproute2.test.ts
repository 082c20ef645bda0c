import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Iproute2NetPort, type IpRunner } from '../../src/net/iproute2.js';
import { SimNetPort } from '../../src/net/sim-net.js';

describe('the iproute2 port', () => {
  it('runs ip with an argument array and parses its JSON', async () => {
    const calls: string[][] = [];
    const run: IpRunner = async (args) => {
      calls.push([...args]);
      return { stdout: JSON.stringify([{ ifname: 'eth1', flags: ['UP'], vfinfo_list: [{ vf: 0, address: '52:54:00:00:00:01' }] }]), stderr: '' };
    };
    const port = new Iproute2NetPort(run);
    const info = await port.show('eth1');
    await port.setVf('eth1', 0, { kind: 'spoofchk', on: false });
    expect(info.vfs[0]?.mac).toBe('52:54:00:00:00:01');
    expect(calls).toEqual([
      ['-j', 'link', 'show', 'dev', 'eth1'],
      ['link', 'set', 'dev', 'eth1', 'vf', '0', 'spoofchk', 'off'],
    ]);
  });

  it("turns ip's stderr into HOSTDEV_NET_CONFIG naming the setting, VF and PF", async () => {
    const run: IpRunner = () => Promise.reject(Object.assign(new Error('exit 2'), { stderr: 'RTNETLINK answers: Operation not permitted\n' }));
    await expect(new Iproute2NetPort(run).setVf('eth1', 3, { kind: 'trust', on: true })).rejects.toMatchObject({
      code: 'HOSTDEV_NET_CONFIG',
      message: 'cannot set trust on on VF 3 of PF eth1: RTNETLINK answers: Operation not permitted',
      details: { ifname: 'eth1', vf: 3, errno: 'EPERM' },
    });
  });

  it('carries the errno netlink answered, so that callers never match the words', async () => {
    const said = (stderr: string): IpRunner => () => Promise.reject(Object.assign(new Error('exit 2'), { stderr }));
    const errnoOf = (stderr: string) =>
      new Iproute2NetPort(said(stderr)).setVf('eth1', 0, { kind: 'mac', mac: '00:00:00:00:00:00' }).then(
        () => null,
        (error: { details: { errno?: string } }) => error.details.errno ?? null,
      );
    expect(await errnoOf('RTNETLINK answers: Invalid argument\n')).toBe('EINVAL');
    expect(await errnoOf('RTNETLINK answers: No such device\n')).toBe('ENODEV');
    expect(await errnoOf('Error: argument "x" is wrong\n')).toBe(null);
  });
});

describe('the simulated iproute2', () => {
  let root = '';
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('keeps VF config per PF across instances and resets it when the VF count changes', async () => {
    root = mkdtempSync(path.join(tmpdir(), 'hostdev-net-'));
    let count = 2;
    let generation = 1;
    const lookup = async (ifname: string) => (ifname === 'eth1' ? { numVfs: count, generation: String(generation) } : null);
    await new SimNetPort(root, lookup).setVf('eth1', 1, { kind: 'mac', mac: '52:54:00:00:00:09' });
    const again = new SimNetPort(root, lookup);
    expect((await again.show('eth1')).vfs.map((vf) => vf.mac)).toEqual(['00:00:00:00:00:00', '52:54:00:00:00:09']);
    await expect(again.setVf('eth1', 2, { kind: 'vlan', vlan: 1, qos: 0 })).rejects.toMatchObject({
      message: expect.stringMatching(/Invalid argument/),
      details: { errno: 'EINVAL' },
    });
    await expect(again.show('eth9')).rejects.toThrow(/does not exist/);
    count = 0;
    expect((await again.show('eth1')).vfs).toEqual([]);
    count = 2;
    generation = 2;
    expect((await again.show('eth1')).vfs.map((vf) => vf.mac)).toEqual(['00:00:00:00:00:00', '00:00:00:00:00:00']);
    await again.setUp('eth1', false);
    expect((await again.show('eth1')).up).toBe(false);
  });
});
