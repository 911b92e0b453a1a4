# The Rust API: rustdoc (warning-free, examples compiled and run) and the
# no_std kernel example (examples/rust-kernel/), built for
# x86_64-unknown-none, linted and booted in QEMU.
#
#   make test-doc          cargo doc -D warnings, cargo test --doc
#   make test-rust-kernel  the example kernel: clippy, build, boot

RUST_KERNEL_DIR := examples/rust-kernel
RUST_KERNEL_OUT := target/rust-kernel
RUST_KERNEL_ELF := $(RUST_KERNEL_OUT)/$(KTARGET)/release/memshim-rust-kernel

.PHONY: test-doc test-rust-kernel
test-doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps -p memshim
	$(CARGO) test --doc -p memshim

test-rust-kernel: rust-target qemu-tools
	rustfmt --check --edition 2021 $(RUST_KERNEL_DIR)/src/main.rs $(RUST_KERNEL_DIR)/build.rs
	CARGO_TARGET_DIR=$(RUST_KERNEL_OUT) $(CARGO) clippy --release --manifest-path $(RUST_KERNEL_DIR)/Cargo.toml \
		--target $(KTARGET) -- -D warnings
	CARGO_TARGET_DIR=$(RUST_KERNEL_OUT) $(CARGO) build --release --manifest-path $(RUST_KERNEL_DIR)/Cargo.toml \
		--target $(KTARGET)
	scripts/boot.sh --quiet --mem 256M --accel $(or $(ACCEL),tcg) kernel $(RUST_KERNEL_ELF)

TEST_STEPS += test-doc test-rust-kernel
