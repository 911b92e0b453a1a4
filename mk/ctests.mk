# C tests against the host build (c_tests/). Every c_tests/test_*.c is one
# program using c_tests/harness.h; c_tests/run.sh builds each one against
# target/release/libmemshim.a ahead of glibc, both as a dynamic executable and
# -static, and runs it (a build failure counts as a failed test).
#
#   make test-c           every test_*.c, dynamic and -static
#   make test-c-ref       the same tests against glibc's malloc (checks the tests)
#   make test-preload     LD_PRELOAD=target/release/libmemshim.so on ls, sort, python3, ...
#   make test-symbols     libm still wins, kernel archive undefined symbols, exports, header
#   make test-c T=test_malloc             one program
#   make test-c T=test_api F=stats        ... only its tests whose names contain "stats"

.PHONY: test-c test-c-ref test-preload test-symbols

test-c: host-lib
	@FILTER="$(F)" c_tests/run.sh dyn,static $(T)

test-c-ref:
	@FILTER="$(F)" c_tests/run.sh ref $(T)

test-preload: host-lib
	@c_tests/preload.sh

test-symbols: host-lib kernel-lib
	@c_tests/symbols.sh

TEST_STEPS += test-c test-preload test-symbols

# The soak (c_tests/soak.c): threads through every entry point with content
# checks, cross-thread frees, forks, periodic memshim_check(); at the end
# every byte and span back. `make soak` runs it for minutes; `make test`
# runs a short one.
SOAK_SECONDS ?= 300
SOAK_THREADS ?= 4
.PHONY: soak test-soak
target/c_tests/soak: c_tests/soak.c $(HOST_LIB) $(HEADER)
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -fno-builtin -Iinclude -O1 -g $< $(HOST_LIB) -lpthread -lm -o $@

soak: host-lib target/c_tests/soak
	target/c_tests/soak $(SOAK_SECONDS) $(SOAK_THREADS)

test-soak: host-lib target/c_tests/soak
	target/c_tests/soak 8 4

TEST_STEPS += test-soak
