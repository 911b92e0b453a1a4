#!/bin/bash
# Link-level checks of the C artifacts and the header:
#  * libm still supplies sqrt/fmod to a program linked with the archive ahead
#    of -lm (dynamic and -static), traced with -Wl,-y;
#  * the kernel archive has no undefined symbols but weak ones, and its mem*
#    are strong definitions;
#  * each artifact exports exactly the contract's symbols (no more, none missing);
#  * include/memshim.h compiles as C11 and C++17 (alone, after the libc
#    headers, freestanding) with -Wall -Wextra -Werror -pedantic, and declares
#    only contract functions.
# Last line: N passed, N failed.
set -uo pipefail
cd "$(dirname "$0")/.."
HOST=target/release/libmemshim.a
SO=target/release/libmemshim.so
KERNEL=target/x86_64-unknown-none/release/libmemshim.a
out=target/c_tests
mkdir -p "$out"
CC=${CC:-cc}
CXX=${CXX:-c++}
passed=0 failed=0
result() { # name status [detail]
    if [ "$2" = 0 ]; then echo "ok   $1"; passed=$((passed + 1)); else
        echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}

# Every artifact: C++'s replaceable global operator new/delete (src/ffi/cxx.rs).
CXX_OPS="_Znwm _Znam _ZnwmSt11align_val_t _ZnamSt11align_val_t _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t
     _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t
     _ZdlPv _ZdaPv _ZdlPvm _ZdaPvm _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t
     _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t
     _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t"
STD="malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc
     pvalloc malloc_usable_size memcpy memmove memset memcmp bcmp bzero"
NEWLIB="_malloc_r _free_r _calloc_r _realloc_r _memalign_r _malloc_usable_size_r"
MEMSHIM="memshim_add_region memshim_set_page_hooks memshim_set_lock_hooks
     memshim_set_panic_handler memshim_get_stats memshim_trim memshim_check memshim_dump memshim_strerror
     memshim_set_cpu_hook memshim_set_cpu_gs memshim_cpu_offline
     memshim_init_multiboot memshim_frames_init memshim_frame_alloc
     memshim_frame_alloc_contiguous memshim_frame_free memshim_frame_free_contiguous
     memshim_frame_reserve memshim_enable_simd memshim_simd_width"
# Host only: glibc's allocator extras, so a -static link never pulls glibc's malloc.o.
GLIBC_EXTRAS="mallinfo mallinfo2 mallopt malloc_trim malloc_stats malloc_info"
words() { tr -s ' \n' '\n\n' <<<"$*" | grep -v '^$' | sort -u; }

# ---- libm supplies the math functions --------------------------------------
for mode in dyn static; do
    flags=(); [ $mode = static ] && flags=(-static)
    exe=$out/libm_user-$mode
    trace=$($CC -std=c11 -Wall -Wextra -Werror -fno-builtin -O1 "${flags[@]}" c_tests/libm_user.c \
        "$HOST" -lm -Wl,-y,sqrt -Wl,-y,fmod -o "$exe" 2>&1)
    result "libm_user ($mode) links with the archive ahead of -lm" $? "$trace"
    for sym in sqrt fmod; do
        def=$(grep -E "definition of $sym\$" <<<"$trace")
        ! grep -q memshim <<<"$def" && grep -q 'libm' <<<"$def"
        result "$sym ($mode) is defined by libm" $? "${def:-no definition traced}: $trace"
    done
    run=$("$exe" 2>&1)
    result "libm_user ($mode) computes with libm: $run" $?
done

# ---- the kernel archive ----------------------------------------------------
if [ -f "$KERNEL" ]; then
    und=$(nm "$KERNEL" | awk '$1 == "U" {print $2}')
    [ -z "$und" ]; result "kernel archive: no undefined symbols (weak allowed: $(nm "$KERNEL" | awk '$1 ~ /^[wv]$/ {printf "%s ", $2}'))" $? "$und"
    # From a variable: with pipefail, `nm | grep -q` fails when grep quits
    # before nm has written everything (SIGPIPE).
    syms=$(nm "$KERNEL")
    for f in memcpy memmove memset memcmp bcmp bzero; do
        grep -qE "^[0-9a-f]+ T $f\$" <<<"$syms"
        result "kernel archive: $f is a strong definition" $? "$(grep -E " $f\$" <<<"$syms")"
    done
    [ "$(ar t "$KERNEL")" = memshim.o ]; result "kernel archive is one object" $?
else
    result "kernel archive exists (make kernel-lib)" 1 "$KERNEL missing"
fi

# ---- exports: exactly the contract ------------------------------------------
check_exports() { # name expected-list actual-list (the C++ operators are always expected)
    local extra missing
    extra=$(comm -13 <(words "$2 $CXX_OPS") <(words "$3") | tr '\n' ' ')
    missing=$(comm -23 <(words "$2 $CXX_OPS") <(words "$3") | tr '\n' ' ')
    [ -z "$extra" ]; result "$1 exports nothing outside the contract" $? "extra: $extra"
    [ -z "$missing" ]; result "$1 exports every contract symbol" $? "missing: $missing"
}
check_exports "host archive" "$STD $NEWLIB $MEMSHIM $GLIBC_EXTRAS" \
    "$(nm -g --defined-only "$HOST" | awk 'NF == 3 {print $3}')"
