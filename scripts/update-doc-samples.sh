#!/bin/bash
# Regenerates the sample output in docs/*.md from real runs (`make
# doc-samples`). A sample is the indented block between
#
#   <!-- sample: make demo MEM=4G -->
#   <!-- end sample -->
#
# The command after "sample:" is run from the repository root; its output
# (stdout and stderr, cargo's and make's own progress lines left out)
# replaces the block, indented as a code block under a "$ command" line.
# "sample: COMMAND | from TEXT" keeps the output from the first line that
# contains TEXT (leaving out, say, the build commands). A command that fails leaves its document untouched and
# makes the script fail.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
for doc in docs/*.md; do
    grep -q '^<!-- sample: ' "$doc" || continue
    out=$(mktemp)
    ok=1
    while IFS= read -r line; do
        if [[ $line =~ ^\<!--\ sample:\ (.*)\ --\>$ ]]; then
            spec=${BASH_REMATCH[1]} cmd=${spec%% | from *} from=
            [[ $spec == *" | from "* ]] && from=${spec#* | from }
            echo "doc-samples: $doc: $cmd" >&2
            printf '%s\n\n' "$line" >>"$out"
            if ! run=$(eval "$cmd" 2>&1); then
                echo "doc-samples: '$cmd' failed; $doc left as it was:" >&2
                tail -20 <<<"$run" >&2
                ok=0
            fi
            run=$(grep -vE '^(make(\[[0-9]+\])?: |\s*(Compiling|Finished|Running|Fresh) )' <<<"$run" || true)
            [ -z "$from" ] || run=$(awk -v t="$from" 'index($0, t) { on = 1 } on' <<<"$run")
            printf '    $ %s\n' "${cmd/ --no-print-directory/}" >>"$out"
            sed 's/^/    /' <<<"$run" >>"$out"
            printf '\n' >>"$out"
            skipping=1
            continue
        fi
        if [ "${skipping:-0}" = 1 ]; then
            [ "$line" = "<!-- end sample -->" ] || continue
            skipping=0
        fi
        printf '%s\n' "$line" >>"$out"
    done <"$doc"
    if [ "$ok" = 1 ]; then mv "$out" "$doc"; else rm -f "$out"; status=1; fi
done
exit $status
