#include "platform.h"

#include "console.h"
#include "smp.h"

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_PASS 0x10 /* QEMU exit status (0x10 << 1) | 1 = 33 */
#define DEBUG_EXIT_FAIL 0x11 /* 35 */

_Noreturn void qemu_exit(bool pass)
{
    outl(DEBUG_EXIT_PORT, pass ? DEBUG_EXIT_PASS : DEBUG_EXIT_FAIL);
    for (;;)
        __asm__ volatile("cli; hlt");
}

static const char *const exception_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
    "#BR bound range", "#UD invalid opcode", "#NM device not available",
    "#DF double fault", "coprocessor overrun", "#TS invalid TSS",
    "#NP segment not present", "#SS stack fault", "#GP general protection",
    "#PF page fault", "reserved", "#MF x87 error", "#AC alignment check",
    "#MC machine check", "#XM SIMD exception", "#VE virtualization",
    "#CP control protection", "reserved", "reserved", "reserved", "reserved",
    "reserved", "reserved", "#HV hypervisor injection", "#VC VMM communication",
    "#SX security", "reserved",
};

_Noreturn void boot_exception(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2)
{
    kprintf("\nCPU exception %lu (%s) on CPU %u at rip=0x%lx error=0x%lx cr2=0x%lx\n", vector,
            vector < 32 ? exception_names[vector] : "?", this_cpu()->number, rip, error, cr2);
    kprintf("memshim demo: FAIL\n");
    qemu_exit(false);
}
