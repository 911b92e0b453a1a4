# Core: the library (host and kernel archives), the header, Rust and C tests.

lib: host-lib kernel-lib

# The host archive and shared object. finish-archive.sh leaves the archive
# exporting memshim's C symbols only (see the script).
host-lib:
	$(CARGO) build --release
	scripts/finish-archive.sh $(HOST_LIB)

kernel-lib: rust-target
	$(CARGO) build --release --target $(KTARGET)
	scripts/finish-archive.sh $(KERNEL_LIB)

rust-target:
	@scripts/ensure-tools.sh rust-target

# Regenerate include/memshim.h from the Rust source (cbindgen runs in build.rs).
header:
	$(CARGO) build
	cp "$$(ls -t target/debug/build/memshim-*/out/memshim.h | head -1)" $(HEADER)

.PHONY: rust-target test-rust test-lint test-miri
test-rust:
	$(CARGO) test --lib

test-lint: rust-target
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy -p memshim-bench $(addprefix -p bench-shim-,$(BENCH_SHIMS)) -p bench-shim --all-targets -- -D warnings
	$(CARGO) clippy --release --target $(KTARGET) -- -D warnings

# Miri over the heap's pure-Rust tests (the C symbols are left out: Miri
# provides its own malloc). About two minutes.
test-miri:
	@scripts/ensure-tools.sh nightly-miri
	MIRIFLAGS="-Zmiri-ignore-leaks -Zmiri-permissive-provenance" \
	  $(CARGO) +nightly miri test -p memshim --lib --no-default-features heap::

TEST_STEPS += test-lint test-rust test-miri
