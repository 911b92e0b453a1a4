/* Boot-time set-up shared by the demo kernel's variants (kmain.c,
   newlib_main.c): console, memshim's panic handler, the boot memory map,
   and the one memshim call a kernel makes. */
#include <memshim.h>

#include "bootinfo.h"
#include "console.h"
#include "platform.h"
#include "selftest.h"
#include "smp.h"
#include "start.h"

void demo_start(const char *variant, uint32_t magic, const void *info, struct selftest_env *env)
{
    smp_init_bsp(); /* the console and memshim_set_cpu_gs read the CPU number */
    console_init();
    kprintf("memshim demo kernel%s: image 0x%lx-0x%lx, identity-mapped to %lu GiB: phys_limit 0x%lx\n",
            variant, (uint64_t)(uintptr_t)__kernel_start, (uint64_t)(uintptr_t)__kernel_end,
            boot_mapped_limit >> 30, boot_mapped_limit);
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

    *env = (struct selftest_env){
        .init_rc = rc,
        .phys_limit = cfg.phys_limit,
        .ram_top = boot.ram_top,
        .usable_bytes = boot.usable_bytes,
    };
}
