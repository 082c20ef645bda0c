#!/bin/sh
# Installs hostdev's boot-time claim files (run as root from a checkout: deploy/boot/install.sh):
#   /etc/systemd/system/hostdev-claims.service           runs `hostdev claims apply` before basic.target
#   /etc/initramfs-tools/hooks/hostdev-claims            copies the claims and their stub modules in
#   /etc/initramfs-tools/scripts/init-top/hostdev-claims sets driver_override before udev in the initramfs
#   /etc/udev/rules.d/70-hostdev-claims.rules            written by `hostdev claims write-udev`
# then enables the unit and rebuilds the initramfs. DESTDIR=DIR installs the files under DIR only
# (a package build or a test): nothing is enabled, run or rebuilt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest="${DESTDIR:-}"
install -D -m 0644 "$here/hostdev-claims.service" "$dest/etc/systemd/system/hostdev-claims.service"
install -D -m 0755 "$here/initramfs-tools/hooks/hostdev-claims" "$dest/etc/initramfs-tools/hooks/hostdev-claims"
install -D -m 0755 "$here/initramfs-tools/scripts/init-top/hostdev-claims" "$dest/etc/initramfs-tools/scripts/init-top/hostdev-claims"
install -d -m 0755 "$dest/etc/hostdev/claims.d"
if [ -n "$dest" ]; then
	echo "installed under $dest (nothing enabled)"
	exit 0
fi
hostdev claims write-udev
if command -v udevadm >/dev/null 2>&1; then udevadm control --reload || true; fi
systemctl daemon-reload
systemctl enable hostdev-claims.service
if command -v update-initramfs >/dev/null 2>&1; then update-initramfs -u; fi
echo "installed; claims take effect from the next boot (hostdev claim also detaches at once)"
