import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI_BIN } from '../support/cli.js';

/**
 * The kernel scenarios (test/kernel/scenarios/), run unchanged against the simulated kernel on a tree
 * shaped like the rig's QEMU guest (q35-guest.spec.json). Each must pass here as it passes on Linux,
 * and where the real kernel's transcript was recorded (test/kernel/golden/, `UPDATE_GOLDEN=1 npm run
 * test:kernel`) the simulator's observations must equal Linux's, step by step.
 */
interface Step {
  readonly step: string;
  readonly value: unknown;
}
interface ScenarioRecord {
  readonly scenario: string;
  readonly status: 'pass' | 'fail' | 'skip';
  readonly reason?: string;
  readonly failed: readonly string[];
  readonly transcript: readonly Step[];
}

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const names = fs
  .readdirSync(here('./scenarios'))
  .flatMap((f) => (/^(s\d+-[\w-]+)\.mjs$/.exec(f)?.[1] ? [/^(s\d+-[\w-]+)\.mjs$/.exec(f)![1]!] : []))
  .sort();
const records = new Map<string, ScenarioRecord>();
let output = '';

beforeAll(() => {
  const run = spawnSync(process.execPath, [here('./scenarios/run.mjs'), '--mode', 'sim', '--bin', CLI_BIN], {
    encoding: 'utf8',
    timeout: 420_000,
  });
  output = `${run.stdout}\n${run.stderr}`;
  for (const line of run.stdout.split('\n')) {
    if (line.startsWith('HOSTDEV-KTEST ')) {
      const record = JSON.parse(line.slice('HOSTDEV-KTEST '.length)) as ScenarioRecord;
      records.set(record.scenario, record);
    }
  }
}, 440_000);

function golden(name: string): readonly Step[] | null {
  const file = here(`./golden/${name}.json`);
  if (!fs.existsSync(file)) return null;
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { status: string; transcript: Step[] };
  return parsed.status === 'pass' ? parsed.transcript : null;
}

describe('kernel scenarios on the simulated kernel', () => {
  for (const name of names) {
    it(`${name} passes as on Linux`, (ctx) => {
      const record = records.get(name);
      expect(record, `no result for ${name}:\n${output.slice(-4000)}`).toBeDefined();
      if (record!.status === 'skip') ctx.skip(record!.reason ?? 'skipped');
      expect(record!.status, `${name} failed on the simulator: ${[...record!.failed, record!.reason ?? ''].join('; ')}\n${output.slice(-6000)}`).toBe('pass');
      const linux = golden(name);
      if (linux === null) return;
      const sim = new Map(record!.transcript.map((s) => [s.step, s.value]));
      for (const step of linux) {
        expect(sim.has(step.step), `the simulator's run of ${name} has no step "${step.step}"`).toBe(true);
        expect(sim.get(step.step), `${name}, step "${step.step}": simulator (received) vs Linux (expected)`).toEqual(step.value);
      }
    });
  }
});
