#!/bin/sh
# Turns rustc's staticlib (memshim's object + core + compiler_builtins members)
# into an archive of ONE object that exports exactly memshim's C symbols.
#
#   scripts/finish-archive.sh [--kernel] target/<triple>/release/libmemshim.a
#
# Why: rustc's archive also exports compiler_builtins' libm and helper
# symbols (sqrt, fmod, __udivti3, and weak mem* on x86_64-unknown-none);
# linked ahead of libc they would replace the program's own. Here the whole
# archive is linked into one relocatable object (sections no export reaches
# are dropped), every symbol that is not one of memshim's C exports is made
# local, and the archive is rewritten with that object alone. One object also
# means ld can never take half of memshim and half of another allocator.
# Idempotent: an archive already finished is left as it is.
#
# --kernel (the x86_64-unknown-none archive) also makes the object ask
# nothing of a kernel's linker script beyond .text, .rodata, .data and
# .bss: its data sections are merged into plain .rodata/.data/.bss (a
# script that names only `*(.bss)` still covers memshim's static arena),
# .eh_frame is dropped (panic=abort: nothing unwinds), and the GOT
# references left by the prebuilt position-independent `core` are resolved
# (scripts/relax-got.py), so no linker creates a .got for it. memshim's own
# code is already built without a GOT (.cargo/config.toml).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernel=0
if [ "$1" = --kernel ]; then kernel=1; shift; fi
lib=$1
case $lib in /*) ;; *) lib=$PWD/$lib ;; esac
[ -f "$lib" ] || { echo "finish-archive: $lib not found" >&2; exit 1; }
if [ "$(ar t "$lib")" = "memshim.o" ]; then exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# memshim's own exports: the global, defined, unmangled symbols of its
# member(s) that are not hidden (hidden ones, such as the memory functions'
# assembly helpers, are internal by declaration).
for m in $(ar t "$lib" | grep '^memshim'); do
    ar x "$lib" "$m"
    readelf -Ws "$m" | awk '($5=="GLOBAL"||$5=="WEAK") && $6!="HIDDEN" && $7!="UND" {print $8}'
done | grep -v -e '^_ZN' -e '^_R' -e '^rust_eh_personality$' | sort -u > exports.txt
[ -s exports.txt ] || { echo "finish-archive: no exports found in $lib" >&2; exit 1; }

# rustc embeds LLVM bitcode (.llvmbc); a system LLVM gold plugin in
# /usr/lib/bfd-plugins would try, and fail, to read it. Only machine code is wanted.
objcopy -R .llvmbc -R .llvmcmd "$lib" stripped.a

roots=$(sed 's/^/-u /' exports.txt)
script=
if [ $kernel = 1 ]; then
    cat >merge.ld <<'EOF'
SECTIONS
{
    .rodata : { *(.rodata .rodata.*) }
    .data : { *(.data .data.*) }
    .bss : { *(.bss .bss.*) *(COMMON) }
    /DISCARD/ : { *(.eh_frame) }
}
EOF
    script="-T merge.ld"
fi
# shellcheck disable=SC2086
ld -r --gc-sections $script $roots -o memshim.o --whole-archive stripped.a --no-whole-archive
objcopy --keep-global-symbols=exports.txt --strip-debug memshim.o
if [ $kernel = 1 ]; then
    python3 "$here/relax-got.py" memshim.o >/dev/null
    if readelf -rW memshim.o | grep -q GOTPC; then
        echo "finish-archive: $lib still has GOT relocations" >&2
        exit 1
    fi
fi
rm -f new.a
ar rcs new.a memshim.o
mv new.a "$lib"
