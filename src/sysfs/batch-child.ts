/**
 * The bounded reader in Node.js, for hosts where native/sysfs-batch.c was not built: the same
 * command line, input and output (see there), done by OpExecutor. Started by BatchReader with the
 * working directory the entries are in.
 */
import { readFileSync } from 'node:fs';
import { encodeResults, OpExecutor, parseOpSpec, type BatchOp } from './batch-ops.js';
import { ProgressNotes } from './read-progress.js';

// --flush: each entry's results go out as soon as they are read (see native/sysfs-batch.c's -f);
// --serve: each entry is read as soon as its name has come, until stdin ends (its -s);
// --progress: file descriptor 3 is the progress file (its -p).
const args = process.argv.slice(2);
const mode = args[0] === '--flush' || args[0] === '--serve' ? (args.shift() as string) : null;
const flush = mode !== null;
const progress = args[0] === '--progress' ? new ProgressNotes(3) : null;
if (progress !== null) args.shift();
const ops: BatchOp[] = args.map((spec) => {
  const op = parseOpSpec(spec);
  if (op === null) {
    process.stderr.write(`hostdev batch child: bad op "${spec}"\n`);
    process.exit(2);
  }
  return op;
});
const executor = new OpExecutor(progress === null ? undefined : (file) => progress.note(file));
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
    for (const name of names) {
      if (name.length === 0) continue;
      readEntry(name);
      progress?.clear();
    }
  });
} else {
  for (const entry of readFileSync(0, 'latin1').split('\0')) if (entry.length > 0) readEntry(entry);
  progress?.clear();
  if (!flush) process.stdout.write(Buffer.concat(out));
}
