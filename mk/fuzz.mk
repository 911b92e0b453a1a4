# Fuzz targets (fuzz/): cargo-fuzz and libFuzzer on the nightly toolchain,
# under AddressSanitizer. fuzz/ is a cargo project of its own, outside the
# root workspace.
#
#   make fuzz [FUZZ_SECONDS=60] [T=multiboot]   each target (or T) for FUZZ_SECONDS
#   make fuzz-smoke                             each target for 10 s (a `make test` step,
#                                               about a minute with the build)
#
# Both end with "N passed, N failed" (a target passes when it found no
# crash). A crash's input is kept in fuzz/artifacts/<target>/ and printed as
# hex; replay it with `cargo +nightly fuzz run <target> <file>`.

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := heap_actions multiboot

.PHONY: fuzz fuzz-smoke fuzz-tools

fuzz: fuzz-tools
	@fuzz/run.sh $(FUZZ_SECONDS) $(or $(T),$(FUZZ_TARGETS))

fuzz-smoke: fuzz-tools
	@fuzz/run.sh 10 $(FUZZ_TARGETS)

fuzz-tools:
	@scripts/ensure-tools.sh cargo-fuzz

TEST_STEPS += fuzz-smoke
