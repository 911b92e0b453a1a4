# Frame manager (src/frames/): its unit tests run in `make test-rust`, its C
# tests (c_tests/test_frames.c) in `make test-c`. Here: the global frame
# manager end to end in its own process, and the benchmark.
#
#   make test-frames    tests/frames_global.rs (global init, GlobalFrames, heap from frames)
#   make bench-frames   memshim vs a naive bitmap vs bitmap-allocator (markdown table)

.PHONY: test-frames bench-frames

test-frames:
	$(CARGO) test --test frames_global

bench-frames:
	$(CARGO) run --release -q -p memshim-bench --bin bench-frames

TEST_STEPS += test-frames
BENCH_STEPS += bench-frames
