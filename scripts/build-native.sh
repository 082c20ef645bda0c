#!/usr/bin/env bash
# Builds dist/native/hostdev-sysfs-batch (the bounded sysfs reader, native/sysfs-batch.c) when a C
# compiler is there and the source is newer. Without one hostdev still works: it then reads in a
# Node.js child instead, slower to start.
set -euo pipefail
cd "$(dirname "$0")/.."
source=native/sysfs-batch.c
target=dist/native/hostdev-sysfs-batch
[ -f "$target" ] && [ "$target" -nt "$source" ] && exit 0
compiler="${CC:-}"
if [ -z "$compiler" ]; then
  for candidate in cc gcc clang; do
    if command -v "$candidate" >/dev/null 2>&1; then compiler="$candidate"; break; fi
  done
fi
if [ -z "$compiler" ]; then
  echo "hostdev: no C compiler (cc, gcc or clang): the sysfs reader runs in Node.js instead of $target" >&2
  exit 0
fi
mkdir -p dist/native
"$compiler" -O2 -std=c11 -Wall -Wextra -Werror -o "$target.tmp" "$source"
mv "$target.tmp" "$target"
