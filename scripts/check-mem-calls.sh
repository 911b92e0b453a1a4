#!/bin/bash
# Proves, from the machine code of finished archives, that memcpy, memmove,
# memset, memcmp, bcmp and bzero never call (or jump to) any of those six
# functions, directly or through any function they reach. That is the
# failure LLVM causes when it recognises a copy loop as a memcpy idiom inside
# memcpy itself. It also fails on indirect calls (which it cannot follow)
# and, with --no-vector, on SSE/AVX registers in the reached code outside
# memshim::mem::simd (the opt-in AVX2 path, off unless memshim_enable_simd()).
#
#   scripts/check-mem-calls.sh [--no-vector] ARCHIVE...
#   scripts/check-mem-calls.sh --self-test
#
# The archive's object is disassembled with relocations (objdump -dr): each
# call/jmp to another function carries a relocation naming the target symbol
# or, for a local function, its own section (.text.<name>). A jump with no
# relocation stays inside its function's section. One test per function and
# archive; the last line is "N passed, N failed".
set -euo pipefail

FUNCS="memcpy memmove memset memcmp bcmp bzero"

# check_object OBJECT LABEL NO_VECTOR: prints one line per root, returns the
# number of failures.
check_object() {
    objdump -dr --no-show-raw-insn "$1" | awk -v roots="$FUNCS" -v label="$2" -v novec="$3" '
        function strip(t) {
            sub(/[-+]0x[0-9a-f]+$/, "", t)
            sub(/^\.text\.(unlikely\.|hot\.|startup\.)?/, "", t)
            return t
        }
        # An indirect call/jmp is resolved only by a relocation on the next
        # line (call *0x0(%rip) through the GOT); otherwise it is unknown.
        function settle() { if (pending_ind) indirect[fn] = 1; pending = pending_ind = 0 }
        /^[0-9a-f]+ <.*>:$/ {
            settle(); fn = substr($2, 2, length($2) - 3); seen[fn] = 1; next
        }
        /^ +[0-9a-f]+:\t/ {
            settle()
            pending = ($0 ~ /\t(call|jmp)[a-z]* /)
            pending_ind = ($0 ~ /\t(call|jmp)[a-z]* +\*/)
            if ($0 ~ /%[xyz]mm[0-9]/) vector[fn] = 1
            next
        }
        /R_X86_64_/ && pending {
            t = strip($NF)
            if (t != fn) { n = ++ncallee[fn]; callee[fn, n] = t }
            pending = pending_ind = 0
        }
        END {
            settle()
            split(roots, r, " ")
            for (i in r) forbidden[r[i]] = 1
            fails = 0
            for (i = 1; i in r; i++) {
                root = r[i]
                if (!(root in seen)) { print "FAIL " label " " root ": not defined"; fails++; continue }
                delete reached; delete queue
                head = 1; tail = 1; queue[1] = root; reached[root] = 1
                why = ""
                while (head <= tail) {
                    f = queue[head++]
                    if (f in indirect) why = why " indirect call in " f ";"
                    if (novec && (f in vector) && f !~ /memshim3mem4simd/) why = why " SSE/AVX register in " f ";"
                    for (k = 1; k <= ncallee[f]; k++) {
                        t = callee[f, k]
                        if (t in forbidden) why = why " " f " calls " t ";"
                        else if (!(t in reached)) { reached[t] = 1; queue[++tail] = t }
                    }
                }
                if (why == "") print "ok   " label " " root " (" tail " functions reached)"
                else { print "FAIL " label " " root ":" why; fails++ }
            }
            exit fails
        }'
}

# check_archive ARCHIVE NO_VECTOR: returns the number of failures.
check_archive() {
    local work fails=0
    work=$(mktemp -d)
    cp "$1" "$work/lib.a"
    (cd "$work" && ar x lib.a)
    # A finished archive holds memshim.o alone; otherwise take every object.
    ld -r -o "$work/all.o" "$work"/*.o 2>/dev/null || cp "$work"/memshim.o "$work/all.o"
    check_object "$work/all.o" "$1" "$2" || fails=$?
    rm -rf "$work"
    return "$fails"
}

# The checker must be able to fail: a C memcpy that reaches memset through a
# helper, a bcmp that jumps to memcmp, and an indirect call.
self_test() {
    local work fails
    work=$(mktemp -d)
    cat >"$work/bad.c" <<'EOF'
#include <stddef.h>
void *memset(void *, int, size_t);
int memcmp(const void *, const void *, size_t);
__attribute__((noinline)) static void helper(char *d, size_t n) { memset(d, 0, n); }
void *memcpy(void *d, const void *s, size_t n) { helper(d, n); (void)s; return d; }
int bcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }
void *memmove(void *d, const void *s, size_t n) { void *(*volatile f)(void *, const void *, size_t) = memcpy; return f(d, s, n); }
EOF
    cc -O2 -ffunction-sections -fno-builtin -c "$work/bad.c" -o "$work/bad.o"
    fails=0
    check_object "$work/bad.o" self-test 0 >"$work/out" || fails=$?
    rm -rf "$work"
    # memcpy, bcmp and memmove are bad; memset, memcmp, bzero are undefined.
    [ "$fails" = 6 ]
}

novec=0
passed=0
failed=0
if [ "${1:-}" = --self-test ]; then
    if self_test; then echo "ok   self-test: planted calls found"; passed=1
    else echo "FAIL self-test: the checker missed a planted call"; failed=1; fi
else
    if [ "${1:-}" = --no-vector ]; then novec=1; shift; fi
    for lib in "$@"; do
        f=0
        check_archive "$lib" "$novec" || f=$?
        failed=$((failed + f))
        passed=$((passed + 6 - f))
    done
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
