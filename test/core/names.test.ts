import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { PciAddress } from '../../src/core/address.js';
import { MAX_NAME_BYTES, ownerOf } from '../../src/core/names.js';
import { inUse } from '../../src/core/plan-errors.js';
import { hostdevCommand, releaseCommand, shellQuote } from '../../src/core/shell.js';
import { hostdevErrorOf } from '../support/errors.js';

const VF = '0000:01:10.0' as PciAddress;

describe('domain and hypervisor names', () => {
  it('accepts printable names up to 255 bytes, spaces and quotes included', () => {
    expect(ownerOf({ domain: 'vm 1', hypervisor: 'xen' })).toEqual({ driver: 'xen', domain: 'vm 1', hypervisor: 'xen', vm: 'vm 1' });
    const long = "it's-é".padEnd(MAX_NAME_BYTES - 1, 'x');
    expect(ownerOf({ domain: long })).toEqual({ driver: 'qemu', domain: long, hypervisor: 'qemu', vm: long });
  });

  it.each([
    ['', 'is empty'],
    ['vm\n1', 'control character'],
    ['vm\u001b[31m', 'control character'],
    ['../vm1', 'holds a "/"'],
    ['é'.repeat(128), 'is 256 bytes long'],
  ])('refuses %j with HOSTDEV_USAGE stating the rule', (domain, problem) => {
    const error = hostdevErrorOf(() => ownerOf({ domain }));
    expect(error.code).toBe('HOSTDEV_USAGE');
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(problem);
    expect(error.message).toContain('printable characters, no "/", at most 255 bytes');
  });

  it('checks the hypervisor name by the same rule', () => {
    expect(hostdevErrorOf(() => ownerOf({ domain: 'vm1', hypervisor: 'qemu/system' })).message).toContain('hypervisor name');
  });
});

describe('commands printed in messages', () => {
  it('quote every argument a shell would split or run, so a pasted hint is one command', () => {
    const owner = { driver: 'qemu', domain: 'vm 1; echo pwned', hypervisor: 'qemu', vm: 'vm 1; echo pwned' };
    const hint = inUse(VF, owner).hint!;
    expect(hint).toBe(`Release it first: hostdev release --domain 'vm 1; echo pwned' ${VF}`);
    const command = hint.replace('Release it first: ', '');
    // What a POSIX shell makes of the pasted line: one command, the domain one argument.
    const argv = spawnSync('sh', ['-c', `set -- ${command}; printf '%s\\n' "$@"`], { encoding: 'utf8' }).stdout.trimEnd().split('\n');
    expect(argv).toEqual(['hostdev', 'release', '--domain', 'vm 1; echo pwned', VF]);
  });

  it('leave plain words alone and name a hypervisor other than the default', () => {
    expect(releaseCommand({ driver: 'xen', domain: 'vm1', hypervisor: 'xen', vm: 'vm1' }, VF)).toBe(`hostdev release --domain vm1 --hypervisor xen ${VF}`);
    expect(hostdevCommand('vf', 'forget', VF)).toBe(`hostdev vf forget ${VF}`);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('$(reboot)')).toBe(`'$(reboot)'`);
  });
});
