/* The local APIC (xAPIC, memory-mapped): identity, end of interrupt,
   inter-processor interrupts and the timer. */
#ifndef DEMO_LAPIC_H
#define DEMO_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

/* Interrupt vectors the demo uses (cpu_entry.S has their entry stubs). */
#define VECTOR_TIMER 0x40
#define VECTOR_WAKEUP 0x41
#define VECTOR_SPURIOUS 0xff

/* The legacy 8259 PICs out of the way before interrupts are enabled: the
   BIOS leaves them at vectors 8-15, the CPU's exception vectors (the PIT's
   IRQ 0 would arrive as a "double fault"). Remapped to LEGACY_PIC_BASE..+15
   and every line masked. */
#define LEGACY_PIC_BASE 0x20
void legacy_pic_disable(void);

/* Where the registers are (physical = virtual, identity map); maps their
   2 MiB page uncached. Once, on the BSP, before any other call. */
void lapic_setup(uint64_t base);

/* Software-enables this CPU's local APIC (spurious vector, priority 0). */
void lapic_enable(void);

uint32_t lapic_id(void);
void lapic_eoi(void);

/* INIT, then STARTUP with `vector` (the trampoline's page number), to one
   CPU. Returns false when the APIC did not accept an IPI. */
bool lapic_send_init(uint32_t apic_id);
bool lapic_send_startup(uint32_t apic_id, uint8_t vector);
/* A fixed interrupt with `vector` to one CPU. */
bool lapic_send_fixed(uint32_t apic_id, uint8_t vector);

/* Timer ticks per microsecond at divide-by-16 (measured on the BSP
   against the TSC, which clock_init calibrated). */
uint64_t lapic_timer_calibrate(void);
/* This CPU's timer: `vector` every `us` microseconds; stop masks it. */
void lapic_timer_periodic(uint8_t vector, uint64_t us);
void lapic_timer_stop(void);

#endif
