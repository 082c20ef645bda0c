#!/usr/bin/env node
import { cancelPrefetch, prefetchInventory } from './inventory-prefetch.js';

// list/show/groups: the bounded sysfs reader starts now, while the rest of the CLI loads.
prefetchInventory(process.argv.slice(2));
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
