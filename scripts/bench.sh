#!/usr/bin/env bash
# Runs the benchmarks of bench/: all of them, or the ones named (npm run bench -- list-vs-lspci).
# Each prints its figures; none is a pass/fail test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system-deps.sh
bash scripts/ensure-built.sh
# Compiled next to the type-check output (dist-check/, ignored by git); a type error is reported, not fatal.
npx tsc -p tsconfig.bench.json || echo "bench: type errors above; running the emitted code anyway" >&2
# A word starting with -- (and the word after it, its value) belongs to the benchmark named before it:
# npm run bench -- daemon-soak --minutes 10
names=()
declare -A extra=()
last=""
while [ $# -gt 0 ]; do
  case "$1" in
    --*)
      if [ -z "$last" ]; then echo "bench: $1 comes before any benchmark name" >&2; exit 2; fi
      extra[$last]+=" $1"
      if [ $# -gt 1 ] && [[ "$2" != --* ]]; then extra[$last]+=" $2"; shift; fi
      ;;
    *) names+=("$1"); last="${1%.ts}" ;;
  esac
  shift
done
if [ ${#names[@]} -eq 0 ]; then
  for file in bench/*.ts; do
    name="$(basename "$file" .ts)"
    # Modules the benchmarks share are not benchmarks.
    case "$name" in *-support|vf-host) continue ;; esac
    names+=("$name")
  done
fi
for name in "${names[@]}"; do
  name="${name%.ts}"
  if [ ! -f "bench/$name.ts" ]; then
    echo "bench: no benchmark named $name (have: $(cd bench && ls *.ts | sed 's/\.ts$//' | tr '\n' ' '))" >&2
    exit 2
  fi
  echo "== $name"
  # shellcheck disable=SC2086
  node "dist-check/bench/$name.js" ${extra[$name]:-}
done
