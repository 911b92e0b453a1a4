# The demo kernel (kernel_demo/): a C kernel booted via Multiboot that links
# the kernel archive and runs memshim's self-test in QEMU.
#
#   make demo      [MEM=256M] [SMP=1] [ACCEL=tcg|kvm]  QEMU -kernel (Multiboot 1)
#   make demo-grub [MEM=256M] [SMP=1] [ACCEL=tcg|kvm]  a GRUB ISO (Multiboot 2)
#
# SMP=N gives the machine N CPUs (1 to 16); with more than one the kernel
# starts them all and runs memshim on every one at once (smptest.c), and
# software emulation runs them on host threads of their own.
#
# Exit status 0 only on "memshim demo: PASS"; FAIL, a hang (timeout) or a
# triple fault fail. Software emulation is the default (KVM is nested and
# slow to start on our machines).

KDEMO_DIR := kernel_demo
KDEMO_OUT := target/kernel_demo
KERNEL_ELF := $(KDEMO_OUT)/kernel.elf
KERNEL_ISO := $(KDEMO_OUT)/kernel.iso
MEM ?= 256M
SMP ?= 1
ACCEL ?= tcg
# `make test` boots both ways at each size; 4G puts 1 GiB of RAM above 4 GiB.
DEMO_TEST_MEMS ?= 128M 4G
# ... and with each of these CPU counts (QEMU -kernel, 256M).
DEMO_TEST_SMPS ?= 2 4

KERNEL_CC ?= $(CC)
KERNEL_CFLAGS := -std=c11 -O2 -g -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-fno-asynchronous-unwind-tables -mno-red-zone -mno-mmx -mno-sse -mno-sse2 \
	-Wall -Wextra -Werror -Iinclude
KERNEL_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,$(KDEMO_DIR)/kernel.ld \
	-Wl,-z,max-page-size=4096 -Wl,--no-warn-rwx-segments \
	-Wl,--orphan-handling=error -Wl,--build-id=none
# Everything but kmain: what another variant of the demo (newlib) reuses.
KDEMO_COMMON_OBJS := $(patsubst %,$(KDEMO_OUT)/%.o,boot cpu_entry platform console bootinfo \
	selftest start acpi clock lapic smp smptest)
KDEMO_OBJS := $(KDEMO_COMMON_OBJS) $(KDEMO_OUT)/kmain.o

.PHONY: demo demo-grub qemu-tools grub-tools test-demo

demo: qemu-tools kernel-lib
	@$(MAKE) --no-print-directory $(KERNEL_ELF)
	scripts/boot.sh --mem $(MEM) --smp $(SMP) --accel $(ACCEL) kernel $(KERNEL_ELF)

demo-grub: qemu-tools grub-tools kernel-lib
	@$(MAKE) --no-print-directory $(KERNEL_ISO)
	scripts/boot.sh --mem $(MEM) --smp $(SMP) --accel $(ACCEL) iso $(KERNEL_ISO)

qemu-tools:
	@scripts/ensure-tools.sh qemu

grub-tools:
	@scripts/ensure-tools.sh grub

$(KDEMO_OUT):
	mkdir -p $@

$(KDEMO_OUT)/%.o: $(KDEMO_DIR)/%.c $(wildcard $(KDEMO_DIR)/*.h) $(HEADER) | $(KDEMO_OUT)
	$(KERNEL_CC) $(KERNEL_CFLAGS) -c $< -o $@

$(KDEMO_OUT)/%.o: $(KDEMO_DIR)/%.S | $(KDEMO_OUT)
	$(KERNEL_CC) $(KERNEL_CFLAGS) -c $< -o $@

$(KERNEL_ELF): $(KDEMO_OBJS) $(KDEMO_DIR)/kernel.ld $(KERNEL_LIB)
	$(KERNEL_CC) $(KERNEL_LDFLAGS) -o $@ $(KDEMO_OBJS) $(KERNEL_LIB)

$(KERNEL_ISO): $(KERNEL_ELF) $(KDEMO_DIR)/grub.cfg
	rm -rf $(KDEMO_OUT)/iso
	mkdir -p $(KDEMO_OUT)/iso/boot/grub
	cp $(KERNEL_ELF) $(KDEMO_OUT)/iso/boot/kernel.elf
	cp $(KDEMO_DIR)/grub.cfg $(KDEMO_OUT)/iso/boot/grub/grub.cfg
	grub-mkrescue -o $@ $(KDEMO_OUT)/iso >$(KDEMO_OUT)/grub-mkrescue.log 2>&1 || \
		{ cat $(KDEMO_OUT)/grub-mkrescue.log; exit 1; }

# Both boot paths at each size in DEMO_TEST_MEMS, then one boot with each
# CPU count in DEMO_TEST_SMPS; one count per boot. Each boot has its
# timeout (scripts/boot.sh). The SMP boots print their figures (interrupts,
# fairness, cycles per pair) even when they pass.
test-demo: qemu-tools grub-tools kernel-lib
	@$(MAKE) --no-print-directory $(KERNEL_ELF) $(KERNEL_ISO)
	@pass=0; fail=0; \
	for mem in $(DEMO_TEST_MEMS); do \
		for way in kernel iso; do \
			file=$(KERNEL_ELF); [ $$way = iso ] && file=$(KERNEL_ISO); \
			if scripts/boot.sh --quiet --mem $$mem --accel $(ACCEL) $$way $$file; \
			then pass=$$((pass + 1)); else fail=$$((fail + 1)); fi; \
		done; \
	done; \
	for smp in $(DEMO_TEST_SMPS); do \
		if scripts/boot.sh --quiet --figures --smp $$smp --accel $(ACCEL) kernel $(KERNEL_ELF); \
		then pass=$$((pass + 1)); else fail=$$((fail + 1)); fi; \
	done; \
	echo "$$pass passed, $$fail failed"; [ $$fail = 0 ]

TEST_STEPS += test-demo
