#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
// Started without NODE_EXTRA_CA_CERTS (GNU env -u): Node.js 20 parses the whole CA bundle at start-up
// when it is set, 40-60 ms on every command, and hostdev never opens a TLS connection.
import { startCli } from './start.js';

startCli(process.argv.slice(2), async () => (await import('./main.js')).main);
