#!/bin/sh
# The installed hostdev command (package.json "bin"; copied to dist/cli/hostdev by scripts/build-snapshot.mjs).
# Runs the CLI from its V8 start-up snapshot (dist/cli/hostdev.blob) when the node on PATH is the binary
# that built it (hostdev.blob.node carries that binary's modification time), else the plain bundle
# (dist/cli/bin.js): a blob is only usable by the Node.js build that made it, and with the V8 flags it was
# made with (none): Node.js refuses it when NODE_OPTIONS sets one, so with NODE_OPTIONS the bundle runs too.
# Node.js 20 parses the whole CA bundle at start-up when NODE_EXTRA_CA_CERTS is set (40-60 ms a command);
# hostdev opens no TLS connection, so it starts without it.
unset NODE_EXTRA_CA_CERTS
self=$0
if [ -L "$self" ]; then self=$(readlink -f "$self"); fi
dir=${self%/*}
node=$(command -v node) || { echo "hostdev: node (Node.js 20 or later) is not on PATH" >&2; exit 127; }
stamp=$dir/hostdev.blob.node
if [ -z "${NODE_OPTIONS:-}" ] && [ -f "$dir/hostdev.blob" ] && [ -f "$stamp" ] && ! [ "$node" -nt "$stamp" ] && ! [ "$node" -ot "$stamp" ]; then
  exec "$node" --snapshot-blob "$dir/hostdev.blob" -- "$@"
fi
exec "$node" "$dir/bin.js" "$@"
