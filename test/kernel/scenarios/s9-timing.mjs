// Scenario 9 (manual: `--only s9`): what one hostdev call costs in the guest under TCG, with node's
// default JIT against V8 flags that avoid generating machine code, interleaved to average out noise.
import { run } from './lib.mjs';

const VARIANTS = [[], ['--jitless'], ['--no-opt', '--no-sparkplug']];

export const s9Timing = {
  name: 's9-timing',
  title: 'cost of one hostdev call under TCG: default JIT vs --jitless vs interpreter-only tiers',
  kernelOnly: true,
  manual: true,
  async run(env) {
    const totals = VARIANTS.map(() => []);
    for (let round = 0; round < 3; round++) {
      for (const [i, flags] of VARIANTS.entries()) {
        const t = await run(process.execPath, [...flags, env.bin, 'list', '--json']);
        env.check(`node ${flags.join(' ') || '(default)'} hostdev list exits 0`, t.code === 0, t.stderr);
        totals[i].push(t.ms);
      }
    }
    for (const [i, flags] of VARIANTS.entries()) {
      const sorted = [...totals[i]].sort((a, b) => a - b);
      env.log(`  timing: node ${flags.join(' ') || '(default)'} hostdev list: ${sorted.join(', ')} ms (median ${sorted[1]})`);
    }
  },
};
