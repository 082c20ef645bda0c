#!/usr/bin/env bash
# Runs the benchmarks of bench/: all of them, or the ones named (npm run bench -- list-vs-lspci).
# Each prints its figures; none is a pass/fail test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system-deps.sh
bash scripts/ensure-built.sh
# Compiled next to the type-check output (dist-check/, ignored by git); a type error is reported, not fatal.
npx tsc -p tsconfig.bench.json || echo "bench: type errors above; running the emitted code anyway" >&2
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for file in bench/*.ts; do names+=("$(basename "$file" .ts)"); done
fi
for name in "${names[@]}"; do
  name="${name%.ts}"
  if [ ! -f "bench/$name.ts" ]; then
    echo "bench: no benchmark named $name (have: $(cd bench && ls *.ts | sed 's/\.ts$//' | tr '\n' ' '))" >&2
    exit 2
  fi
  echo "== $name"
  node "dist-check/bench/$name.js"
done
