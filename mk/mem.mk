# Memory functions (src/mem/): the machine-code check of the finished
# archives and the side-by-side benchmark. Their correctness tests are Rust
# unit tests (src/mem/tests.rs), run by test-rust.

.PHONY: test-mem-calls bench-mem

# memcpy, memmove, memset, memcmp, bcmp and bzero never call any of those
# six, however deep (LLVM turns copy loops into memcpy calls), and touch a
# vector register only behind a test of the path byte's vector bits, which
# the kernel build sets only in memshim_enable_simd(): its default path
# never touches vector state. The self-test proves the checker finds
# planted calls and unguarded vector instructions.
test-mem-calls: host-lib kernel-lib
	scripts/check-mem-calls.sh --self-test
	scripts/check-mem-calls.sh --no-vector $(KERNEL_LIB)
	scripts/check-mem-calls.sh --no-vector $(HOST_LIB)

# Tables on stdout (also kept in target/bench-mem.md; a full run, without
# MEM_BENCH_ARGS, also in bench/results/mem.md) and the plot
# docs/benchmarks.md shows. About 3.5 minutes; `MEM_BENCH_ARGS=--quick` for
# a rough look.
MEM_BENCH_SVG ?= docs/mem-bench.svg
MEM_BENCH_ARGS ?=
bench-mem:
	$(CARGO) build --release -p memshim-bench --bin bench-mem
	@mkdir -p $(dir $(MEM_BENCH_SVG))
	set -o pipefail; target/release/bench-mem $(MEM_BENCH_ARGS) --svg $(MEM_BENCH_SVG) | tee target/bench-mem.md
	$(if $(MEM_BENCH_ARGS),,cp target/bench-mem.md bench/results/mem.md)

TEST_STEPS += test-mem-calls
BENCH_STEPS += bench-mem
