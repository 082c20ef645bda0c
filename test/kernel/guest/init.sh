#!/bin/sh
# /init of the test guest (busybox ash): mounts, loads the host drivers, runs the kernel scenarios
# with hostdev's own CLI on the guest's real /sys, and powers off. The host reads the serial log:
# HOSTDEV-KTEST lines per scenario, then HOSTDEV-KTEST-RESULT.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /var/lib /bin /sbin /usr/bin /usr/sbin
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
/bin/busybox --install -s
# Debian's lspci and ip come before busybox's applets of the same names
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
echo 1 > /proc/sys/kernel/printk   # keep kernel messages off the console: the result lines stay whole
param() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
up() { cut -d' ' -f1 /proc/uptime; }

echo "=== guest T+$(up)s: $(uname -r), $(nproc) vCPUs, $(free -m | awk '/Mem:/ {print $2}') MiB"
# The rig's second boot (hostdev_boot=2) carries claims made on the first one (/etc/hostdev/claims.d):
# as Debian's initramfs does, the init-top script sets driver_override before any driver loads, and
# the stub (the hook's force_load) is loaded before the host drivers.
boot=$(param hostdev_boot)
export HOSTDEV_KTEST_BOOT="${boot:-1}"
if [ "$HOSTDEV_KTEST_BOOT" = 2 ]; then
  sh /hostdev/deploy/boot/initramfs-tools/scripts/init-top/hostdev-claims
  modprobe vfio_pci
fi
# the host drivers; vfio-pci is left to hostdev (its kernel port runs modprobe when the driver is missing)
for m in e1000e igb igbvf nvme ahci i2c_i801 lpc_ich; do modprobe "$m" || echo "modprobe $m failed"; done
if [ "$HOSTDEV_KTEST_BOOT" = 2 ]; then
  for d in /sys/bus/pci/devices/*; do
    [ "$(cat "$d/vendor"):$(cat "$d/device")" = 0x8086:0x10d3 ] && basename "$(readlink "$d/driver" 2>/dev/null || echo none)" > /run/hostdev-ktest-boot2-driver
  done
fi
[ "$(param hostdev_preload_vfio)" = 1 ] && modprobe vfio_pci
sleep 1
echo "=== guest T+$(up)s: drivers loaded"
ip link set lo up 2>/dev/null

# extra V8 flags for hostdev's processes (hostdev_node_flags=--a,--b); scenario s9 compares some:
# on a quiet host none beat the defaults under TCG (about 3 s per CLI call either way)
export HOSTDEV_KTEST_NODE_FLAGS="$(param hostdev_node_flags | tr , ' ')"
set -- --mode kernel --bin /hostdev/dist/cli/bin.js
only=$(param hostdev_scenarios)
[ -n "$only" ] && set -- "$@" --only "$only"
[ "$(param hostdev_full)" = 1 ] && set -- "$@" --full
node /hostdev/test/kernel/scenarios/run.mjs "$@"
echo "=== guest T+$(up)s: scenarios done (exit $?)"
if [ "$(param hostdev_dmesg)" = 1 ]; then dmesg | tail -80 | sed 's/^/dmesg: /'; fi
sync
poweroff -f
echo o > /proc/sysrq-trigger
sleep 10
