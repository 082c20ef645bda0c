import { describe, expect, it } from 'vitest';
import {
  ipSetArgs,
  parseIpLinkShow,
  parseMac,
  parseVlan,
  pfDownError,
  restoreSettings,
  settingsFor,
} from '../../src/net/vf-net-config.js';

// Shape of iproute2 6.1's `ip -j link show dev PF` on an igb PF with two VFs.
const IP_OUTPUT = JSON.stringify([
  {
    ifindex: 3,
    ifname: 'enp3s0f0',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    operstate: 'UP',
    address: '52:54:00:aa:bb:cc',
    vfinfo_list: [
      {
        vf: 1,
        link_type: 'ether',
        address: '00:00:00:00:00:00',
        spoofchk: true,
        link_state: 'auto',
        trust: false,
      },
      {
        vf: 0,
        link_type: 'ether',
        address: '52:54:00:12:34:56',
        vlan_list: [{ vlan: 100, qos: 2 }],
        spoofchk: false,
        link_state: 'enable',
        trust: true,
      },
    ],
  },
]);

describe('parsing `ip -j link show dev PF`', () => {
  it('reads the UP flag and each VF in index order with MAC, VLAN, spoofchk, trust and link state', () => {
    const info = parseIpLinkShow(IP_OUTPUT, 'enp3s0f0');
    expect(info.up).toBe(true);
    expect(info.vfs).toEqual([
      { vf: 0, mac: '52:54:00:12:34:56', vlan: 100, qos: 2, spoofchk: false, trust: true, linkState: 'enable' },
      { vf: 1, mac: '00:00:00:00:00:00', vlan: 0, qos: 0, spoofchk: true, trust: false, linkState: 'auto' },
    ]);
  });

  it('reads the flat vlan field of older output and reports a down PF', () => {
    const info = parseIpLinkShow(
      JSON.stringify([{ ifname: 'eth1', flags: ['BROADCAST'], vfinfo_list: [{ vf: 0, address: 'AA:00:00:00:00:01', vlan: 7 }] }]),
      'eth1',
    );
    expect(info.up).toBe(false);
    expect(info.vfs[0]).toMatchObject({ mac: 'aa:00:00:00:00:01', vlan: 7, spoofchk: null, trust: null });
  });

  it('refuses output that is not JSON with HOSTDEV_NET_CONFIG', () => {
    expect(() => parseIpLinkShow('Usage: ip link', 'eth1')).toThrow(/not JSON/);
  });
});

describe('building `ip link set` argument arrays', () => {
  it('puts every value in its own argument, never in a shell string', () => {
    expect(ipSetArgs('enp3s0f0', 2, { kind: 'mac', mac: '52:54:00:12:34:56' })).toEqual([
      'link', 'set', 'dev', 'enp3s0f0', 'vf', '2', 'mac', '52:54:00:12:34:56',
    ]);
    expect(ipSetArgs('enp3s0f0', 0, { kind: 'vlan', vlan: 10, qos: 3 }).slice(6)).toEqual(['vlan', '10', 'qos', '3']);
  });

  it('refuses an interface name that could smuggle anything into the arguments', () => {
    expect(() => ipSetArgs('eth0; reboot', 0, { kind: 'trust', on: true })).toThrow(/not a network interface name/);
  });

  it('applies in the order Intel NICs need: VLAN, trust, MAC, spoofchk', () => {
    const order = settingsFor({ spoofchk: false, mac: '52:54:00:00:00:01', trust: true, vlan: 5 }).map((s) => s.kind);
    expect(order).toEqual(['vlan', 'trust', 'mac', 'spoofchk']);
    const restore = restoreSettings({ mac: '00:00:00:00:00:00', vlan: 0, qos: 0, spoofchk: true, trust: null, linkState: null });
    expect(restore.map((s) => s.kind)).toEqual(['vlan', 'mac', 'spoofchk']);
  });
});

describe('validating operator input', () => {
  it('accepts a unicast MAC in either spelling and refuses a multicast one', () => {
    expect(parseMac('52-54-00-AB-CD-EF')).toBe('52:54:00:ab:cd:ef');
    expect(() => parseMac('01:00:5e:00:00:01')).toThrow(/multicast/);
    expect(() => parseMac('nope')).toThrow(/not a MAC address/);
  });

  it('accepts VLAN 0..4094 only', () => {
    expect(parseVlan('4094')).toBe(4094);
    expect(() => parseVlan('4095')).toThrow(/not a VLAN ID/);
  });

  it('words a down PF as libvirt does, with a hint to bring it up', () => {
    const error = pfDownError('enp3s0f0', 1);
    expect(error.message).toBe(
      "Unable to configure VF 1 of PF 'enp3s0f0' because the PF is not online. Please change host network config to put the PF online.",
    );
    expect(error.hint).toBe('Bring the PF up first: ip link set dev enp3s0f0 up');
  });
});
