#!/bin/bash
# Boots the demo kernel in QEMU and turns the run into an exit status: 0 only
# when the kernel printed "memshim demo: PASS" and left QEMU through
# isa-debug-exit with the pass code. A FAIL, a hang (timeout), a triple
# fault or a reset (QEMU exits 0 under -no-reboot) all fail.
#
#   scripts/boot.sh [--mem 256M] [--accel tcg|kvm] [--timeout SECONDS] [--quiet] kernel FILE.elf
#   scripts/boot.sh [...] iso FILE.iso
#
# kernel: QEMU's own Multiboot 1 loader (-kernel); iso: a GRUB ISO
# (Multiboot 2). --quiet prints one line per boot, and the serial log only
# when the boot fails.
set -uo pipefail

# The kernel writes 0x10 (pass) or 0x11 (fail) to port 0xf4; QEMU exits
# with (value << 1) | 1.
readonly EXIT_PASS=33 EXIT_FAIL=35

mem=256M accel=tcg timeout_s= quiet=0
while [ $# -gt 2 ]; do
    case $1 in
    --mem) mem=$2; shift 2 ;;
    --accel) accel=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || { sed -n '8,9p' "$0" >&2; exit 2; }
way=$1 image=$2
[ -f "$image" ] || { echo "boot.sh: $image not found" >&2; exit 2; }

case $way in
kernel) boot_args=(-kernel "$image") ;;
iso) boot_args=(-cdrom "$image" -boot d) ;;
*) echo "boot.sh: boot 'kernel' or 'iso', not '$way'" >&2; exit 2 ;;
esac
# KVM here runs nested and takes seconds to start (notes/boot.md).
case $accel in
tcg) accel_args=(-accel tcg) default_timeout=60 ;;
kvm) accel_args=(-accel kvm) default_timeout=120 ;;
*) echo "boot.sh: ACCEL must be tcg or kvm, not '$accel'" >&2; exit 2 ;;
esac
timeout_s=${timeout_s:-$default_timeout}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
qemu=(qemu-system-x86_64 "${accel_args[@]}" -m "$mem" "${boot_args[@]}"
    -display none -monitor none -serial stdio -no-reboot
    -device isa-debug-exit,iobase=0xf4,iosize=0x04)

start=$(date +%s%N)
if [ $quiet = 1 ]; then
    timeout --foreground -k 5 "$timeout_s" "${qemu[@]}" </dev/null >"$log" 2>&1
    status=$?
else
    timeout --foreground -k 5 "$timeout_s" "${qemu[@]}" </dev/null 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
fi
elapsed=$((($(date +%s%N) - start) / 1000000))
secs=$((elapsed / 1000)).$(printf %03d $((elapsed % 1000)))

what="$way MEM=$mem ACCEL=$accel"
if [ $status = $EXIT_PASS ] && grep -q '^memshim demo: PASS' "$log"; then
    echo "boot.sh: $what: PASS in $secs s"
    exit 0
fi
case $status in
$EXIT_FAIL) verdict="the kernel reported FAIL" ;;
124 | 137) verdict="hang: no verdict within $timeout_s s" ;;
0) verdict="QEMU stopped without a verdict: triple fault or reset" ;;
$EXIT_PASS) verdict="pass code without the PASS line" ;;
*) verdict="QEMU exited with status $status" ;;
esac
if [ $quiet = 1 ]; then
    echo "---- serial log ($what)"
    tail -n 150 "$log"
    echo "----"
fi
echo "boot.sh: $what: FAIL ($verdict) after $secs s"
exit 1
