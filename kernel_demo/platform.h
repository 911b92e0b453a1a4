/* What the demo kernel gets from the boot code, the linker script and QEMU. */
#ifndef DEMO_PLATFORM_H
#define DEMO_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

/* Physical range of the kernel image, from kernel.ld. */
extern char __kernel_start[], __kernel_end[];
/* End of the identity map boot.S built: memshim's phys_limit. */
extern const uint64_t boot_mapped_limit;

static inline void outb(uint16_t port, uint8_t value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static inline void outl(uint16_t port, uint32_t value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port));
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t value)
{
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
}

#define MSR_GS_BASE 0xC0000101

static inline void cpu_relax(void)
{
    __asm__ volatile("pause" ::: "memory");
}

static inline void irq_enable(void)
{
    __asm__ volatile("sti" ::: "memory");
}

static inline void irq_disable(void)
{
    __asm__ volatile("cli" ::: "memory");
}

/* Ends the run: QEMU (isa-debug-exit at 0xf4) exits with status 33 when
   `pass`, 35 otherwise; without that device the CPU halts. */
_Noreturn void qemu_exit(bool pass);

/* Called by boot.S for every CPU exception. */
_Noreturn void boot_exception(uint64_t vector, uint64_t error, uint64_t rip, uint64_t cr2);

#endif
