// Runs kernel scenarios and prints a machine-readable result:
//   HOSTDEV-KTEST {"scenario", "status": "pass"|"fail"|"skip", "reason"?, "checks", "failed", "ms", "transcript"}
//   HOSTDEV-KTEST-RESULT {"passed", "failed", "skipped"}
// Usage:
//   node run.mjs --mode kernel [--only s1,s2] [--bin /hostdev/dist/cli/bin.js] [--state-dir DIR]
//   node run.mjs --mode sim --sim-spec FILE [--only ...] [--bin ...]    (a fresh simulated tree per scenario)
// Exit status: 0 when no scenario failed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ScenarioEnv, SkipScenario, run } from './lib.mjs';
import { scenarios } from './index.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const mode = opt('mode', 'kernel');
const bin = path.resolve(opt('bin', path.join(here, '../../../dist/cli/bin.js')));
const only = opt('only', '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const simSpec = opt('sim-spec', path.join(here, '../q35-guest.spec.json'));
const full = args.includes('--full');

const selected = scenarios.filter((s) => {
  if (only.length) return only.some((o) => s.name === o || s.name.startsWith(`${o}-`));
  return !s.manual && (full || !s.expensive);
});

const totals = { passed: 0, failed: 0, skipped: 0 };
for (const scenario of scenarios.filter((s) => !selected.includes(s))) {
  const record = { scenario: scenario.name, status: 'skip', reason: 'not selected for this run', checks: 0, failed: [], ms: 0, transcript: [] };
  process.stdout.write(`HOSTDEV-KTEST ${JSON.stringify(record)}\n`);
}
for (const scenario of selected) {
  const started = Date.now();
  process.stdout.write(`=== scenario ${scenario.name}: ${scenario.title}\n`);
  let tmp = null;
  let env;
  let status = 'pass';
  let reason;
  try {
    if (mode === 'sim') {
      if (scenario.kernelOnly) throw new SkipScenario('runs on the real kernel only');
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), `hostdev-ktest-${scenario.name}-`));
      const root = path.join(tmp, 'root');
      // a scenario whose guest the rig boots with more devices (s18: an xHCI with a keyboard) gives the simulator the same
      let spec = simSpec;
      if (scenario.simSpec) {
        spec = path.join(tmp, 'spec.json');
        fs.writeFileSync(spec, JSON.stringify(scenario.simSpec(JSON.parse(fs.readFileSync(simSpec, 'utf8')))));
      }
      const made = await run(process.execPath, [bin, 'sim', 'create', root, '--spec', spec], { timeoutMs: 60_000 });
      if (made.code !== 0) throw new SkipScenario(`hostdev sim create failed: ${made.stderr.trim().split('\n').pop()}`);
      env = new ScenarioEnv({ mode, root, stateDir: path.join(tmp, 'state'), bin, full });
    } else {
      const stateDir = opt('state-dir', '/var/lib/hostdev-ktest');
      fs.rmSync(stateDir, { recursive: true, force: true });
      env = new ScenarioEnv({ mode, root: '/', stateDir, bin, full });
    }
    await scenario.run(env);
    if (env.checks.some((c) => !c.ok)) status = 'fail';
    if (env.checks.length === 0 && status === 'pass') {
      status = 'fail';
      reason = 'the scenario made no check';
    }
  } catch (error) {
    if (error instanceof SkipScenario) {
      status = 'skip';
      reason = error.message;
    } else {
      status = 'fail';
      reason = `threw: ${error?.stack ?? error}`;
    }
  }
  for (const { fn: cleanup, onlyOnFailure } of env?.cleanups ?? []) {
    if (onlyOnFailure && status === 'pass') continue;
    try {
      await cleanup();
    } catch (error) {
      process.stdout.write(`  cleanup failed: ${error?.message ?? error}\n`);
    }
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  const failed = (env?.checks ?? []).filter((c) => !c.ok).map((c) => c.desc);
  totals[status === 'pass' ? 'passed' : status === 'fail' ? 'failed' : 'skipped']++;
  const record = {
    scenario: scenario.name,
    status,
    ...(reason ? { reason } : {}),
    checks: env?.checks.length ?? 0,
    failed,
    ms: Date.now() - started,
    transcript: env?.transcript ?? [],
  };
  process.stdout.write(`--- scenario ${scenario.name}: ${status.toUpperCase()}${reason ? ` (${reason})` : ''} in ${record.ms} ms\n`);
  process.stdout.write(`HOSTDEV-KTEST ${JSON.stringify(record)}\n`);
}
process.stdout.write(`HOSTDEV-KTEST-RESULT ${JSON.stringify(totals)}\n`);
// exit now: a scenario's pending timers (bounded waits that lost their race) must not hold the guest
process.exit(totals.failed === 0 ? 0 : 1);
