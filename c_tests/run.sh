#!/bin/bash
# Builds and runs every c_tests/test_*.c (or the names given) in each MODE:
#   dyn     linked against target/release/libmemshim.a ahead of glibc (dynamic executable)
#   static  the same with -static: memshim replaces glibc's allocator in libc.a
#   ref     without memshim, against glibc's own malloc (-DHARNESS_REFERENCE):
#           checks the tests themselves
# A program that fails to build counts as one failed test. Each program's own
# "N passed, N failed" line is re-printed as "<name>: N ok, N failed" so the
# step ends with exactly one summed "N passed, N failed" line.
#
#   [FILTER=substring] c_tests/run.sh dyn,static [test_malloc ...]
set -uo pipefail
cd "$(dirname "$0")/.."
modes=${1:-dyn,static}
shift || true
CC=${CC:-cc}
CFLAGS="-std=c11 -Wall -Wextra -Werror -fno-builtin -Iinclude -Ic_tests -O1 -g"
LIB=target/release/libmemshim.a
out=target/c_tests
mkdir -p "$out"

if [ $# -gt 0 ]; then names=("$@"); else
    names=()
    for f in c_tests/test_*.c; do names+=("$(basename "$f" .c)"); done
fi

passed=0 failed=0
for mode in ${modes//,/ }; do
    case $mode in
    dyn) link=("$LIB" -lpthread -lm -ldl) defs=() ;;
    static) link=(-static "$LIB" -lpthread -lm) defs=() ;;
    ref) link=(-lpthread -lm -ldl) defs=(-DHARNESS_REFERENCE) ;;
    *) echo "run.sh: unknown mode $mode" >&2; exit 2 ;;
    esac
    for name in "${names[@]}"; do
        exe=$out/$name-$mode
        echo "--- $name ($mode)"
        # -static warns about getpwnam & co. in libc.a; those are glibc's, not ours.
        if ! $CC $CFLAGS "${defs[@]}" "c_tests/$name.c" "${link[@]}" -o "$exe" 2> "$exe.build.log"; then
            grep -v 'statically linked applications requires at runtime' "$exe.build.log"
            echo "FAIL $name ($mode): build failed"
            failed=$((failed + 1))
            continue
        fi
        log=$(mktemp)
        timeout 600 "$exe" ${FILTER:+"$FILTER"} > "$log" 2>&1
        rc=$?
        counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
        grep -vE '^[0-9]+ passed, [0-9]+ failed$' "$log"
        rm -f "$log"
        if [ -z "$counts" ]; then
            echo "FAIL $name ($mode): no summary line (exit status $rc)"
            failed=$((failed + 1))
            continue
        fi
        read -r p _ f _ <<<"${counts//,/}"
        echo "$name ($mode): $p ok, $f failed"
        passed=$((passed + p))
        failed=$((failed + f))
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
            echo "FAIL $name ($mode): exit status $rc"
            failed=$((failed + 1))
        fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
