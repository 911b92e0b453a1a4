#!/bin/bash
# LD_PRELOAD=target/release/libmemshim.so on unmodified programs: each must
# exit 0 with the right output; the probe proves the interposition (and must
# fail without the preload, so the check can fail). Last line: N passed, N failed.
set -uo pipefail
cd "$(dirname "$0")/.."
SO=$PWD/target/release/libmemshim.so
out=target/c_tests
mkdir -p "$out"
passed=0 failed=0
result() { # name status
    if [ "$2" = 0 ]; then echo "ok   $1"; passed=$((passed + 1)); else echo "FAIL $1"; failed=$((failed + 1)); fi
}
pre() { LD_PRELOAD=$SO timeout 120 "$@"; }

${CC:-cc} -std=c11 -Wall -Wextra -Werror -Iinclude -O1 c_tests/preload_probe.c -ldl -o "$out/preload_probe"
result "probe builds" $?

pre "$out/preload_probe"
result "probe: malloc & co. from libmemshim.so, strdup counted by memshim" $?
"$out/preload_probe" >/dev/null
[ $? != 0 ]; result "probe: without LD_PRELOAD it says so (exit != 0)" $?

pre ls -la / >/dev/null
result "ls -la /" $?

got=$(seq 20000 -1 1 | pre sort -n | head -3 | tr '\n' ' ')
[ "$got" = "1 2 3 " ]; result "seq | sort -n (got: $got)" $?

got=$(seq 1 5000 | pre sort -R | pre sort -n | pre tail -1)
[ "$got" = 5000 ]; result "sort -R | sort -n | tail" $?

got=$(pre python3 -c '
import json, collections
d = {str(i): [i] * (i % 50) for i in range(20000)}
s = json.dumps(d)
c = collections.Counter(s)
print(len(json.loads(s)), bytearray(10**7)[5], sum(len(v) for v in d.values()))
')
[ "$got" = "20000 0 490000" ]; result "python3 json/bytearray workload (got: $got)" $?

got=$(pre sh -c 'x=$(printf "%s\n" a b c | tr a-z A-Z | tac | paste -sd,); echo "$x"')
[ "$got" = "C,B,A" ]; result "sh pipeline (got: $got)" $?

pre gzip -c "$SO" | pre gzip -dc | cmp -s - "$SO"
result "gzip round trip of libmemshim.so" $?

${CC:-cc} -std=c11 -Wall -Wextra -Werror -Iinclude -O1 c_tests/dlopen_probe.c -ldl -o "$out/dlopen_probe"
"$out/dlopen_probe" "$SO"
result "dlopen(RTLD_LOCAL) beside glibc: realloc(p, 0), reallocarray and the _r forms stay in memshim" $?

# test_threads (threads, and fork: against stdio's locks, from a signal
# handler, nested) built without memshim, for the preload to serve.
${CC:-cc} -std=c11 -Wall -Wextra -Werror -fno-builtin -Iinclude -Ic_tests -O1 -DHARNESS_REFERENCE \
    c_tests/test_threads.c -lpthread -o "$out/test_threads-preload"
pre "$out/test_threads-preload" > "$out/test_threads-preload.log" 2>&1
result "test_threads under LD_PRELOAD ($(tail -1 "$out/test_threads-preload.log"))" $?

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
