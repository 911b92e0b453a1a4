# A second kernel (kernel_demo/minimal/): written from the README alone,
# linked with a deliberately minimal linker script by gcc + GNU ld, by
# clang + ld.lld, and as a higher-half kernel, and booted in QEMU. Proves
# the kernel archive needs no .got (or anything else) placed by the script.
#
#   make test-kernel-minimal [ACCEL=tcg|kvm]

.PHONY: test-kernel-minimal
test-kernel-minimal: kernel-lib
	@scripts/test-minimal-kernel.sh --accel $(or $(ACCEL),tcg)

TEST_STEPS += test-kernel-minimal
