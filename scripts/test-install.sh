#!/bin/bash
# make install into a temporary prefix, then C programs built with nothing
# but pkg-config: a host program (shared object, and -static with
# --static), the minimal kernel linked with memshim-kernel; then make
# uninstall must leave no file behind. Last line: N passed, N failed.
set -uo pipefail
cd "$(dirname "$0")/.."
prefix=$(mktemp -d "${TMPDIR:-/tmp}/memshim-prefix.XXXXXX")
work=$(mktemp -d)
trap 'rm -rf "$prefix" "$work"' EXIT
passed=0 failed=0
result() { # name status [detail]
    if [ "$2" = 0 ]; then echo "ok   $1"; passed=$((passed + 1)); else
        echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}

log=$(make --no-print-directory install PREFIX="$prefix" 2>&1)
result "make install PREFIX=$prefix" $? "$log"
for f in lib/libmemshim.a lib/libmemshim.so lib/libmemshim-kernel.a include/memshim.h \
    lib/pkgconfig/memshim.pc lib/pkgconfig/memshim-kernel.pc; do
    [ -f "$prefix/$f" ]; result "installed $f" $?
done
cmp -s "$prefix/lib/libmemshim-kernel.a" target/x86_64-unknown-none/release/libmemshim.a
result "libmemshim-kernel.a is the kernel archive" $?

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cat >"$work/prog.c" <<'C'
#include <memshim.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    struct memshim_stats before, after;
    memshim_get_stats(&before);
    char *p = malloc(1000);
    strcpy(p, "served by memshim");
    memshim_get_stats(&after);
    int ok = after.total_allocations > before.total_allocations && memshim_check() == 0;
    printf("%s: %s\n", p, ok ? "yes" : "no");
    free(p);
    return !ok;
}
C
# shellcheck disable=SC2046
out=$(cc -std=c11 -Wall -Wextra -Werror "$work/prog.c" $(pkg-config --cflags --libs memshim) -o "$work/prog-dyn" 2>&1 &&
    LD_LIBRARY_PATH=$prefix/lib "$work/prog-dyn" 2>&1)
result "cc prog.c \$(pkg-config --cflags --libs memshim), run: $out" $?
ldd "$work/prog-dyn" 2>/dev/null | grep -q "$prefix/lib/libmemshim.so" ||
    LD_LIBRARY_PATH=$prefix/lib ldd "$work/prog-dyn" | grep -q "$prefix/lib/libmemshim.so"
result "the dynamic program loads the installed libmemshim.so" $?
# shellcheck disable=SC2046
out=$(cc -std=c11 -Wall -Wextra -Werror -static "$work/prog.c" $(pkg-config --static --cflags --libs memshim) \
    -o "$work/prog-static" 2>&1 && "$work/prog-static" 2>&1)
result "cc -static prog.c \$(pkg-config --static --cflags --libs memshim), run: $out" $?

# The kernel archive through its own .pc: the minimal kernel, linked and booted.
k=kernel_demo/minimal
kflags=(-std=c11 -O2 -fno-pic -fno-pie -fno-stack-protector -mno-red-zone -mno-mmx -mno-sse -mno-sse2 -Wall -Wextra -Werror)
# shellcheck disable=SC2046
out=$(cc "${kflags[@]}" $(pkg-config --cflags memshim-kernel) -c $k/boot.S -o "$work/boot.o" &&
    cc "${kflags[@]}" $(pkg-config --cflags memshim-kernel) -c $k/kmain.c -o "$work/kmain.o" &&
    cc -nostdlib -static -Wl,-T,$k/minimal.ld -Wl,-z,max-page-size=4096 -Wl,--build-id=none \
        -o "$work/kernel.elf" "$work/boot.o" "$work/kmain.o" $(pkg-config --libs memshim-kernel) 2>&1)
result "the minimal kernel built with \$(pkg-config --cflags --libs memshim-kernel)" $? "$out"
if [ -f "$work/kernel.elf" ]; then
    scripts/boot.sh --quiet --mem 128M kernel "$work/kernel.elf"
    result "... and boots" $?
fi

log=$(make --no-print-directory uninstall PREFIX="$prefix" 2>&1)
result "make uninstall PREFIX=$prefix" $? "$log"
left=$(find "$prefix" -type f)
[ -z "$left" ]; result "uninstall leaves no file behind" $? "$left"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
