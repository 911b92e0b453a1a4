# C++: memshim exports the replaceable global operator new/delete family
# (src/ffi/cxx.rs). c_tests/test_cxx.cpp allocates only with new/delete and
# proves memshim served it, linked dynamically and -static.
#
#   make test-cxx

.PHONY: test-cxx
test-cxx: host-lib
	@scripts/ensure-tools.sh cxx
	@c_tests/cxx.sh

TEST_STEPS += test-cxx
