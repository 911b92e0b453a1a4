/* The memshim demo kernel: boot.S enters here in long mode with the
   Multiboot magic and the boot information's physical address. */
#include <memshim.h>

#include "bootinfo.h"
#include "console.h"
#include "platform.h"
#include "selftest.h"

_Noreturn void kmain(uint32_t magic, const void *info);

_Noreturn void kmain(uint32_t magic, const void *info)
{
    console_init();
    kprintf("memshim demo kernel: image 0x%lx-0x%lx, identity-mapped to %lu GiB\n",
            (uint64_t)(uintptr_t)__kernel_start, (uint64_t)(uintptr_t)__kernel_end,
            boot_mapped_limit >> 30);
    memshim_set_panic_handler(selftest_panic_handler, NULL);

    struct boot_summary boot;
    bootinfo_print(magic, info, &boot);

    struct memshim_boot_config cfg = {
        .kernel_start = (uintptr_t)__kernel_start,
        .kernel_end = (uintptr_t)__kernel_end,
        .phys_offset = 0, /* identity map */
        .phys_limit = boot_mapped_limit,
    };
    int rc = memshim_init_multiboot(magic, info, &cfg);
    kprintf("memshim_init_multiboot: %d (%s)\n", rc, memshim_strerror(rc));
    selftest_print_stats("after init");

    struct selftest_env env = {rc, cfg.phys_limit, boot.ram_top, boot.usable_bytes};
    unsigned failed = selftest_run(&env);
    kprintf("memshim demo: %s\n", failed ? "FAIL" : "PASS");
    qemu_exit(failed == 0);
}
