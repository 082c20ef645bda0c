#!/usr/bin/env bash
# Builds the kernel's mtty sample (samples/vfio-mdev/mtty.c: a virtual serial-port device that is an
# mdev parent) as a module for the guest's kernel, against Debian's linux-headers for that kernel and
# the sample's source from the matching linux-source package. Cached per kernel:
#   build-mtty.sh CACHE_DIR KVER DEB_VERSION     prints the path of CACHE_DIR/mtty/KVER/mtty.ko
# Exits non-zero (saying why on stderr) when it cannot: the rig then runs without it.
set -euo pipefail
CACHE=${1:?usage: build-mtty.sh CACHE_DIR KVER DEB_VERSION}
KVER=${2:?usage: build-mtty.sh CACHE_DIR KVER DEB_VERSION}
DEBVER=${3:?usage: build-mtty.sh CACHE_DIR KVER DEB_VERSION}
log() { echo "kernel rig: mtty: $*" >&2; }
OUT=$CACHE/mtty/$KVER
if [ -s "$OUT/mtty.ko" ]; then echo "$OUT/mtty.ko"; exit 0; fi
MM=$(echo "$KVER" | cut -d. -f1,2)   # 6.1.0-57-amd64 -> 6.1
HEADERS=/usr/src/linux-headers-$KVER
if [ ! -f "$HEADERS/Makefile" ]; then
  log "installing linux-headers-$KVER ($DEBVER)"
  apt-get install -y -qq --no-install-recommends "linux-headers-$KVER=$DEBVER" >&2 \
    || { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "linux-headers-$KVER=$DEBVER" >&2; }
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hostdev-mtty.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "extracting samples/vfio-mdev/mtty.c from linux-source-$MM ($DEBVER)"
(cd "$WORK" && apt-get download -qq -o APT::Sandbox::User=root "linux-source-$MM=$DEBVER" >&2)
mkdir -p "$WORK/build"
dpkg-deb --fsys-tarfile "$WORK"/linux-source-"$MM"_*.deb | tar -xO "./usr/src/linux-source-$MM.tar.xz" \
  | xz -dc | tar -xO "linux-source-$MM/samples/vfio-mdev/mtty.c" > "$WORK/build/mtty.c"
[ -s "$WORK/build/mtty.c" ] || { log "mtty.c not found in linux-source-$MM"; exit 1; }
echo 'obj-m := mtty.o' > "$WORK/build/Makefile"
make -s -C "$HEADERS" M="$WORK/build" modules >&2
mkdir -p "$OUT"
cp "$WORK/build/mtty.ko" "$OUT/mtty.ko.tmp" && mv "$OUT/mtty.ko.tmp" "$OUT/mtty.ko"
log "built $(modinfo -F vermagic "$OUT/mtty.ko")"
echo "$OUT/mtty.ko"
