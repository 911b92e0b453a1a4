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
set -euo pipefail

apt_install() {
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        echo "ensure-tools: installing $* with apt-get" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
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
            rustup component add miri rust-src --toolchain nightly ;;
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
