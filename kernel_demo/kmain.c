/* The memshim demo kernel: boot.S enters here in long mode with the
   Multiboot magic and the boot information's physical address. With more
   than one CPU (QEMU -smp), the self-test also starts the others and runs
   memshim on all of them at once (smptest.c). */
#include <memshim.h>

#include "console.h"
#include "platform.h"
#include "selftest.h"
#include "smptest.h"
#include "start.h"

_Noreturn void kmain(uint32_t magic, const void *info);

_Noreturn void kmain(uint32_t magic, const void *info)
{
    struct selftest_env env;
    demo_start("", magic, info, &env);
    smptest_prepare(&env);
    unsigned failed = selftest_run(&env);
    kprintf("memshim demo: %s\n", failed ? "FAIL" : "PASS");
    qemu_exit(failed == 0);
}
