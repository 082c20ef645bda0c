import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildHost } from '../../src/sim/builder.js';
import { presets } from '../../src/sim/presets.js';
import { DB_FILE } from '../../src/state/files.js';
import { jsonOf, runCli } from '../support/cli.js';

interface Member {
  address: string;
  owner?: { driver: string; domain: string; hypervisor: string; vm: string } | null;
  table?: 'active' | 'inactive' | null;
}

let base: string;
let root: string;
let state: string;

function hostdev(...args: string[]): ReturnType<typeof runCli> {
  return runCli(['--root', root, '--state-dir', state, '--simulate', ...args]);
}

function members(): Member[] {
  const run = hostdev('groups', '--json');
  expect(run.code, run.stderr).toBe(0);
  return jsonOf<Array<{ members: Member[] }>>(run).flatMap((group) => group.members);
}

beforeEach(() => {
  base = mkdtempSync(path.join(tmpdir(), 'hostdev-groups-owner-'));
  root = path.join(base, 'root');
  state = path.join(base, 'state');
  buildHost(root, presets['libvirt-test']!);
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('list, show and groups say who owns each device, in the same fields and words', () => {
  it('with no state database: owner null and an OWNER column of dashes; nothing is created', () => {
    expect(members().every((member) => member.owner === null && member.table === null)).toBe(true);
    const text = hostdev('groups').stdout;
    expect(text).toMatch(/^GROUP\s+ADDRESS\s+CLASS\s+VENDOR:DEVICE\s+NAME\s+DRIVER\s+OWNER$/m);
    expect(existsSync(path.join(state, DB_FILE))).toBe(false);
  });

  it('an assigned member shows driver/domain, a detached one "hostdev (detached)", the others nothing', () => {
    expect(hostdev('assign', '--domain', 'vm1', '0000:00:02.0').code).toBe(0);
    expect(hostdev('detach', '0000:00:01.0').code).toBe(0);

    const expected = new Map<string, Pick<Member, 'owner' | 'table'>>([
      ['0000:00:02.0', { owner: { driver: 'qemu', domain: 'vm1', hypervisor: 'qemu', vm: 'vm1' }, table: 'active' }],
      ['0000:00:01.0', { owner: null, table: 'inactive' }],
      ['0000:00:00.0', { owner: null, table: null }],
    ]);
    const fields = (m: Member) => ({ owner: m.owner, table: m.table });
    const inGroups = new Map(members().map((member) => [member.address, fields(member)]));
    const inList = new Map(jsonOf<Member[]>(hostdev('list', '--json')).map((device) => [device.address, fields(device)]));
    for (const [address, want] of expected) {
      expect(inGroups.get(address)).toEqual(want);
      expect(inList.get(address)).toEqual(want);
      expect(fields(jsonOf<Member>(hostdev('show', '--json', address)))).toEqual(want);
    }
    expect(hostdev('show', '0000:00:01.0').stdout).toMatch(/^\s+Owner\s+hostdev \(detached\)$/m);
    expect(hostdev('list').stdout.split('\n').find((line) => line.startsWith('0000:00:01.0'))).toMatch(/\shostdev \(detached\)$/);

    const lines = hostdev('groups').stdout.split('\n');
    expect(lines.find((line) => line.includes('0000:00:02.0'))).toMatch(/\sqemu\/vm1$/);
    expect(lines.find((line) => line.includes('0000:00:01.0'))).toMatch(/\shostdev \(detached\)$/);
    expect(lines.find((line) => line.includes('0000:00:00.0'))).toMatch(/\s-$/);
  });
});
