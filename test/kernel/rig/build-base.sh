#!/usr/bin/env bash
# Builds (or reuses) the heavy, cached part of the guest: the Debian kernel and a base initramfs with
# busybox, kernel modules, node, pciutils, iproute2 and qemu-system-x86_64 (for the VM inside the guest).
# The kernel package is downloaded and unpacked, never installed: nothing on the host changes.
#   build-base.sh CACHE_DIR            prints KEY=VALUE lines: VMLINUZ, BASE (cpio), KVER, NESTED (cpio)
# The base is keyed by everything that goes into it; a changed key rebuilds it (old ones are deleted).
set -euo pipefail
CACHE=${1:?usage: build-base.sh CACHE_DIR}
mkdir -p "$CACHE/kernel"
CACHE=$(cd "$CACHE" && pwd)
log() { echo "kernel rig: $*" >&2; }

# ---- the kernel: linux-image-amd64 (bookworm), resolved at run time (old ABI packages leave the archive)
resolve_kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
KPKG=$(resolve_kpkg)
if [ -z "$KPKG" ]; then apt-get update -qq; KPKG=$(resolve_kpkg); fi
[ -n "$KPKG" ] || { log "cannot resolve linux-image-amd64 from apt"; exit 1; }
KDIR=$CACHE/kernel/$KPKG
if [ ! -d "$KDIR/boot" ]; then
  log "downloading $KPKG"
  rm -rf "$CACHE/kernel"/*   # keep one kernel only
  mkdir -p "$KDIR"
  (cd "$CACHE/kernel" && apt-get download -qq -o APT::Sandbox::User=root "$KPKG")
  dpkg-deb -x "$CACHE/kernel/${KPKG}"_*.deb "$KDIR.tmp"
  rm -rf "$KDIR"; mv "$KDIR.tmp" "$KDIR"
fi
KVER=$(basename "$(ls -d "$KDIR"/lib/modules/*)")
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
[ -f "$KDIR/lib/modules/$KVER/modules.dep" ] || depmod -b "$KDIR" "$KVER"

# ---- the key: this script, the kernel, the host binaries copied in
NODE=$(readlink -f "$(command -v node)")
QEMU=$(readlink -f "$(command -v qemu-system-x86_64)")
key=$( {
  cat "${BASH_SOURCE[0]}"
  echo "$KPKG"
  sha256sum "$NODE" "$QEMU" /bin/busybox "$(readlink -f "$(command -v lspci)")" "$(readlink -f "$(command -v ip)")"
} | sha256sum | cut -c1-16)
BASE=$CACHE/base-$key.cpio
NESTED=$CACHE/nested-$key.cpio
emit() { printf 'VMLINUZ=%s\nBASE=%s\nNESTED=%s\nKVER=%s\nKPKG=%s\n' "$VMLINUZ" "$BASE" "$NESTED" "$KVER" "$KPKG"; }
if [ -s "$BASE" ] && [ -s "$NESTED" ]; then emit; exit 0; fi

log "building the base initramfs (key $key)"
rm -f "$CACHE"/base-*.cpio "$CACHE"/nested-*.cpio
ROOT=$CACHE/base-root
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,var/lib,lib/modules/"$KVER"}
cp /bin/busybox "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"

copy_lib_deps() { # copy_lib_deps <elf>: the shared libraries ldd resolves, at the same paths
  ldd "$1" 2>/dev/null | awk '/=> \// {print $3} /^\t\/[^ ]+ \(/ {print $1}' | while read -r lib; do
    [ -e "$ROOT$lib" ] && continue
    mkdir -p "$ROOT$(dirname "$lib")"
    cp -L "$lib" "$ROOT$lib"
  done
}
copy_bin() { # copy_bin <path-in-guest> <host-binary>
  mkdir -p "$ROOT$(dirname "$1")"
  strip --strip-debug -o "$ROOT$1" "$2" 2>/dev/null || cp "$2" "$ROOT$1"
  copy_lib_deps "$2"
}

# kernel modules and their dependencies, decompressed (busybox modprobe wants plain .ko)
# mdev: the mediated-device core the mtty sample (scenario 17, built by build-mtty.sh) plugs into;
# xhci_pci: the USB controller scenario 18 has the outer QEMU add (loaded by that scenario only)
MODULES="e1000e igb igbvf nvme vfio vfio_pci vfio_iommu_type1 ahci i2c_i801 lpc_ich mdev xhci_pci"
for m in $MODULES; do
  modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" 2>/dev/null || log "module $m not found in $KPKG"
done | awk '$1 == "insmod" {print $2}' | sort -u | while read -r ko; do
  rel=${ko#"$KDIR"}
  mkdir -p "$ROOT$(dirname "$rel")"
  case $ko in
    *.ko.xz)  xz -dc "$ko" > "$ROOT${rel%.xz}" ;;
    *.ko.zst) zstd -qdc "$ko" > "$ROOT${rel%.zst}" ;;
    *.ko.gz)  gzip -dc "$ko" > "$ROOT${rel%.gz}" ;;
    *)        cp "$ko" "$ROOT$rel" ;;
  esac
done
cp "$KDIR/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$ROOT/lib/modules/$KVER/"
depmod -b "$ROOT" "$KVER"

copy_bin /usr/bin/node "$NODE"
# kmod's modprobe, as on a Debian host: it honours softdeps (vfio -> vfio_iommu_type1), busybox's does not
copy_bin /usr/bin/kmod "$(readlink -f "$(command -v kmod)")"
for t in modprobe insmod rmmod lsmod modinfo depmod; do ln -s ../bin/kmod "$ROOT/usr/sbin/$t"; done
copy_bin /usr/bin/lspci "$(readlink -f "$(command -v lspci)")"
copy_bin /usr/sbin/ip "$(readlink -f "$(command -v ip)")"
for ids in /usr/share/misc/pci.ids /usr/share/hwdata/pci.ids; do
  [ -e "$ids" ] && { mkdir -p "$ROOT$(dirname "$ids")"; cp -L "$ids" "$ROOT$ids"; }
done
# QEMU inside the guest: binary, libraries, and the firmware it opens for '-M q35 -nodefaults'
mkdir -p "$ROOT/usr/bin"; cp "$QEMU" "$ROOT/usr/bin/qemu-system-x86_64"; copy_lib_deps "$QEMU"
for f in /usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin /usr/share/qemu/linuxboot_dma.bin; do
  mkdir -p "$ROOT$(dirname "$f")"; cp -L "$f" "$ROOT$f"
done
# usb-host (scenario 18) is a loadable QEMU module in Debian's build, with libusb
for f in /usr/lib/x86_64-linux-gnu/qemu/hw-usb-host.so; do
  [ -e "$f" ] || { log "no $f: scenario s18's usb-host will be missing"; continue; }
  mkdir -p "$ROOT$(dirname "$f")"; cp -L "$f" "$ROOT$f"; copy_lib_deps "$f"
done

(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet) > "$BASE.tmp"
mv "$BASE.tmp" "$BASE"

# the nested guest for scenario 6 (test:kernel:full), as an archive that lands under /nested in the
# guest: its kernel and its initramfs (busybox + igbvf; /init comes from the overlay, see build-overlay.sh)
NROOT=$CACHE/nested-root
rm -rf "$NROOT"; mkdir -p "$NROOT/nested" "$NROOT/initrd"/{bin,dev,proc,sys}
cp "$VMLINUZ" "$NROOT/nested/vmlinuz"
cp /bin/busybox "$NROOT/initrd/bin/busybox"; ln -s busybox "$NROOT/initrd/bin/sh"
find "$KDIR/lib/modules/$KVER" -name 'igbvf.ko*' | head -1 | while read -r ko; do
  case $ko in *.xz) xz -dc "$ko" ;; *.zst) zstd -qdc "$ko" ;; *) cat "$ko" ;; esac > "$NROOT/initrd/igbvf.ko"
done
(cd "$NROOT/initrd" && find . -print0 | cpio --null -o -H newc --quiet) > "$NROOT/nested/initrd-base.cpio"
rm -rf "$NROOT/initrd"
(cd "$NROOT" && find . -print0 | cpio --null -o -H newc --quiet) > "$NESTED.tmp"
mv "$NESTED.tmp" "$NESTED"
rm -rf "$ROOT" "$NROOT"
log "base initramfs $(du -h "$BASE" | cut -f1), nested parts $(du -h "$NESTED" | cut -f1)"
emit
