// Reads the guest's serial log and decides: prints one line per scenario, saves each scenario's
// transcript as JSON (for the simulator cross-check), exits 0 only when the guest finished and no
// scenario failed.
//   node parse-serial.mjs SERIAL_LOG TRANSCRIPT_DIR
import fs from 'node:fs';
import path from 'node:path';

const [logFile, outDir] = process.argv.slice(2);
if (!logFile || !outDir) {
  console.error('usage: parse-serial.mjs SERIAL_LOG TRANSCRIPT_DIR');
  process.exit(2);
}
const text = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
fs.mkdirSync(outDir, { recursive: true });
const records = [];
let result = null;
for (const raw of text.split('\n')) {
  const line = raw.replace(/\r$/, '');
  const i = line.indexOf('HOSTDEV-KTEST');
  if (i < 0) continue;
  const rest = line.slice(i);
  try {
    if (rest.startsWith('HOSTDEV-KTEST-RESULT ')) result = JSON.parse(rest.slice('HOSTDEV-KTEST-RESULT '.length));
    else if (rest.startsWith('HOSTDEV-KTEST ')) records.push(JSON.parse(rest.slice('HOSTDEV-KTEST '.length)));
  } catch (error) {
    console.log(`kernel rig: unreadable result line (${error.message}): ${rest.slice(0, 200)}`);
  }
}
let failed = 0;
for (const r of records) {
  if (r.reason === 'not selected for this run') continue;
  const seconds = (r.ms / 1000).toFixed(1);
  const note = r.status === 'fail' ? `; failed: ${[...r.failed, r.reason].filter(Boolean).join('; ')}` : r.reason ? ` (${r.reason})` : '';
  console.log(`kernel scenario ${r.scenario}: ${r.status.toUpperCase()} (${r.checks} checks, ${seconds} s)${note}`);
  if (r.status === 'fail') failed++;
  if (r.status === 'skip') continue;
  fs.writeFileSync(path.join(outDir, `${r.scenario}.json`), `${JSON.stringify({ scenario: r.scenario, status: r.status, transcript: r.transcript }, null, 2)}\n`);
}
if (!result) {
  console.log('kernel rig: the guest did not report a result (crash or timeout): see the serial log');
  process.exit(1);
}
const passed = records.filter((r) => r.status === 'pass').length;
const skipped = records.filter((r) => r.status === 'skip').length;
console.log(`kernel scenarios: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
