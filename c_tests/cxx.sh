#!/bin/bash
# C++ programs served by memshim (c_tests/test_cxx.cpp): built with g++
# against target/release/libmemshim.a ahead of libstdc++, as a dynamic
# executable and -static, and run. The link itself is checked with -Wl,-y:
# memshim's archive must define operator new and delete (and malloc).
# Last line: N passed, N failed.
set -uo pipefail
cd "$(dirname "$0")/.."
CXX=${CXX:-g++}
LIB=target/release/libmemshim.a
out=target/c_tests
mkdir -p "$out"
passed=0 failed=0
result() { # name status [detail]
    if [ "$2" = 0 ]; then echo "ok   $1"; passed=$((passed + 1)); else
        echo "FAIL $1${3:+: $3}"; failed=$((failed + 1)); fi
}

# -static: std::__throw_bad_alloc comes from libstdc++.a only when something
# references it strongly (memshim's reference is weak; std::vector and the
# like reference it themselves; this program does not).
for mode in dyn static; do
    flags=(); [ $mode = static ] && flags=(-static -Wl,--undefined=_ZSt17__throw_bad_allocv)
    exe=$out/test_cxx-$mode
    rm -f "$exe"
    trace=$($CXX -std=c++17 -Wall -Wextra -Werror -O1 -g "${flags[@]}" c_tests/test_cxx.cpp "$LIB" \
        -Wl,-y,_Znwm -Wl,-y,_ZdlPvm -Wl,-y,_ZnwmSt11align_val_t -Wl,-y,malloc -o "$exe" 2>&1)
    result "test_cxx ($mode) links" $? "$trace"
    for sym in _Znwm _ZdlPvm _ZnwmSt11align_val_t malloc; do
        grep -E "libmemshim\.a\(memshim\.o\): definition of $sym\$" <<<"$trace" >/dev/null
        result "$sym ($mode) is defined by libmemshim.a" $? "$trace"
    done
    log=$(timeout 60 "$exe" 2>&1)
    rc=$?
    echo "$log" | grep -vE '^[0-9]+ passed, [0-9]+ failed$' | sed "s/^/  [$mode] /"
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' <<<"$log" | tail -1)
    if [ -z "$counts" ]; then
        result "test_cxx ($mode) runs" 1 "no summary line (exit status $rc)"
        continue
    fi
    read -r p _ f _ <<<"${counts//,/}"
    passed=$((passed + p)) failed=$((failed + f))
    [ "$rc" = 0 ] || [ "$f" != 0 ] || result "test_cxx ($mode) exit status" 1 "$rc"
done
# Without it, a failing new cannot throw: memshim reports why and aborts.
exe=$out/test_cxx-static-nothrow
$CXX -std=c++17 -Wall -Wextra -Werror -O1 -static c_tests/test_cxx.cpp "$LIB" -o "$exe" 2>/dev/null
log=$(timeout 60 "$exe" oom 2>&1)
rc=$?
[ $rc = 134 ] && grep -q 'memshim: operator new: out of memory .*std::__throw_bad_alloc is not linked' <<<"$log"
result "-static without std::__throw_bad_alloc: a failing new aborts, saying why" $? "exit $rc: $log"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
