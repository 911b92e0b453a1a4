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
