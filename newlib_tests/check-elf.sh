#!/bin/bash
# Proves from the linked ELF that memshim, not newlib, is its allocator:
#
#   newlib_tests/check-elf.sh prog.elf
#
# reads prog.elf.map (ld -Map) and prog.elf.trace (ld -y for each allocator
# name), written next to it by the link rule in mk/newlib.mk. Checks:
#  - no newlib allocator object was taken from libc.a (the map's archive
#    member list): mallocr, nano-mallocr, freer, callocr, reallocr, malignr,
#    msizer, mlock, sbrkr, the mallinfo/mallopt/stats family and the plain
#    malloc/calloc/realloc/valloc/aligned_alloc wrappers;
#  - every allocator name was defined by memshim's archive (the trace);
#  - none of dlmalloc's internal symbols is in the ELF (nm);
#  - the libc.a it was linked against does contain newlib's malloc, so the
#    first check proves the link order, not an allocator-free libc.a.
# Ends with "N passed, N failed".
set -uo pipefail
elf=$1
map=$elf.map
trace=$elf.trace
pass=0
fail=0
check() { # check <description> <command...>
    local what=$1
    shift
    if "$@"; then
        pass=$((pass + 1))
        echo "  ok   - $what"
    else
        fail=$((fail + 1))
        echo "  FAIL - $what"
    fi
}

newlib_alloc_members='lib_a-(nano-)?(mallocr|freer|cfreer|callocr|reallocr|malignr|msizer|mlock|sbrkr|mallinfor|mallstatsr|malloptr|pvallocr|vallocr|malloc|calloc|realloc|msize|mstats|mtrim|valloc|aligned_alloc)\.o'
names="_malloc_r _free_r _calloc_r _realloc_r _memalign_r _malloc_usable_size_r malloc free calloc realloc"

no_newlib_members() {
    local hits
    hits=$(grep -Eo "libc\.a\($newlib_alloc_members\)" "$map" | sort -u | tr '\n' ' ')
    [ -z "$hits" ] || { echo "    newlib allocator objects linked: $hits"; return 1; }
}
all_from_memshim() {
    local n ok=0
    for n in $names; do
        if grep -Eq "libmemshim\.a\(memshim\.o\): definition of $n\$" "$trace"; then
            echo "    $(grep -E ": definition of $n\$" "$trace" | sed 's/^.*ld: //')"
        else
            echo "    $n: not defined by memshim: $(grep -E ": definition of $n\$" "$trace" || echo missing)"
            ok=1
        fi
    done
    return $ok
}
no_dlmalloc_symbols() {
    local hits
    hits=$(nm "$elf" | awk '{print $NF}' | grep -Ex '__malloc_av_|__malloc_sbrk_base|__malloc_top_pad|_malloc_trim_r|__malloc_lock|_sbrk_r|_mallinfo_r' | tr '\n' ' ')
    [ -z "$hits" ] || { echo "    dlmalloc symbols present: $hits"; return 1; }
}
libc_has_newlib_malloc() {
    local libc
    libc=$(grep -Eo '[^ (]*/libc\.a' "$map" | head -1)
    [ -n "$libc" ] && ar t "$libc" | grep -x 'lib_a-mallocr.o' >/dev/null
}

[ -f "$elf" ] && [ -f "$map" ] && [ -f "$trace" ] || { echo "check-elf: $elf, its .map or .trace is missing"; echo "0 passed, 1 failed"; exit 1; }
echo "symbol evidence for $elf:"
check "no newlib allocator object linked from libc.a (link map)" no_newlib_members
check "every allocator name defined by libmemshim.a(memshim.o) (ld -y)" all_from_memshim
check "no dlmalloc internals in the ELF (nm)" no_dlmalloc_symbols
check "the libc.a linked does contain newlib's mallocr.o (so the link order decided)" libc_has_newlib_malloc
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
