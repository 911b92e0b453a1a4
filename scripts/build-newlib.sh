#!/bin/bash
# Builds newlib's libc.a for freestanding x86_64 ELF from Debian's
# newlib-source with the system gcc, and caches it:
#
#   scripts/build-newlib.sh        -> target/newlib/x86_64-elf/{lib/libc.a,include/}
#
# The cache is keyed by this script's content, the tarball and the compiler
# version, so a second run returns at once and a change to the flags below
# rebuilds. Only newlib itself is built (no libgloss, no multilib);
# `make all-target-newlib` also builds libm because libc.a takes frexp,
# isinf & co. from it.
#
# Flags: SSE stays enabled (newlib cannot be built with -mno-sse on x86_64
# and %f passes doubles in SSE registers), so a kernel that links this libc.a
# enables SSE at boot. -mno-red-zone keeps it safe in a kernel with
# interrupts; the small code model fits a kernel linked below 2 GiB (a
# higher-half kernel needs -mcmodel=kernel added here). newlib's own malloc
# stays in libc.a on purpose: the tests prove memshim wins the link anyway,
# which is what a user with a stock newlib gets.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/target/newlib
dest=$out/x86_64-elf

cflags="-O2 -ffreestanding -mno-red-zone -fno-pic -fno-pie -fno-stack-protector"
configure_flags=(
    --target=x86_64-elf
    --disable-multilib
    --disable-newlib-supplied-syscalls
    --enable-newlib-io-c99-formats   # %zu, %jd, %hhd; without it they shift the arguments
    --enable-newlib-io-long-long
)

"$root/scripts/ensure-tools.sh" newlib
tarball=$(ls /usr/src/newlib/newlib-*.tar.* | sort -V | tail -1)
key=$( { cat "$0"; echo "$tarball"; gcc -dumpfullversion; } | sha256sum | cut -c1-16)

mkdir -p "$out"
# Two make steps may ask for newlib at once; one builds, the other waits.
exec 9>"$out/.lock"
flock 9

if [ -f "$dest/lib/libc.a" ] && [ "$(cat "$out/key" 2>/dev/null)" = "$key" ]; then
    echo "newlib: cached $dest/lib/libc.a (key $key)"
    exit 0
fi

echo "newlib: building libc.a from $tarball (first build; about a minute on 2 cores)"
start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/memshim-newlib.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1) # newlib-salsa/ in Debian's tarball

mkdir "$work/build"
cd "$work/build"
log=$work/build.log
run() {
    if ! "$@" >>"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "newlib: failed: $* (log above)" >&2
        exit 1
    fi
}
run "$src/configure" "${configure_flags[@]}" --prefix="$work/install" \
    CC_FOR_TARGET=gcc AR_FOR_TARGET=ar RANLIB_FOR_TARGET=ranlib AS_FOR_TARGET=as \
    LD_FOR_TARGET=ld NM_FOR_TARGET=nm CFLAGS_FOR_TARGET="$cflags"
run make -j"$(nproc)" all-target-newlib
run make install-target-newlib

rm -rf "$dest" "$out/key"
mv "$work/install/x86_64-elf" "$dest"
echo "$key" >"$out/key"
echo "newlib: built $dest/lib/libc.a in $((SECONDS - start)) s"
