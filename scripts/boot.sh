#!/bin/bash
# Boots the demo kernel in QEMU and turns the run into an exit status: 0 only
# when the kernel printed "memshim demo: PASS" and left QEMU through
# isa-debug-exit with the pass code. A FAIL, a hang (timeout), a triple
# fault or a reset (QEMU exits 0 under -no-reboot) all fail.
#
#   scripts/boot.sh [--mem 256M] [--smp N] [--accel tcg|kvm] [--timeout SECONDS] [--quiet [--figures]] kernel FILE.elf
#   scripts/boot.sh [...] iso FILE.iso
#
# kernel: QEMU's own Multiboot 1 loader (-kernel); iso: a GRUB ISO
# (Multiboot 2). --smp gives the machine N CPUs; with software emulation
# they then run on host threads of their own (-accel tcg,thread=multi), so
# they really run at the same time on a multi-core host. --quiet prints one
# line per boot, and the serial log only when the boot fails; --figures adds
# the log's figures (its lines indented by five spaces) to a passing boot.
set -uo pipefail

# The kernel writes 0x10 (pass) or 0x11 (fail) to port 0xf4; QEMU exits
# with (value << 1) | 1.
readonly EXIT_PASS=33 EXIT_FAIL=35

mem=256M smp=1 accel=tcg timeout_s= quiet=0 figures=0
while [ $# -gt 2 ]; do
    case $1 in
    --mem) mem=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --accel) accel=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    --figures) figures=1; shift ;;
    *) break ;;
    esac
done
[ $# -eq 2 ] || { sed -n '7,8p' "$0" >&2; exit 2; }
case $smp in
[1-9] | 1[0-6]) ;;
*) echo "boot.sh: SMP must be 1 to 16 CPUs, not '$smp'" >&2; exit 2 ;;
esac
way=$1 image=$2
[ -f "$image" ] || { echo "boot.sh: $image not found" >&2; exit 2; }

case $way in
kernel) boot_args=(-kernel "$image") ;;
iso) boot_args=(-cdrom "$image" -boot d) ;;
*) echo "boot.sh: boot 'kernel' or 'iso', not '$way'" >&2; exit 2 ;;
esac
# KVM here runs nested and takes seconds to start. Several emulated CPUs
# share the host's cores (and their run does more), hence more time.
case $accel in
tcg) accel_args=(-accel tcg) default_timeout=60 ;;
kvm) accel_args=(-accel kvm) default_timeout=120 ;;
*) echo "boot.sh: ACCEL must be tcg or kvm, not '$accel'" >&2; exit 2 ;;
esac
if [ "$smp" -gt 1 ]; then
    [ "$accel" = tcg ] && accel_args=(-accel tcg,thread=multi)
    default_timeout=$((default_timeout * 2))
fi
timeout_s=${timeout_s:-$default_timeout}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
qemu=(qemu-system-x86_64 "${accel_args[@]}" -smp "$smp" -m "$mem" "${boot_args[@]}"
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

what="$way MEM=$mem SMP=$smp ACCEL=$accel"
if [ $status = $EXIT_PASS ] && grep -q '^memshim demo: PASS' "$log"; then
    [ $quiet = 1 ] && [ $figures = 1 ] && grep '^     ' "$log"
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
