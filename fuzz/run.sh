#!/bin/bash
# Runs fuzz targets for a fixed time each and ends with "N passed, N failed"
# (a target passes when it found no crash). Usage: fuzz/run.sh SECONDS TARGET...
#
# The corpus grows in fuzz/corpus/<target>/ (not committed); the committed
# seeds in fuzz/seeds/<target>/ are read too. A crash leaves its input in
# fuzz/artifacts/<target>/; this script prints it as hex with the report.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=$1
shift

# Built once, before any target's clock starts.
if ! cargo +nightly fuzz build; then
    echo "fuzz: build failed"
    echo "0 passed, $# failed"
    exit 1
fi

pass=0
fail=0
for t in "$@"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log=$(mktemp)
    before=$(ls "fuzz/artifacts/$t")
    if cargo +nightly fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$secs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
        runs=$(grep -o 'number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$')
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
        echo "fuzz $t: ok, ${runs:-?} inputs in ${secs} s (${cov:-cov: ?}, corpus fuzz/corpus/$t)"
        pass=$((pass + 1))
    else
        echo "fuzz $t: FAILED"
        grep -v '^#[0-9]' "$log" | tail -n 80
        for f in $(comm -13 <(echo "$before") <(ls "fuzz/artifacts/$t")); do
            echo "reproducer fuzz/artifacts/$t/$f (replay: cargo +nightly fuzz run $t fuzz/artifacts/$t/$f):"
            od -An -v -tx1 "fuzz/artifacts/$t/$f" | tr -d ' \n' | head -c 8192
            echo
        done
        fail=$((fail + 1))
    fi
    rm -f "$log"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
