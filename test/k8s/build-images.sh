#!/usr/bin/env bash
# Builds the two container images the real-cluster tests use, without a registry: a static `pause`
# (the pod sandbox) and a busybox (the test pods), each a docker-archive tar that `ctr images import`
# takes. Cached in /var/cache/hostdev-k8s/images ($HOSTDEV_K8S_CACHE/images); prints that directory.
set -euo pipefail
log() { echo "k8s images: $*" >&2; }
CACHE=${HOSTDEV_K8S_CACHE:-/var/cache/hostdev-k8s}
OUT=$CACHE/images
if [ -s "$OUT/pause.tar" ] && [ -s "$OUT/busybox.tar" ]; then echo "$OUT"; exit 0; fi
command -v cc >/dev/null || { log "no C compiler (the pause binary is built with cc -static)"; exit 1; }
BUSYBOX=/bin/busybox
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hostdev-k8s-images.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# archive NAME TAG ROOTFS ENTRYPOINT-JSON: one layer, a config named by its digest, a manifest.
archive() {
  local name=$1 tag=$2 rootfs=$3 entry=$4 dir=$WORK/$1
  mkdir -p "$dir"
  tar --numeric-owner --owner=0 --group=0 -C "$rootfs" -cf "$dir/layer.tar" .
  local diff; diff=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$entry" "$diff" > "$dir/config.json"
  local cfg; cfg=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
  mv "$dir/config.json" "$dir/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfg" "$tag" > "$dir/manifest.json"
  tar -C "$dir" -cf "$OUT/$name.tar.tmp" manifest.json "$cfg.json" layer.tar
  mv "$OUT/$name.tar.tmp" "$OUT/$name.tar"
}

# pause: sleeps until told to stop, reaping whatever the pod's namespace hands it.
mkdir -p "$WORK/pause-root"
cat > "$WORK/pause.c" <<'C'
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, stop);
  signal(SIGTERM, stop);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
C
cc -static -Os -o "$WORK/pause-root/pause" "$WORK/pause.c"
archive pause hostdev.test/pause:1 "$WORK/pause-root" '["/pause"]'

# busybox: the static binary and a link per applet.
applets=$("$BUSYBOX" --list 2>/dev/null || true)
if ! grep -qx sh <<<"$applets" || ldd "$BUSYBOX" >/dev/null 2>&1; then
  log "$BUSYBOX is not a static busybox (install busybox-static)"; exit 1
fi
mkdir -p "$WORK/busybox-root/bin" "$WORK/busybox-root/tmp"
cp "$BUSYBOX" "$WORK/busybox-root/bin/busybox"
for applet in $applets; do [ "$applet" = busybox ] || ln -s busybox "$WORK/busybox-root/bin/$applet"; done
archive busybox hostdev.test/busybox:1 "$WORK/busybox-root" '["/bin/sh"]'
log "built pause and busybox images into $OUT"
echo "$OUT"
