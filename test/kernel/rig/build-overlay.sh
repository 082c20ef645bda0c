#!/usr/bin/env bash
# Packs the project's side of the guest: /init, hostdev (dist/ + production node_modules with the
# better-sqlite3 addon) and the scenarios, as a small cpio archive appended to the cached base.
#   build-overlay.sh REPO OUT.cpio
set -euo pipefail
REPO=$(cd "${1:?usage: build-overlay.sh REPO OUT}" && pwd)
OUT=${2:?usage: build-overlay.sh REPO OUT}
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/hostdev-overlay.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

install -m 755 "$REPO/test/kernel/guest/init.sh" "$STAGE/init"
H=$STAGE/hostdev
mkdir -p "$H/test/kernel"
cp -a "$REPO/dist" "$REPO/package.json" "$H/"
cp -a "$REPO/test/kernel/scenarios" "$REPO/test/kernel/guest" "$H/test/kernel/"
# the boot-time claim scripts (scenario 12 runs the initramfs init-top script)
mkdir -p "$H/deploy" && cp -a "$REPO/deploy/boot" "$H/deploy/"
[ -f "$REPO/test/kernel/q35-guest.spec.json" ] && cp "$REPO/test/kernel/q35-guest.spec.json" "$H/test/kernel/"
# the nested guest's /init (scenario 6), appended in the guest to /nested/initrd-base.cpio
mkdir -p "$STAGE/nested-init/stage"
install -m 755 "$REPO/test/kernel/guest/nested-init.sh" "$STAGE/nested-init/stage/init"
(cd "$STAGE/nested-init/stage" && echo init | cpio -o -H newc --quiet) > "$H/test/kernel/nested-init.cpio"
rm -rf "$STAGE/nested-init"
# production dependencies only (no typescript/vitest), as npm resolves them
(cd "$REPO" && npm ls --omit=dev --all --parseable 2>/dev/null || true) | while read -r dir; do
  case $dir in "$REPO"/node_modules/*) ;; *) continue ;; esac
  # The Kubernetes API client (57 MB) serves only the kubelet plugin's DRA driver, which no guest runs.
  case $dir in "$REPO"/node_modules/@kubernetes/*) continue ;; esac
  rel=${dir#"$REPO"/}
  mkdir -p "$H/$(dirname "$rel")"
  [ -e "$H/$rel" ] || cp -a "$dir" "$H/$rel"
done
# the addon needs only its .node file: drop the sources and build intermediates
if [ -d "$H/node_modules/better-sqlite3" ]; then
  rm -rf "$H/node_modules/better-sqlite3"/{deps,src} "$H/node_modules/better-sqlite3/build/Release"/{obj,obj.target,.deps,test_extension.node,sqlite3.a}
  rm -rf "$H/node_modules/better-sqlite3/build"/{deps,*.mk,Makefile,config.gypi,*.Makefile}
fi
(cd "$STAGE" && find . -print0 | cpio --null -o -H newc --quiet) > "$OUT"
