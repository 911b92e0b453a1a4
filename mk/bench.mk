# Heap benchmark (bench/heap/runner.c, bench/src/bin/heap.rs, bench/shims/):
# memshim's malloc side by side with glibc's, mimalloc, jemalloc and five
# Rust allocator crates behind C-ABI wrappers, all through the same C ABI,
# in one run; tables, CSV and a plot in bench/results/.
#
#   make bench-heap                           the full run (about 8 minutes)
#   make bench-heap BENCH_HEAP_ARGS=--quick   a rough look in about a minute;
#                                             results in target/bench-heap/results/
#   BENCH_HEAP_ARGS="--only memshim,glibc --workloads pairs-16,random"   a subset
#
# valgrind, mimalloc and jemalloc are installed with apt-get when missing
# (scripts/ensure-tools.sh heap-bench).

HEAP_RUNNER := target/bench-heap/heap-runner
# The C-ABI wrappers, bench/shims/<name>: target/release/libbench_<name>.so.
# Built by a cargo call of their own: `--bin` would limit every package
# named with it to that binary, and the wrappers would never be built.
BENCH_SHIMS := talc rlsf lla buddy dlmalloc
BENCH_HEAP_ARGS ?=

.PHONY: bench-heap bench-heap-tools

$(HEAP_RUNNER): bench/heap/runner.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -o $@ $< -ldl -lpthread

bench-heap-tools:
	@scripts/ensure-tools.sh heap-bench

bench-heap: bench-heap-tools host-lib $(HEAP_RUNNER)
	$(CARGO) build --release $(addprefix -p bench-shim-,$(BENCH_SHIMS))
	$(CARGO) build --release -p memshim-bench --bin bench-heap
	target/release/bench-heap $(BENCH_HEAP_ARGS)

BENCH_STEPS += bench-heap
