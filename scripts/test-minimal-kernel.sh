#!/bin/bash
# Links kernel_demo/minimal/ (a kernel written from the README alone) with
# a deliberately minimal linker script — .text .rodata .data .bss, the
# Multiboot load range ending after .data — and boots it in QEMU:
#   gcc + GNU ld, clang + ld.lld, and gcc + GNU ld as a higher-half kernel
#   (linked at 0xffffffff80100000, minimal-high.ld).
# Each link uses the README's link line and must produce no .got, .plt or
# run-time relocation section; each boot must print PASS. Last line:
# N passed, N failed.
#
#   scripts/test-minimal-kernel.sh [--accel tcg|kvm]
set -uo pipefail
cd "$(dirname "$0")/.."
accel=tcg
[ "${1:-}" = --accel ] && accel=$2
KERNEL_LIB=target/x86_64-unknown-none/release/libmemshim.a
SRC=kernel_demo/minimal
OUT=target/kernel_minimal
mkdir -p "$OUT"
CFLAGS=(-std=c11 -O2 -ffreestanding -fno-pic -fno-pie -fno-stack-protector -mno-red-zone
    -mno-mmx -mno-sse -mno-sse2 -Wall -Wextra -Werror -Iinclude)
# The README's link line, with the script swapped in.
LDFLAGS=(-nostdlib -static -Wl,-z,max-page-size=4096 -Wl,--build-id=none)

passed=0 failed=0
result() { # name status [detail]
    if [ "$2" = 0 ]; then echo "ok   $1"; passed=$((passed + 1)); else
        echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}

# variant CC LINKER-FLAG SCRIPT DEFINES...
variant() {
    local name=$1 cc=$2 fuse=$3 script=$4; shift 4
    local dir=$OUT/$name log
    mkdir -p "$dir"
    if ! log=$( { $cc "${CFLAGS[@]}" "$@" -c $SRC/boot.S -o "$dir/boot.o" &&
        $cc "${CFLAGS[@]}" "$@" -c $SRC/kmain.c -o "$dir/kmain.o" &&
        $cc $fuse "${LDFLAGS[@]}" -Wl,-T,$SRC/$script -o "$dir/kernel.elf" \
            "$dir/boot.o" "$dir/kmain.o" "$KERNEL_LIB"; } 2>&1); then
        result "$name: build and link" 1 "$log"
        return
    fi
    # A warning is a failure too: a clean link says nothing.
    [ -z "$log" ]; result "$name: links with $script, no warnings" $? "$log"
    local extra
    extra=$(readelf -SW "$dir/kernel.elf" | grep -oE '\.(got|got\.plt|plt|iplt|igot\.plt|rela\.[a-z.]*|dynamic)\b' | sort -u | tr '\n' ' ')
    [ -z "$extra" ]; result "$name: no GOT, PLT or run-time relocations" $? "$extra"
    scripts/boot.sh --quiet --mem 256M --accel "$accel" kernel "$dir/kernel.elf"
    result "$name: boots and passes" $?
}

scripts/ensure-tools.sh qemu clang || exit 1
variant gcc-ld gcc "" minimal.ld
variant clang-lld clang -fuse-ld=lld minimal.ld
variant gcc-ld-higher-half gcc "" minimal-high.ld -DHIGHER_HALF -mcmodel=kernel
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
