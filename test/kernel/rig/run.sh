#!/usr/bin/env bash
# shellcheck disable=SC2054  # the commas in QEMU -device arguments are intended
# The real-kernel suite: a Debian kernel under QEMU (TCG, q35 + emulated Intel IOMMU) with emulated
# PCIe devices (e1000e, igb with SR-IOV, nvme, edu), hostdev's CLI run inside on the guest's real /sys.
# Nothing here writes to the host's /sys. Needs root (apt-get) on the first run.
#   run.sh [--full] [--only s1,s2] [--keep]
# (--only naming s18 adds a USB controller and keyboard to the guest, and an outer QMP socket)
# Environment: HOSTDEV_KTEST_CACHE (default /var/cache/hostdev-kernel-rig when it can be made, shared by
#   every clone on the machine, else REPO/.cache/kernel-rig), HOSTDEV_KTEST_TIMEOUT (s),
#   HOSTDEV_KTEST_MEM (MiB), HOSTDEV_KTEST_CPU (QEMU -cpu model, default max),
#   HOSTDEV_KTEST_QEMU (the program that boots the guest, default qemu-system-x86_64 from PATH),
#   HOSTDEV_KTEST_OUT (where this run's initrd, serial log and transcripts go; default REPO/.cache/kernel-rig),
#   HOSTDEV_KTEST_DMESG=1 (tail of the guest's dmesg in the log),
#   UPDATE_GOLDEN=1 (copy the transcripts to test/kernel/golden/ for the simulator cross-check).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
RIG=$REPO/test/kernel/rig
# The kernel and the base initramfs (a minute to build) outlive the clone: CI starts from a fresh one.
SHARED=/var/cache/hostdev-kernel-rig
if [ -z "${HOSTDEV_KTEST_CACHE:-}" ] && { [ -w "$SHARED" ] || mkdir -p "$SHARED" 2>/dev/null; }; then CACHE=$SHARED; else CACHE=${HOSTDEV_KTEST_CACHE:-$REPO/.cache/kernel-rig}; fi
FULL=0
ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --full) FULL=1 ;;
    --only) ONLY=$2; shift ;;
    *) echo "usage: run.sh [--full] [--only s1,s2]" >&2; exit 2 ;;
  esac
  shift
done
TIMEOUT=${HOSTDEV_KTEST_TIMEOUT:-$([ "$FULL" = 1 ] && echo 900 || echo 600)}
MEM=${HOSTDEV_KTEST_MEM:-2048}
CPU=${HOSTDEV_KTEST_CPU:-max}
QEMU=${HOSTDEV_KTEST_QEMU:-qemu-system-x86_64}
OUT=${HOSTDEV_KTEST_OUT:-$REPO/.cache/kernel-rig}
t0=$(date +%s)
phase() { echo "kernel rig: $1 ($(( $(date +%s) - t0 )) s)"; }

bash "$RIG/host-deps.sh"
bash "$REPO/scripts/ensure-built.sh"
mkdir -p "$CACHE" "$OUT"
# One build of the shared base at a time (another clone's run may be building it).
base_vars=$(flock "$CACHE/.lock" bash "$RIG/build-base.sh" "$CACHE")   # a failure stops here, not at an unset variable
eval "$base_vars"   # VMLINUZ BASE NESTED KVER KPKG
phase "base ready: $KPKG, $(du -h "$BASE" | cut -f1) cached"
mkdir -p "$OUT"
bash "$RIG/build-overlay.sh" "$REPO" "$OUT/overlay.cpio"
parts=("$BASE" "$OUT/overlay.cpio")
[ "$FULL" = 1 ] && parts+=("$NESTED")
# the kernel's mtty sample as a module for this kernel (scenario 17; built once per kernel, then cached);
# without it that scenario is skipped and says why
DEBVER=$(dpkg-deb -f "$(ls "$CACHE/kernel/${KPKG}"_*.deb | head -1)" Version 2>/dev/null || true)
if MTTY=$(flock "$CACHE/.lock" bash "$RIG/build-mtty.sh" "$CACHE" "$KVER" "$DEBVER"); then
  STAGE=$(mktemp -d "${TMPDIR:-/tmp}/hostdev-mtty-stage.XXXXXX")
  mkdir -p "$STAGE/lib/modules/extra" && cp "$MTTY" "$STAGE/lib/modules/extra/mtty.ko"
  (cd "$STAGE" && find . -mindepth 1 -print0 | cpio --null -o -H newc --quiet) > "$OUT/mtty.cpio"
  rm -rf "$STAGE"
  parts+=("$OUT/mtty.cpio")