[ -f "$KERNEL" ] && check_exports "kernel archive" "$STD $NEWLIB $MEMSHIM" \
    "$(nm -g --defined-only "$KERNEL" | awk 'NF == 3 {print $3}')"
check_exports "libmemshim.so" "$STD $NEWLIB $MEMSHIM $GLIBC_EXTRAS" \
    "$(nm -D --defined-only "$SO" | awk 'NF == 3 {print $3}')"

# The C++ names are the operators they claim to be (the Itanium ABI's
# mangling, as c++filt reads it), twenty distinct forms.
forms=$(for sym in $CXX_OPS; do c++filt "$sym"; done)
bad=$(grep -vE '^operator (new|delete)(\[\])?\((void\*)?(, )?(unsigned long)?(, )?(std::align_val_t)?(, )?(std::nothrow_t const&)?\)$' <<<"$forms")
[ -z "$bad" ] && [ "$(sort -u <<<"$forms" | wc -l)" = 20 ]
result "the C++ exports demangle to 20 distinct operator new/delete forms" $? "$bad"

# ---- the header ------------------------------------------------------------
hdr() { # name compiler flags... -- source text
    local name=$1 cc=$2; shift 2
    local flags=()
    while [ "$1" != -- ]; do flags+=("$1"); shift; done
    shift
    local lang=c; [ "$cc" = "$CXX" ] && lang=c++
    local log
    log=$(printf '%b\n' "$*" | $cc -x $lang -Wall -Wextra -Werror -pedantic -Iinclude "${flags[@]}" \
        -fsyntax-only - 2>&1)
    result "header: $name" $? "$log"
}
LIBC='#include <stdlib.h>\n#include <string.h>'
SYS='#include <stdlib.h>\n#include <string.h>\n#include <strings.h>\n#include <malloc.h>\n#include <unistd.h>\n#include <sys/mman.h>\n#include <pthread.h>\n#include <errno.h>'
USE='static void use(void) { struct memshim_stats s; memshim_get_stats(&s); (void)memshim_check(); (void)memshim_strerror(MEMSHIM_EOVERLAP); }'
hdr "C11 alone" "$CC" -std=c11 -- "#include <memshim.h>\n$USE"
hdr "C11 after <stdlib.h> <string.h>" "$CC" -std=c11 -- "$LIBC\n#include <memshim.h>\n$USE"
hdr "C11 before <stdlib.h> <string.h>" "$CC" -std=c11 -- "#include <memshim.h>\n$LIBC\n$USE"
hdr "C11 after the system headers memshim itself uses" "$CC" -std=c11 -D_GNU_SOURCE -- "$SYS\n#include <memshim.h>\n$USE"
hdr "C11 freestanding, calling the standard functions" "$CC" -std=c11 -ffreestanding -- \
    "#include <memshim.h>\nvoid *f(void) { void *p = malloc(10); p = realloc(p, 20); memset(p, 0, 20); return p; }\n$USE"
hdr "C11 with the newlib _r declarations" "$CC" -std=c11 -ffreestanding -DMEMSHIM_DECLARE_NEWLIB_R -- \
    "#include <memshim.h>\nvoid *f(void *r) { return _malloc_r(r, 10); }"
hdr "C++17 alone" "$CXX" -std=c++17 -- "#include <memshim.h>\n$USE"
hdr "C++17 after <stdlib.h> <string.h>" "$CXX" -std=c++17 -- "$LIBC\n#include <memshim.h>\n$USE"
hdr "C++17 after <cstdlib> <cstring>" "$CXX" -std=c++17 -- "#include <cstdlib>\n#include <cstring>\n#include <memshim.h>\n$USE"
hdr "C++17 before <cstdlib> <cstring>" "$CXX" -std=c++17 -- "#include <memshim.h>\n#include <cstdlib>\n#include <cstring>\n$USE"
hdr "C++17 after the system headers memshim itself uses" "$CXX" -std=c++17 -- "$SYS\n#include <memshim.h>\n$USE"
hdr "C++17 freestanding" "$CXX" -std=c++17 -ffreestanding -- \
    "#include <memshim.h>\nvoid *f() { return malloc(10); }\n$USE"

# Every function the header declares is a contract function.
# (gcc -aux-info writes one prototype per declared function.)
printf '#include <memshim.h>\n' | $CC -x c -ffreestanding -DMEMSHIM_DECLARE_NEWLIB_R -DMEMSHIM_HOST_LINUX -Iinclude \
    -aux-info "$out/header.aux" -fsyntax-only -
declared=$(grep 'include/memshim.h' "$out/header.aux" |
    perl -ne 'print "$1\n" if m{\*/\s*(?:extern\s+)?[^(]*?\b(\w+)\s*\(}' | sort -u)
extra=$(comm -13 <(words "$STD $NEWLIB $MEMSHIM") <(words "$declared") | tr '\n' ' ')
[ -z "$extra" ]; result "header declares only contract functions" $? "also declares: $extra"
missing=$(comm -23 <(words "$STD $NEWLIB $MEMSHIM") <(words "$declared") | tr '\n' ' ')
[ -z "$missing" ]; result "header declares every contract function" $? "missing: $missing"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
