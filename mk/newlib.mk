# newlib: memshim replaces newlib's allocator, newlib's own internal
# allocations included. scripts/build-newlib.sh builds newlib's libc.a once
# (cached under target/newlib/); the host program runs as a plain Linux
# process without glibc; `make demo-newlib` boots a kernel linked with it.

NEWLIB_DIR := target/newlib/x86_64-elf
NEWLIB_LIBC := $(NEWLIB_DIR)/lib/libc.a
NL_OUT := target/newlib-tests
NL_HOST_ELF := $(NL_OUT)/newlib-host.elf

# newlib's headers first, then gcc's own (stddef.h, stdarg.h); no glibc headers.
# The target is newlib's x86_64-elf, not Linux: the system gcc's Linux macros
# are dropped, so headers (memshim.h's host-only declarations included) see
# the freestanding target these objects are for.
NL_CFLAGS := -U__linux__ -U__linux -Ulinux -U__gnu_linux__ \
	-std=gnu11 -O2 -Wall -Wextra -Werror -fno-builtin -ffreestanding -mno-red-zone -fno-pic -fno-pie -fno-stack-protector \
	-nostdinc -isystem $(NEWLIB_DIR)/include -isystem $(shell gcc -print-file-name=include) \
	-Iinclude -Inewlib_tests

# Every name newlib's code or the program may call. Forcing them undefined
# makes ld take memshim's object before it ever looks into libc.a, whose
# mallocr.o would otherwise win silently once an sbrk exists.
NL_ALLOC_NAMES := _malloc_r _free_r _calloc_r _realloc_r _memalign_r _malloc_usable_size_r \
	malloc free calloc realloc memalign malloc_usable_size posix_memalign aligned_alloc
comma := ,
NL_LDFLAGS = -Wl,-z,noexecstack -Wl,-Map=$@.map \
	$(addprefix -Wl$(comma)--undefined=,$(NL_ALLOC_NAMES)) \
	$(addprefix -Wl$(comma)-y$(comma),$(NL_ALLOC_NAMES))

NL_HOST_SRC := newlib_tests/host_main.c newlib_tests/checks.c newlib_tests/nosys.c
NL_HDRS := newlib_tests/checks.h $(HEADER)

.PHONY: newlib test-newlib-host test-newlib-kernel demo-newlib

newlib: $(NEWLIB_LIBC)

$(NEWLIB_LIBC): scripts/build-newlib.sh
	@scripts/build-newlib.sh

$(NL_OUT)/%.o: newlib_tests/%.c $(NL_HDRS) $(NEWLIB_LIBC)
	@mkdir -p $(NL_OUT)
	gcc $(NL_CFLAGS) -c $< -o $@

# Link order: program objects, memshim, newlib's libc.a, libgcc. The map and
# the -y trace (ld prints it on stderr) are what check-elf.sh reads.
define nl_link
	@echo "link $@ (objects, $(KERNEL_LIB), $(NEWLIB_LIBC), libgcc)"
	@gcc $(NL_EXTRA_LDFLAGS) $(NL_LDFLAGS) -o $@ $(filter %.o,$^) $(KERNEL_LIB) $(NEWLIB_LIBC) -lgcc 2>$@.trace || \
		{ cat $@.trace >&2; rm -f $@; exit 1; }
	@grep -v -e ': definition of ' -e ': reference to ' $@.trace >&2 || true
endef

$(NL_HOST_ELF): NL_EXTRA_LDFLAGS = -nostdlib -static -no-pie
$(NL_HOST_ELF): $(NL_HOST_SRC:newlib_tests/%.c=$(NL_OUT)/%.o) $(KERNEL_LIB) $(NEWLIB_LIBC)
	$(nl_link)

# The program's own checks, then the ELF's symbol evidence; each prints
# "N passed, N failed".
test-newlib-host: kernel-lib $(NEWLIB_LIBC)
	@$(MAKE) --no-print-directory $(NL_HOST_ELF)
	./$(NL_HOST_ELF)
	newlib_tests/check-elf.sh $(NL_HOST_ELF)

# The newlib kernel: kernel_demo's boot code, console, boot-info printer,
# self-test and linker script (KDEMO_COMMON_OBJS, mk/kernel.mk) with
# kernel_demo/newlib_main.c in place of kmain.c. Its own objects are built
# with newlib's headers and SSE allowed.
NL_KERNEL_ELF := $(NL_OUT)/kernel-newlib.elf
NL_KERNEL_OBJS := $(NL_OUT)/newlib_main.o $(NL_OUT)/checks.o $(NL_OUT)/nosys.o

$(NL_OUT)/newlib_main.o: $(KDEMO_DIR)/newlib_main.c $(NL_HDRS) $(wildcard $(KDEMO_DIR)/*.h) $(NEWLIB_LIBC)
	@mkdir -p $(NL_OUT)
	gcc $(NL_CFLAGS) -I$(KDEMO_DIR) -c $< -o $@

$(NL_KERNEL_ELF): NL_EXTRA_LDFLAGS = $(KERNEL_LDFLAGS)
$(NL_KERNEL_ELF): $(KDEMO_COMMON_OBJS) $(NL_KERNEL_OBJS) $(KDEMO_DIR)/kernel.ld $(KERNEL_LIB) $(NEWLIB_LIBC)
	$(nl_link)

# Symbol evidence first, then the boot (serial log on the terminal; exit
# status from the kernel's verdict, like `make demo`).
demo-newlib: qemu-tools kernel-lib $(NEWLIB_LIBC)
	@$(MAKE) --no-print-directory $(NL_KERNEL_ELF)
	newlib_tests/check-elf.sh $(NL_KERNEL_ELF)
	scripts/boot.sh --mem $(MEM) --accel $(ACCEL) kernel $(NL_KERNEL_ELF)

test-newlib-kernel: demo-newlib

TEST_STEPS += test-newlib-host test-newlib-kernel
