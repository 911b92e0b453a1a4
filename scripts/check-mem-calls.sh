#!/bin/bash
# Proves, from the machine code of finished archives, that memcpy, memmove,
# memset, memcmp, bcmp and bzero never call (or jump to) any of those six
# functions, directly or through any function they reach. That is the
# failure LLVM causes when it recognises a copy loop as a memcpy idiom inside
# memcpy itself. It also fails on indirect calls (which it cannot follow).
#
# With --no-vector it proves that they touch no SSE/AVX/AVX-512 register
# (xmm, ymm, zmm, k) unless the path byte says so: vector instructions may
# only appear in the vector functions (memshim_simd_*), entered only on
# guarded edges, and in the six entry points only where every way there
# passes a test of a vector bit of the path byte memshim_mem_path
# (`testb $0x20` or `$0x10`, then the branch that means "set"). The freestanding
# build sets those bits only when the kernel calls memshim_enable_simd(),
# so its default path never touches vector state.
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
        function is_simd(f) { return f ~ /^memshim_simd_/ }
        # An indirect call/jmp is resolved only by a relocation on the next
        # line (call *0x0(%rip) through the GOT); otherwise it is unknown.
        function settle() { if (pending_ind) indirect[fn] = 1; pending = pending_ind = 0 }
        BEGIN { split(roots, r, " "); for (i in r) isroot[r[i]] = 1 }
        /^Disassembly of section / { sec = $NF; prev = ""; next }
        # A function that does not end in a jump or return runs on into the
        # next one in its section: an edge too.
        /^[0-9a-f]+ <.*>:$/ {
            settle(); fn = substr($2, 2, length($2) - 3); seen[fn] = 1
            if (prev != "" && lastmn !~ /^(jmp|ret|ud2)/) { n = ++ncallee[prev]; callee[prev, n] = fn }
            prev = fn; lastmn = ""; next
        }
        /^ +[0-9a-f]+:\t/ {
            settle()
            split($0, p_, "\t"); lastmn = p_[2]; sub(/ .*/, "", lastmn)
            pending = ($0 ~ /\t(call|jmp|j[a-z]+)[a-z]* /)
            pending_ind = ($0 ~ /\t(call|jmp)[a-z]* +\*/)
            vec = ($0 ~ /%([xyz]mm[0-9]|k[0-7]([^0-9]|$))/)
            if (vec) vector[fn] = 1
            if (fn in isroot) {
                k = ++nins[fn]; a = $1; sub(/:$/, "", a)
                itxt[fn, k] = $0; ivec[fn, k] = vec; idx[fn, a] = k
            }
            next
        }
        # A relocation: the target of the call/jmp before it, or (in an
        # entry point) what the instruction addresses.
        /R_X86_64_/ && (pending || (fn in isroot)) {
            t = strip($NF)
            if (fn in isroot) irel[fn, nins[fn]] = t
            if (pending) {
                if (t != fn) { n = ++ncallee[fn]; callee[fn, n] = t }
                if (fn in isroot) iext[fn, nins[fn]] = t
            }
            pending = pending_ind = 0
        }
        # Must-analysis over one entry point: in[k] is 1 when every way to
        # instruction k has passed a successful vector-bit test.
        function edge(j, v) { if (v == 0 && in_[j] == 1) { in_[j] = 0; changed = 1 } }
        function guards(f,    k, n, mn, ops, cur, ft, tk, tgt, j, why) {
            n = nins[f]; delete in_; delete out_tk
            for (k = 1; k <= n; k++) in_[k] = 1
            in_[1] = 0
            do {
                changed = 0
                for (k = 1; k <= n; k++) {
                    split(itxt[f, k], parts, "\t"); mn = parts[2]; sub(/ .*/, "", mn)
                    ops = parts[2]; sub(/^[a-z0-9]+ +/, "", ops)
                    cur = in_[k]; ft = cur; tk = cur
                    if (mn ~ /^j/ && mn != "jmp" && k > 1 && itxt[f, k - 1] ~ /\ttestb +\$0x(10|20|30),0x0\(%rip\)/ \
                        && irel[f, k - 1] == "memshim_mem_path") {
                        if (mn == "je" || mn == "jz") ft = 1
                        if (mn == "jne" || mn == "jnz") tk = 1
                    }
                    out_tk[k] = tk
                    if (mn !~ /^(jmp|ret|ud2)/ && k < n) edge(k + 1, ft)
                    if (mn ~ /^j/ && !((f, k) in iext)) {
                        tgt = ops; sub(/ .*/, "", tgt)
                        if ((f, tgt) in idx) edge(idx[f, tgt], tk)
                    }
                }
            } while (changed)
            why = ""
            for (k = 1; k <= n; k++) {
                if (ivec[f, k] && !in_[k]) why = why " unguarded vector instruction in " f ":" itxt[f, k] ";"
                if (((f, k) in iext) && is_simd(iext[f, k]) && !out_tk[k])
                    why = why " unguarded jump to " iext[f, k] " in " f ";"
            }
            return why
        }
        END {
            settle()
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
                    if (novec && (f in isroot)) why = why guards(f)
                    else if (novec && (f in vector) && !is_simd(f)) why = why " SSE/AVX register in " f ";"
                    for (k = 1; k <= ncallee[f]; k++) {
                        t = callee[f, k]
                        if (novec && is_simd(t) && !is_simd(f) && !(f in isroot))
                            why = why " " f " reaches vector function " t ";"
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
# helper, a bcmp that jumps to memcmp, and an indirect call; then, with
# --no-vector, an entry point whose vector instruction is guarded (memset,
# passes), one whose guard is the wrong way round (memcmp) and one that
# jumps to a vector function unguarded (bzero).
self_test() {
    local work fails vfails
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
    cat >"$work/vec.s" <<'EOF'
    .section .text.memshim_simd_x,"ax",@progbits
memshim_simd_x:
    vmovdqu %ymm0, (%rdi)
    ret
    .section .text.memset,"ax",@progbits
    .globl memset
memset:
    testb $0x20, memshim_mem_path(%rip)
    je 1f
    vmovdqu %ymm0, (%rdi)
    jne memshim_simd_x
1:  ret
    .section .text.memcmp,"ax",@progbits
    .globl memcmp
memcmp:
    testb $0x20, memshim_mem_path(%rip)
    jne 1f
    vmovdqu (%rdi), %ymm0
1:  ret
    .section .text.bzero,"ax",@progbits
    .globl bzero
bzero:
    testb $0x40, memshim_mem_path(%rip)
    jne memshim_simd_x
    ret
EOF
    cc -O2 -ffunction-sections -fno-builtin -c "$work/bad.c" -o "$work/bad.o"
    cc -c "$work/vec.s" -o "$work/vec.o"
    fails=0
    check_object "$work/bad.o" self-test 0 >"$work/out" || fails=$?
    vfails=0
    check_object "$work/vec.o" self-test 1 >"$work/vout" || vfails=$?
    # memcpy, bcmp and memmove are bad; memset, memcmp, bzero are undefined.
    # Vector: memcmp and bzero are bad; memcpy, memmove, bcmp are undefined.
    local ok=0
    [ "$fails" = 6 ] && [ "$vfails" = 5 ] && grep -q "^ok   self-test memset" "$work/vout" || ok=1
    rm -rf "$work"
    return "$ok"
}

novec=0
passed=0
failed=0
if [ "${1:-}" = --self-test ]; then
    if self_test; then echo "ok   self-test: planted calls and unguarded vector code found"; passed=1
    else echo "FAIL self-test: the checker missed a planted call or vector instruction"; failed=1; fi
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
