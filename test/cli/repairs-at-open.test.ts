import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, runCli } from '../support/cli.js';

// A repair made when any command opens the state is said by that command, and `status` keeps it
// with its time and the command whose open made it.
let dir = '';
let root = '';
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'hostdev-repairs-'));
  root = path.join(dir, 'host');
  expect(runCli(['sim', 'create', root, '--preset', 'sriov-nic']).code).toBe(0);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VF = '0000:01:10.0';
const hs = (...args: string[]) => runCli(['--root', root, '--simulate', ...args]);

describe('repairs at open', () => {
  it('are printed by the command that made them (one line each) and listed by a later status', () => {
    writeFileSync(path.join(root, '.hostdev-sim/faults.json'), JSON.stringify([{ action: 'crash', afterWrites: 2 }]));
    expect(hs('detach', VF).code).not.toBe(0); // killed (SIGKILL) after its second write

    const look = hs('vf', 'list', '0000:01:00.0');
    expect(look.code, look.stderr).toBe(0);
    const lines = look.stderr.split('\n').filter((line) => line.startsWith('warning:'));
    expect(lines).toEqual([`warning: ${VF}: rolled back the detach a hostdev that did not finish left; on igbvf, in no table`]);

    const status = hs('status');
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain('Repaired at open (1), most recent first');
    expect(status.stdout).toMatch(new RegExp(`\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +vf list +${VF} +detach left unfinished, rolled-back +on igbvf, in no table`));
    const json = jsonOf<{ recentRepairs: { by: string; report: { repaired: { address: string }[] } }[] }>(hs('status', '--json'));
    expect(json.recentRepairs).toMatchObject([{ by: 'vf list', report: { repaired: [{ address: VF }] } }]);
  });
});
