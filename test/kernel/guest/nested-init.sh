#!/bin/sh
# /init of the nested guest (scenario 6): the VM that the in-guest QEMU boots with the igb VF assigned.
# It binds igbvf to the VF like a real VM would, says NESTED-READY on its serial port, and reports
# when the VF goes (the host's kernel asked QEMU for it, QEMU turned that into an ACPI unplug) or comes.
export PATH=/bin
/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
vf() { for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/device" 2>/dev/null)" = 0x10ca ] && { basename "$d"; return; }; done; echo none; }
seen=$(vf)
[ -f /igbvf.ko ] && insmod /igbvf.ko
sleep 1
drv=none
[ -e "/sys/bus/pci/devices/$seen/driver" ] && drv=$(basename "$(readlink "/sys/bus/pci/devices/$seen/driver")")
echo "NESTED-READY vf=$seen driver=$drv"
# a VF that appears (hot-plugged: scenario 15) is reported once its driver bound, or after 20 s without
while :; do
  now=$(vf)
  if [ "$now" != "$seen" ]; then
    if [ "$now" = none ]; then
      echo "NESTED-VF-GONE was=$seen now=$now"
    else
      drv=none
      for _ in $(seq 20); do
        [ -e "/sys/bus/pci/devices/$now/driver" ] && { drv=$(basename "$(readlink "/sys/bus/pci/devices/$now/driver")"); break; }
        sleep 1
      done
      echo "NESTED-VF-ADDED vf=$now driver=$drv"
    fi
    seen=$now
  fi
  sleep 1
done
