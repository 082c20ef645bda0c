/**
 * The bounded reader in Node.js, for hosts where native/sysfs-batch.c was not built: the same
 * command line, input and output (see there), done by OpExecutor. Started by BatchReader with the
 * working directory the entries are in.
 */
import { readFileSync } from 'node:fs';
import { encodeResults, OpExecutor, parseOpSpec, type BatchOp } from './batch-ops.js';

// --flush: each entry's results go out as soon as they are read (see native/sysfs-batch.c's -f);
// --serve: each entry is read as soon as its name has come, until stdin ends (its -s).
const mode = process.argv[2] === '--flush' || process.argv[2] === '--serve' ? process.argv[2] : null;
const flush = mode !== null;
const ops: BatchOp[] = process.argv.slice(mode === null ? 2 : 3).map((spec) => {
  const op = parseOpSpec(spec);
  if (op === null) {
    process.stderr.write(`hostdev batch child: bad op "${spec}"\n`);
    process.exit(2);
  }
  return op;
});
const executor = new OpExecutor();
const out: Buffer[] = [];

function readEntry(entry: string): void {
  if (entry.includes('/') || entry === '.' || entry === '..') {
    process.stderr.write(`hostdev batch child: bad entry name "${entry}"\n`);
    process.exit(2);
  }
  const encoded = encodeResults(executor.run('.', entry, ops));
  // A pipe's writes are synchronous on Linux: this entry is out before the next read starts.
  if (flush) process.stdout.write(encoded);
  else out.push(encoded);
}

if (mode === '--serve') {
  let rest = '';
  process.stdin.setEncoding('latin1').on('data', (chunk: string) => {
    const names = (rest + chunk).split('\0');
    rest = names.pop() ?? '';
    for (const name of names) if (name.length > 0) readEntry(name);
  });
} else {
  for (const entry of readFileSync(0, 'latin1').split('\0')) if (entry.length > 0) readEntry(entry);
  if (!flush) process.stdout.write(Buffer.concat(out));
}
