#include "lapic.h"

#include "clock.h"
#include "platform.h"

#define REG_ID 0x020
#define REG_TPR 0x080
#define REG_EOI 0x0b0
#define REG_SVR 0x0f0
#define REG_ICR_LOW 0x300
#define REG_ICR_HIGH 0x310
#define REG_LVT_TIMER 0x320
#define REG_TIMER_INITIAL 0x380
#define REG_TIMER_CURRENT 0x390
#define REG_TIMER_DIVIDE 0x3e0

#define SVR_ENABLE (1u << 8)
#define ICR_FIXED (0u << 8)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_PENDING (1u << 12)
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define DIVIDE_BY_16 0x3

#define PDE_PWT (1ull << 3)
#define PDE_PCD (1ull << 4)

extern uint64_t boot_pd[]; /* boot.S: one entry per 2 MiB of the identity map */

static volatile uint32_t *regs;
static uint64_t timer_ticks_per_us = 1;

static uint32_t rd(uint32_t reg)
{
    return regs[reg / 4];
}

static void wr(uint32_t reg, uint32_t value)
{
    regs[reg / 4] = value;
}

void legacy_pic_disable(void)
{
    /* ICW1 (init, ICW4 follows), ICW2 (vector base), ICW3 (cascade on
       IRQ 2), ICW4 (8086 mode), then mask everything. */
    static const uint16_t command[2] = {0x20, 0xa0}, data[2] = {0x21, 0xa1};
    static const uint8_t icw3[2] = {0x04, 0x02};
    for (int i = 0; i < 2; i++) {
        outb(command[i], 0x11);
        outb(data[i], (uint8_t)(LEGACY_PIC_BASE + 8 * i));
        outb(data[i], icw3[i]);
        outb(data[i], 0x01);
        outb(data[i], 0xff);
    }
}

void lapic_setup(uint64_t base)
{
    /* Device registers must not be cached: PCD|PWT on their 2 MiB page. */
    boot_pd[base >> 21] |= PDE_PCD | PDE_PWT;
    __asm__ volatile("invlpg (%0)" : : "r"(base & ~((1ull << 21) - 1)) : "memory");
    regs = (volatile uint32_t *)(uintptr_t)base;
}

void lapic_enable(void)
{
    wr(REG_TPR, 0);
    wr(REG_SVR, SVR_ENABLE | VECTOR_SPURIOUS);
}

uint32_t lapic_id(void)
{
    return rd(REG_ID) >> 24;
}

void lapic_eoi(void)
{
    wr(REG_EOI, 0);
}

/* Sends one IPI and waits (up to 100 ms) until the APIC has delivered it. */
static bool send(uint32_t apic_id, uint32_t command)
{
    wr(REG_ICR_HIGH, apic_id << 24);
    wr(REG_ICR_LOW, command);
    uint64_t end = rdtsc() + 100000 * clock_tsc_per_us();
    while (rd(REG_ICR_LOW) & ICR_PENDING)
        if (rdtsc() > end)
            return false;
    return true;
}

bool lapic_send_init(uint32_t apic_id)
{
    return send(apic_id, ICR_INIT | ICR_LEVEL | ICR_ASSERT);
}

bool lapic_send_startup(uint32_t apic_id, uint8_t vector)
{
    return send(apic_id, ICR_STARTUP | ICR_ASSERT | vector);
}

bool lapic_send_fixed(uint32_t apic_id, uint8_t vector)
{
    return send(apic_id, ICR_FIXED | ICR_ASSERT | vector);
}

uint64_t lapic_timer_calibrate(void)
{
    wr(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    wr(REG_LVT_TIMER, LVT_MASKED | VECTOR_TIMER);
    wr(REG_TIMER_INITIAL, 0xffffffffu);
    uint64_t t0 = rdtsc();
    clock_delay_us(10000);
    uint32_t left = rd(REG_TIMER_CURRENT);
    uint64_t elapsed_us = clock_us(rdtsc() - t0);
    wr(REG_TIMER_INITIAL, 0);
    uint64_t per_us = (0xffffffffu - left) / (elapsed_us ? elapsed_us : 1);
    timer_ticks_per_us = per_us ? per_us : 1;
    return timer_ticks_per_us;
}

void lapic_timer_periodic(uint8_t vector, uint64_t us)
{
    uint64_t count = us * timer_ticks_per_us;
    wr(REG_TIMER_DIVIDE, DIVIDE_BY_16);
    wr(REG_LVT_TIMER, LVT_PERIODIC | vector);
    wr(REG_TIMER_INITIAL, count > 0xffffffffu ? 0xffffffffu : (uint32_t)(count ? count : 1));
}

void lapic_timer_stop(void)
{
    wr(REG_LVT_TIMER, LVT_MASKED | VECTOR_TIMER);
    wr(REG_TIMER_INITIAL, 0);
}