else
  echo "kernel rig: the mtty module could not be built for $KVER; scenario s17 will be skipped"
fi
cat "${parts[@]}" > "$OUT/initrd.cpio"
phase "initramfs ready"

# no_timer_check: under a loaded host the IO-APIC timer check can fail and panic the guest at boot
APPEND="console=ttyS0 intel_iommu=on iommu=pt panic=-1 oops=panic quiet no_timer_check"
[ -n "$ONLY" ] && APPEND="$APPEND hostdev_scenarios=$ONLY"
[ "$FULL" = 1 ] && APPEND="$APPEND hostdev_full=1"
[ "${HOSTDEV_KTEST_DMESG:-0}" = 1 ] && APPEND="$APPEND hostdev_dmesg=1"
SERIAL=$OUT/serial.log
# Scenario 18 (USB) needs a USB device the guest can lose: an xHCI controller with a keyboard, and the
# outer QEMU's QMP socket, through which outer-monitor.mjs carries out the guest's HOSTDEV-KTEST-OUTER
# requests. Only when s18 is selected: the controller is a PCI function the other scenarios' lists would show.
OUTER=()
case ",$ONLY," in *,s18*) OUTER=(-device qemu-xhci,id=xhci -device usb-kbd,bus=xhci.0,id=ukbd -qmp "unix:$OUT/outer-qmp.sock,server=on,wait=off") ;; esac
# Two namespaces on the nvme controller (scenario s19, libvirt's NVMe disk roundtrip): small raw drives,
# fresh each run, 1 MiB and 2 MiB (2048 and 4096 sectors of 512 bytes) so the two are told apart.
NVME_NS=()
for ns in 1 2; do
  truncate -s 0 "$OUT/nvme-ns$ns.raw" && truncate -s "${ns}M" "$OUT/nvme-ns$ns.raw"
  NVME_NS+=(-drive "file=$OUT/nvme-ns$ns.raw,if=none,id=nvmens$ns,format=raw" -device "nvme-ns,drive=nvmens$ns,bus=nvme0,nsid=$ns")
