#!/usr/bin/env bash
# Installs Debian's pciutils (lspci, the cross-check), libxml2-utils (xmllint, against libvirt's schemas), pci.ids (device names), a C compiler (the
# native sysfs reader, native/sysfs-batch.c), systemd (systemd-analyze verify of the units in
# systemd/, systemd-socket-activate) and curl (the daemon's second client) when missing, and QEMU
# (the real peer of the QMP hot-plug tests; the kernel rig's own install, so both use the same QEMU),
# python3-grpcio and protoc (a second gRPC stack against the kubelet device plugin).
# Needs root and apt-get; elsewhere it says what is missing and goes on.
set -uo pipefail
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    bash "$(dirname "$0")/../test/kernel/rig/host-deps.sh" || echo "note: installing QEMU failed; the QMP tests are skipped" >&2
  else
    echo "note: qemu-system-x86_64 is missing (install qemu-system-x86); the QMP tests are skipped" >&2
  fi
fi
# `udevadm verify` (the check of the claims' udev rules, test/deploy/boot-files.test.ts) came with
# systemd 254; Debian 12's udev is 252. The backports' udevadm is unpacked into .cache/udevadm, never
# installed: installing udev here would start udevd on this machine's real devices.
udevadm_cache="$(cd "$(dirname "$0")/.." && pwd)/.cache/udevadm"
if ! udevadm verify --help >/dev/null 2>&1 && [ ! -x "$udevadm_cache/bin/udevadm" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  (
    set -e
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cd "$work"
    apt-get download -qq udev/bookworm-backports libsystemd-shared/bookworm-backports >/dev/null 2>&1
    mkdir -p "$udevadm_cache.part"
    for deb in ./*.deb; do dpkg-deb -x "$deb" "$udevadm_cache.part"; done
    rm -rf "$udevadm_cache" && mv "$udevadm_cache.part" "$udevadm_cache"
  ) || echo "note: could not unpack udevadm 254 from bookworm-backports; the udevadm verify check is skipped" >&2
fi
# libvirt's own RelaxNG schemas (nodedev.rng for `show --xml`, domain.rng for the domain XML fixtures),
# as Debian's libvirt-common ships them: unpacked into .cache/libvirt-schemas, never installed.
schemas_cache="$(cd "$(dirname "$0")/.." && pwd)/.cache/libvirt-schemas"
if [ ! -f "$schemas_cache/usr/share/libvirt/schemas/nodedev.rng" ] && command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  (
    set -e
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cd "$work"
    # package lists not fetched yet (a fresh machine): fetched once, then asked again
    apt-get download -qq libvirt-common >/dev/null 2>&1 || { [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 && apt-get download -qq libvirt-common >/dev/null 2>&1; }
    mkdir -p "$schemas_cache.part"
    dpkg-deb -x ./libvirt-common_*.deb "$schemas_cache.part"
    rm -rf "$schemas_cache" && mv "$schemas_cache.part" "$schemas_cache"
  ) || echo "note: could not unpack libvirt-common's schemas; the libvirt schema checks are skipped" >&2
fi
missing=()
command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
command -v lspci >/dev/null 2>&1 || missing+=(pciutils)
[ -f /usr/share/misc/pci.ids ] || missing+=(pci.ids)
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || command -v clang >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# The device plugin's second gRPC peer: Python's grpcio with classes Debian's protoc generates.
/usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1 || missing+=(python3-grpcio python3-protobuf)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: missing ${missing[*]} (install them with apt-get); names and lspci cross-checks are skipped, and without a C compiler the native reader's tests fail" >&2
fi
exit 0
