#!/usr/bin/env bash
# Installs the host packages the kernel rig needs, from Debian's archive, as root:
# qemu-system-x86 from bookworm-backports (QEMU >= 8 has igb), busybox-static, pciutils, cpio, kmod.
# Adds bookworm-backports to apt's sources when missing (same mirror as the configured bookworm).
# Quiet and fast when everything is already there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

qemu_has_igb() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 &&
    qemu-system-x86_64 -device help 2>/dev/null | grep -q 'name "igb"'
}
need=()
qemu_has_igb || need+=(qemu)
for tool in busybox:busybox-static lspci:pciutils ip:iproute2 cpio:cpio modprobe:kmod depmod:kmod xz:xz-utils zstd:zstd strip:binutils; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx poweroff || need+=(busybox-static)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "kernel rig: missing ${need[*]}; run as root (it installs them with apt-get)" >&2
  exit 1
fi

if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$2 !~ /security/ {print $2; exit}')
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || { echo "kernel rig: no Debian bookworm mirror in apt's sources" >&2; exit 1; }
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" > /etc/apt/sources.list.d/bookworm-backports.sources
  echo "kernel rig: added bookworm-backports ($mirror) to apt's sources"
fi
echo "kernel rig: installing ${need[*]} from Debian"
apt-get update -qq
pkgs=()
for p in "${need[@]}"; do [ "$p" = qemu ] || pkgs+=("$p"); done
[ ${#pkgs[@]} -gt 0 ] && apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
if [[ " ${need[*]} " == *" qemu "* ]]; then
  apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 >/dev/null
fi
qemu_has_igb || { echo "kernel rig: the installed QEMU has no igb device (needs QEMU >= 8 from bookworm-backports)" >&2; exit 1; }
echo "kernel rig: $(qemu-system-x86_64 --version | head -1)"
