#!/bin/bash
# Runs each make target given, keeps going after a failure, and ends with one
# line summing every step's own counts: "N passed, N failed".
# A step's counts are read from lines like "N passed, N failed" (our C
# harnesses) or "test result: ok. N passed; N failed" (cargo); a step that
# prints neither counts as one test.
set -o pipefail
total_pass=0
total_fail=0
failed_steps=()
for step in "$@"; do
    echo "=== make $step"
    log=$(mktemp)
    start=$SECONDS
    if make --no-print-directory "$step" 2>&1 | tee "$log"; then ok=1; else ok=0; fi
    counts=$(grep -Eo '[0-9]+ passed[;,] [0-9]+ failed' "$log" | tr -d ';,' | awk '{p+=$1; f+=$3} END {print p+0, f+0}')
    rm -f "$log"
    read -r p f <<<"$counts"
    if [ "$p" = 0 ] && [ "$f" = 0 ]; then
        if [ $ok = 1 ]; then p=1; else f=1; fi
    elif [ $ok = 0 ] && [ "$f" = 0 ]; then
        f=1 # the step failed outside its counted tests
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    [ $ok = 1 ] || failed_steps+=("$step")
    echo "=== make $step: $([ $ok = 1 ] && echo ok || echo FAILED) ($((SECONDS - start)) s)"
done
if [ ${#failed_steps[@]} -gt 0 ]; then
    echo "failed steps: ${failed_steps[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
