import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateStore } from '../../src/state/store.js';
import { jsonOf } from '../support/cli.js';
import { simHostCopies } from '../support/sim-host-per-test.js';

// An mdev create or remove killed at its one sysfs write (before it or after it): the journal row is
// settled by recovery at the next open as a group of the one recovery plan, which a dry run prints
// (with its read-back step) and a real open applies through the executor, clearing the row.
const GPU = '0000:00:02.0';
const TYPE = 'i915-GVTg_V5_4';
const UUID = 'c297db4a-f4c2-11e6-90f6-d3b88d6c9525';
const KEY = `mdev:${UUID}`;
const freshHost = simHostCopies('hostdev-cli-mdev-crash-', 'virt-host');

function journalOf(stateDir: string): readonly unknown[] {
  const store = StateStore.openSnapshot(stateDir);
  try {
    return store.readJournal();
  } finally {
    store.close();
  }
}

const cases = [
  { operation: 'mdev-create', when: 'before', made: false, direction: 'rolled-back', outcome: 'was not created' },
  { operation: 'mdev-create', when: 'after', made: true, direction: 'rolled-forward', outcome: 'was created' },
  { operation: 'mdev-remove', when: 'before', made: true, direction: 'rolled-back', outcome: 'is still there' },
  { operation: 'mdev-remove', when: 'after', made: false, direction: 'rolled-forward', outcome: 'was removed' },
] as const;

describe('an mdev write killed half-way is a group of the recovery plan', () => {
  it.each(cases)('$operation killed $when its write: dry run prints the repair, the next open settles it ($outcome)', ({ operation, when, made, direction, outcome }) => {
    const { root, stateDir, cli } = freshHost(`${operation}-${when}`);
    if (operation === 'mdev-remove') expect(cli(['mdev', 'create', GPU, TYPE, '--uuid', UUID]).code).toBe(0);
    const args = operation === 'mdev-create' ? ['mdev', 'create', GPU, TYPE, '--uuid', UUID] : ['mdev', 'remove', UUID];
    const crashed = cli(args, { HOSTDEV_SIM_FAULTS: JSON.stringify([{ action: 'crash', afterWrites: 1, when }]) });
    expect(crashed.code, crashed.stderr).not.toBe(0);
    expect(existsSync(path.join(root, 'sys/bus/mdev/devices', UUID))).toBe(made);
    expect(journalOf(stateDir)).toHaveLength(1);

    // A dry run says what recovery at open would do, with the group's read-back step, and changes nothing.
    const dry = cli(['detach', '0000:00:19.0', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(jsonOf<{ recovery: unknown }>(dry).recovery).toMatchObject({
      dryRun: true,
      devices: [{ key: KEY, operation, direction, outcome: 'ok', error: null, steps: [`check ${KEY} is ${made ? 'on the host' : 'not on the host'}`] }],
    });
    const text = cli(['detach', '0000:00:19.0', '--dry-run']);
    expect(text.stdout).toContain(`would ${direction === 'rolled-back' ? 'roll back' : 'roll forward'} ${KEY} (an unfinished ${operation}): the mediated device ${outcome}`);
    expect(text.stdout).toContain(`    check ${KEY} is`);
    expect(journalOf(stateDir)).toHaveLength(1);

    // The next real command's open applies it: the row is cleared, the outcome said and kept for status.
    const next = cli(['mdev', 'list']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toContain(`${KEY}: an ${operation.replace('-', ' ')} a hostdev that did not finish left: the mediated device ${outcome}`);
    expect(journalOf(stateDir)).toEqual([]);
    const status = jsonOf(cli(['status', '--json']));
    expect(JSON.stringify(status)).toContain(`"key":"${KEY}","operation":"${operation}","direction":"${direction}","outcome":"ok"`);
    // And the host is usable as it is: a create or remove of the same UUID works from there.
    const again = made ? cli(['mdev', 'remove', UUID]) : cli(['mdev', 'create', GPU, TYPE, '--uuid', UUID]);
    expect(again.code, again.stderr).toBe(0);
  });
});
