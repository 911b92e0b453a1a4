# memshim — the whole set-up is `make demo` and `make test` (see README.md).
#
# Each area keeps its rules in mk/<area>.mk and appends its steps to
# TEST_STEPS (run in order by `make test`) and BENCH_STEPS (`make bench`).

SHELL := /bin/bash
CARGO ?= cargo
KTARGET := x86_64-unknown-none
HOST_LIB := target/release/libmemshim.a
HOST_SO := target/release/libmemshim.so
KERNEL_LIB := target/$(KTARGET)/release/libmemshim.a
HEADER := include/memshim.h

TEST_STEPS :=
BENCH_STEPS :=

.PHONY: all lib host-lib kernel-lib header test bench clean
all: lib

include $(sort $(wildcard mk/*.mk))

# `make test`: every step, in order; a summary of all their counts at the end.
test:
	@scripts/run-steps.sh $(TEST_STEPS)

bench:
	@set -e; for s in $(BENCH_STEPS); do $(MAKE) --no-print-directory $$s; done

clean:
	$(CARGO) clean
