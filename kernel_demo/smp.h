/* Several CPUs in the demo kernel: the per-CPU area GS points at, starting
   the other CPUs (INIT-SIPI-SIPI through cpu_entry.S's trampoline), and running a
   function on every CPU at once. */
#ifndef DEMO_SMP_H
#define DEMO_SMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "acpi.h"

#define SMP_MAX_CPUS ACPI_MAX_CPUS

/* One per CPU; IA32_GS_BASE points at it from the CPU's first C code on. */
struct cpu {
    uint32_t number;  /* gs:[0], what memshim_set_cpu_gs reads: 0 = BSP, APs 1.. */
    uint32_t apic_id;
    struct cpu *self; /* gs:[8], for this_cpu() */
    volatile uint32_t online;
    volatile uint32_t failed; /* it found a problem, described in `error` */
    char error[200];
} __attribute__((aligned(64)));

extern struct cpu cpus[SMP_MAX_CPUS];

static inline struct cpu *this_cpu(void)
{
    struct cpu *c;
    __asm__("mov %%gs:8, %0" : "=r"(c));
    return c;
}

/* Points GS at CPU 0's area: first thing at boot, before anything prints. */
void smp_init_bsp(void);

/* CPUs online (1 until smp_start). */
unsigned smp_cpus(void);

/* Starts the CPUs `found` lists besides the one running (the BSP), one at a
   time, each with a memshim-allocated stack. Returns how many are online
   in all; on a problem, `why` says which CPU and what. */
unsigned smp_start(const struct acpi_cpus *found, char *why, size_t len);

/* Runs fn(cpu, arg) on every online CPU at once (CPU 0 too), with
   interrupts enabled, and returns when all have returned. The other CPUs
   sleep (hlt) between runs. */
void smp_run(void (*fn)(struct cpu *c, void *arg), void *arg);

/* Waits until `n` CPUs (numbers 0..n-1) have called it with the same b. */
struct smp_barrier {
    volatile uint32_t arrived;
    volatile uint32_t round;
};
void smp_barrier_wait(struct smp_barrier *b, unsigned n);

/* Records a problem the calling CPU found (the first one is kept) and makes
   smp_failed() true everywhere, so the other CPUs stop early. */
void cpu_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool smp_failed(void);
/* Prints every CPU's problem ("CPU n: ...") and clears them; returns how
   many CPUs had one. */
unsigned smp_report_failures(void);

#endif
