import { cancelPrefetch, prefetchInventory, scanArgv } from './inventory-prefetch.js';
import { stopSignal } from './stop-signals.js';

type Main = (argv: readonly string[]) => Promise<number>;

/**
 * Runs the CLI on argv, for both ways it starts: bin.js (main loaded by import) and the start-up
 * snapshot (snapshot-entry.ts: main already in the heap).
 */
export function startCli(argv: readonly string[], loadMain: () => Promise<Main>): void {
  // list/groups: the bounded sysfs reader starts now, while the rest of the CLI loads.
  prefetchInventory(argv);
  // watch: a Ctrl-C from now on stops it the one way, however early it comes.
  if (scanArgv(argv)?.command === 'watch') void stopSignal();
  loadMain()
    .then((main) => main(argv))
    .then(
      (code) => {
        cancelPrefetch();
        process.exitCode = code;
      },
      (error: unknown) => {
        cancelPrefetch();
        process.stderr.write(`hostdev: ${String(error)}\n`);
        process.exitCode = 1;
      },
    );
}