done
# TCG only: /dev/kvm may exist on these machines without usable VMX/SVM
boot() {
  timeout -k 5 "$TIMEOUT" "$QEMU" \
    -nodefaults -display none -no-reboot \
    -M q35 -accel tcg -cpu "$CPU" -smp 2 -m "$MEM" \
    -device intel-iommu,intremap=on \
    -device pcie-root-port,id=rp1,chassis=1,slot=1 -device e1000e,bus=rp1 \
    -device pcie-root-port,id=rp2,chassis=2,slot=2 -device nvme-subsys,id=nvmesubsys0 \
    -device nvme,id=nvme0,bus=rp2,serial=hostdevktest,subsys=nvmesubsys0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2 \
    "${NVME_NS[@]}" \
    -device pcie-root-port,id=rp3,chassis=3,slot=3 -device igb,bus=rp3 \
    -device edu "${OUTER[@]}" \
    -kernel "$VMLINUZ" -initrd "$INITRD" -append "$APPEND" \
    -serial "file:$SERIAL" 2> "$OUT/qemu.stderr"
}
INITRD=$OUT/initrd.cpio
# QEMU's multi-threaded TCG has rare races of its own that abort the emulator (seen in CI:
# "iotlb_to_section: Assertion `section_index < d->map.sections_nb' failed" 8 s into the boot, exit 134).
# Such a crash says nothing about hostdev or the guest kernel, so the guest is booted once more from scratch
# (its state lives in its RAM); a second crash, a timeout or any guest failure is reported as it is.
rm -rf "$OUT/transcripts"
# Boots the guest (once more if QEMU itself crashed) and reads its results; sets rc.
boot_and_parse() {
  attempt=1
  while :; do
    rm -f "$SERIAL"
    set +e
    monitor=
    if [ ${#OUTER[@]} -gt 0 ]; then node "$RIG/outer-monitor.mjs" "$SERIAL" "$OUT/outer-qmp.sock" & monitor=$!; fi
    boot
    qrc=$?
    [ -n "$monitor" ] && { kill "$monitor"; wait "$monitor"; } 2>/dev/null
    set -e
    phase "guest powered off (qemu exit $qrc)"
    [ -s "$OUT/qemu.stderr" ] && sed 's/^/qemu: /' "$OUT/qemu.stderr"
    case $qrc in
      134|139) ;;   # SIGABRT or SIGSEGV in QEMU itself
      *) break ;;
    esac
    [ "$attempt" -ge 2 ] && break
    attempt=$((attempt + 1))
    echo "kernel rig: QEMU itself crashed (exit $qrc, signal $((qrc - 128))); its guest's results are discarded and the guest is booted again (attempt $attempt of 2)"
    grep -av '^HOSTDEV-KTEST' "$SERIAL" 2>/dev/null | grep -aE '^(===|---)' | tr -d '\r' | sed 's/^/kernel rig: crashed attempt: /' || true
  done
  [ $qrc = 124 ] && echo "kernel rig: TIMEOUT after ${TIMEOUT} s"
  # the guest's own narrative (scenario steps and checks), without the machine lines
  grep -av "^HOSTDEV-KTEST" "$SERIAL" 2>/dev/null | grep -aE '^(===|---|  )' | tr -d '\r' || true
  set +e
  node "$RIG/parse-serial.mjs" "$SERIAL" "$OUT/transcripts"
  rc=$?
  set -e
}
boot_and_parse
# A scenario that carried files (HOSTDEV-KTEST-CARRY: a claim made on this boot) is followed by a
# second boot of the same image with those files in its initramfs (what a persistent disk would keep),
# running the scenarios it named; the results of both boots count.
if grep -aq 'HOSTDEV-KTEST-CARRY ' "$SERIAL" 2>/dev/null; then
  first_rc=$rc
  CARRY=$(mktemp -d "${TMPDIR:-/tmp}/hostdev-carry.XXXXXX")
  then_scenarios=$(node -e '
    const fs = require("fs"), path = require("path");
    const [serial, dir] = process.argv.slice(1);
    const then = new Set();
    for (const raw of fs.readFileSync(serial, "utf8").split("\n")) {
      const at = raw.indexOf("HOSTDEV-KTEST-CARRY ");
      if (at < 0) continue;
      const c = JSON.parse(raw.slice(at + "HOSTDEV-KTEST-CARRY ".length).replace(/\r$/, ""));
      const file = path.join(dir, c.path);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, Buffer.from(c.data, "base64"), { mode: c.mode });
      then.add(c.then);
    }
    process.stdout.write([...then].join(","));
  ' "$SERIAL" "$CARRY")
  (cd "$CARRY" && find . -mindepth 1 -print0 | cpio --null -o -H newc --quiet) > "$OUT/carry.cpio"
  rm -rf "$CARRY"
  cat "$OUT/initrd.cpio" "$OUT/carry.cpio" > "$OUT/initrd-boot2.cpio"
  INITRD=$OUT/initrd-boot2.cpio
  APPEND="$(echo "$APPEND" | sed 's/ hostdev_scenarios=[^ ]*//') hostdev_boot=2 hostdev_scenarios=$then_scenarios"
  cp "$SERIAL" "$OUT/serial-boot1.log"
  phase "second boot for $then_scenarios"
  boot_and_parse
  [ "$first_rc" = 0 ] || rc=$first_rc
fi
if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then   # the transcripts of the scenarios that passed
  mkdir -p "$REPO/test/kernel/golden"
  for f in "$OUT/transcripts"/*.json; do
    grep -q '"status": "pass"' "$f" && cp "$f" "$REPO/test/kernel/golden/"
  done
  echo "kernel rig: transcripts copied to test/kernel/golden/"
fi
echo "kernel tests took $(( $(date +%s) - t0 )) s"
exit $rc
