#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// Started without NODE_EXTRA_CA_CERTS (GNU env -u): Node.js 20 parses the whole CA bundle at start-up
// when it is set, 40-60 ms on every command, and hostdev never opens a TLS connection.
import { cancelPrefetch, prefetchInventory, scanArgv } from './inventory-prefetch.js';
import { stopSignal } from './stop-signals.js';

// list/groups: the bounded sysfs reader starts now, while the rest of the CLI loads.
prefetchInventory(process.argv.slice(2));
// watch: a Ctrl-C from now on stops it the one way, however early it comes.
if (scanArgv(process.argv.slice(2))?.command === 'watch') void stopSignal();
const { main } = await import('./main.js');

main(process.argv.slice(2)).then(
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
