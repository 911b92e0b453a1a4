#!/bin/bash
# Installs what a make target needs when it is missing, or says exactly what
# to install. Usage: ensure-tools.sh <what>...
#   rust-target  the x86_64-unknown-none target (rustup)
#   qemu         qemu-system-x86_64
#   grub         grub-mkrescue with the BIOS (i386-pc) modules, and xorriso
#   newlib       Debian's newlib-source (newlib 3.3.0 tarball)
#   nightly-miri Miri and rust-src on the nightly toolchain
#   cargo-fuzz   cargo-fuzz (cargo install, about a minute) for the nightly toolchain
#   heap-bench   valgrind (cachegrind), mimalloc and jemalloc (Debian's libmimalloc-dev,
#                libjemalloc-dev) for make bench-heap
#   clang        clang and ld.lld (the kernel linked with LLVM's tools)
#   cxx          g++ (the C++ operator new/delete test)
set -euo pipefail

# apt-get's own lines (what it fetches, unpacks and sets up) are the
# progress; the first try may fail on a stale package list, then the list is
# refreshed once and the install repeated.
apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "ensure-tools: installing the Debian packages $* with apt-get (their dependencies too; this can take a minute or two)" >&2
        local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -q -o Dpkg::Use-Pty=0)
        "${apt[@]}" install -y "$@" >&2 || {
            echo "ensure-tools: refreshing the package list (apt-get update), then trying again" >&2
            "${apt[@]}" update >&2 && "${apt[@]}" install -y "$@" >&2
        }
        echo "ensure-tools: installed $*" >&2
    else
        echo "ensure-tools: missing: $*. Install the Debian/Ubuntu packages '$*' (or your system's equivalent) and run again." >&2
        exit 1
    fi
}

for what in "$@"; do
    case $what in
    rust-target)
        if ! rustup target list --installed | grep -qx x86_64-unknown-none; then
            echo "ensure-tools: adding the x86_64-unknown-none target with rustup" >&2
            rustup target add x86_64-unknown-none
        fi ;;
    qemu)
        command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86 ;;
    grub)
        { command -v grub-mkrescue >/dev/null && [ -d /usr/lib/grub/i386-pc ] && command -v xorriso >/dev/null; } ||
            apt_install grub-pc-bin grub-common xorriso mtools ;;
    newlib)
        ls /usr/src/newlib/newlib-*.tar.* >/dev/null 2>&1 || apt_install newlib-source ;;
    nightly-miri)
        if ! rustup toolchain list | grep -q '^nightly'; then
            echo "ensure-tools: the nightly toolchain is missing (rustup toolchain install nightly)" >&2; exit 1
        fi
        rustup component list --toolchain nightly --installed | grep -q '^miri' ||
            { echo "ensure-tools: adding Miri and rust-src to the nightly toolchain with rustup" >&2
              rustup component add miri rust-src --toolchain nightly; } ;;
    clang)
        { command -v clang >/dev/null && command -v ld.lld >/dev/null; } || apt_install clang lld ;;
    cxx)
        command -v g++ >/dev/null || apt_install g++ ;;
    cargo-fuzz)
        if ! rustup toolchain list | grep -q '^nightly'; then
            echo "ensure-tools: the nightly toolchain is missing (rustup toolchain install nightly)" >&2; exit 1
        fi
        if ! cargo fuzz --version >/dev/null 2>&1; then
            echo "ensure-tools: installing cargo-fuzz with cargo install (about a minute)" >&2
            cargo install cargo-fuzz --locked
        fi ;;
    heap-bench)
        missing=()
        command -v valgrind >/dev/null || missing+=(valgrind)
        ldconfig -p | grep -q 'libmimalloc\.so\.2 ' || missing+=(libmimalloc-dev)
        ldconfig -p | grep -q 'libjemalloc\.so\.2 ' || missing+=(libjemalloc-dev)
        [ ${#missing[@]} = 0 ] || apt_install "${missing[@]}" ;;
    *) echo "ensure-tools: unknown tool '$what'" >&2; exit 2 ;;
    esac
done
