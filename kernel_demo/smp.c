#include "smp.h"

#include <stdarg.h>
#include <memshim.h>

#include "clock.h"
#include "console.h"
#include "lapic.h"
#include "platform.h"

/* cpu_entry.S copies nothing itself: the trampoline is linked into the image and
   copied here. TRAMPOLINE_BASE must match cpu_entry.S; the SIPI vector is its
   page number. Below 1 MiB memshim never hands out memory, so this page is
   the kernel's; the boot loader may have left boot information there, but
   memshim_init_multiboot has read it by the time the APs start. */
#define TRAMPOLINE_BASE 0x8000
#define AP_STACK_BYTES (64 * 1024)
#define AP_START_TIMEOUT_US 2000000 /* generous: software emulation, busy host */

extern const char ap_trampoline[], ap_trampoline_end[];
extern void isr_timer(void), isr_wakeup(void), isr_spurious(void);
extern uint8_t idt[]; /* boot.S: 256 gates of 16 bytes */

struct cpu cpus[SMP_MAX_CPUS];
static unsigned online = 1;
static volatile bool any_failed;

/* Read by cpu_entry.S (ap_long_mode) and ap_main for the one AP coming up. */
uint64_t ap_boot_stack;
static struct cpu *volatile ap_booting;

_Noreturn void ap_main(void);
void wakeup_interrupt(uint64_t rip);

static void set_gs(struct cpu *c)
{
    c->self = c;
    wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)c);
}

void smp_init_bsp(void)
{
    cpus[0].number = 0;
    set_gs(&cpus[0]);
}

unsigned smp_cpus(void)
{
    return online;
}

static void set_gate(unsigned vector, void (*handler)(void))
{
    uint64_t a = (uint64_t)(uintptr_t)handler;
    uint8_t *g = idt + vector * 16;
    uint16_t lo = (uint16_t)a, mid = (uint16_t)(a >> 16), sel = 0x08, type = 0x8e00;
    uint32_t hi = (uint32_t)(a >> 32), zero = 0;
    memcpy(g, &lo, 2);
    memcpy(g + 2, &sel, 2);
    memcpy(g + 4, &type, 2); /* present, DPL 0, interrupt gate */
    memcpy(g + 6, &mid, 2);
    memcpy(g + 8, &hi, 4);
    memcpy(g + 12, &zero, 4);
}

void wakeup_interrupt(uint64_t rip)
{
    (void)rip;
    lapic_eoi();
}

/* ---- running a function on every CPU ---- */

static struct {
    void (*fn)(struct cpu *c, void *arg);
    void *arg;
} job;
static volatile uint32_t job_round, jobs_done;

static void run_job(struct cpu *c)
{
    irq_enable();
    job.fn(c, job.arg);
    irq_disable();
}

void smp_run(void (*fn)(struct cpu *c, void *arg), void *arg)
{
    job.fn = fn;
    job.arg = arg;
    __atomic_store_n(&jobs_done, 0, __ATOMIC_RELAXED);
    __atomic_add_fetch(&job_round, 1, __ATOMIC_RELEASE);
    for (unsigned i = 1; i < online; i++)
        if (!lapic_send_fixed(cpus[i].apic_id, VECTOR_WAKEUP))
            cpu_fail("the wake-up IPI to CPU %u (APIC %u) was not delivered", i, cpus[i].apic_id);
    run_job(&cpus[0]);
    while (__atomic_load_n(&jobs_done, __ATOMIC_ACQUIRE) != online - 1)
        cpu_relax();
}

/* An AP between runs: asleep until the wake-up IPI. Interrupts are off
   between the check and `hlt`; `sti` takes effect after the instruction
   that follows it, so an IPI that arrives meanwhile wakes the `hlt`. */
static _Noreturn void ap_loop(struct cpu *c)
{
    uint32_t seen = 0;
    for (;;) {
        uint32_t round;
        while ((round = __atomic_load_n(&job_round, __ATOMIC_ACQUIRE)) == seen)
            __asm__ volatile("sti; hlt; cli" ::: "memory");
        seen = round;
        run_job(c);
        __atomic_add_fetch(&jobs_done, 1, __ATOMIC_RELEASE);
    }
}

void smp_barrier_wait(struct smp_barrier *b, unsigned n)
{
    uint32_t round = __atomic_load_n(&b->round, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL) == n) {
        __atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->round, round + 1, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&b->round, __ATOMIC_ACQUIRE) == round)
        cpu_relax();
}

/* ---- problems found on any CPU ---- */

void cpu_fail(const char *fmt, ...)
{
    struct cpu *c = this_cpu();
    if (!c->failed) {
        va_list ap;
        va_start(ap, fmt);
        kvsnprintf(c->error, sizeof c->error, fmt, ap);
        va_end(ap);
        __atomic_store_n(&c->failed, 1, __ATOMIC_RELEASE);
    }
    any_failed = true;
}

bool smp_failed(void)
{
    return any_failed;
}

unsigned smp_report_failures(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < SMP_MAX_CPUS; i++)
        if (cpus[i].failed) {
            kprintf("     CPU %u: %s\n", i, cpus[i].error);
            cpus[i].failed = 0;
            n++;
        }
    any_failed = false;
    return n;
}

/* ---- bringing the APs up ---- */

_Noreturn void ap_main(void)
{
    struct cpu *c = ap_booting;
    set_gs(c);
    lapic_enable();
    if (lapic_id() != c->apic_id)
        cpu_fail("came up with APIC id %u, expected %u", lapic_id(), c->apic_id);
    __atomic_store_n(&c->online, 1, __ATOMIC_RELEASE);
    ap_loop(c);
}

static bool wait_online(struct cpu *c, uint64_t us)
{
    uint64_t end = rdtsc() + us * clock_tsc_per_us();
    while (!__atomic_load_n(&c->online, __ATOMIC_ACQUIRE))
        if (rdtsc() > end)
            return false;
    return true;
}

/* INIT, 10 ms, STARTUP, and a second STARTUP if the first did not take
   (the sequence Intel's MP specification gives). */
static bool start_one(struct cpu *c, char *why, size_t len)
{
    void *stack = aligned_alloc(16, AP_STACK_BYTES);
    if (!stack) {
        ksnprintf(why, len, "no memory for CPU %u's stack", c->number);
        return false;
    }
    ap_boot_stack = (uint64_t)(uintptr_t)stack + AP_STACK_BYTES;
    ap_booting = c;
    uint8_t vector = TRAMPOLINE_BASE >> 12;
    bool sent = lapic_send_init(c->apic_id);
    clock_delay_us(10000);
    for (int i = 0; sent && i < 2 && !c->online; i++) {
        sent = lapic_send_startup(c->apic_id, vector);
        wait_online(c, i == 0 ? 200 : AP_START_TIMEOUT_US);
    }
    if (!sent || !c->online) {
        /* The stack stays allocated: the CPU may yet come up on it. */
        ksnprintf(why, len, "CPU %u (APIC %u) %s", c->number, c->apic_id,
                  sent ? "did not come up within 2 s of its SIPIs" : "did not accept an IPI");
        return false;
    }
    return true;
}

unsigned smp_start(const struct acpi_cpus *found, char *why, size_t len)
{
    legacy_pic_disable();
    /* A masked 8259 can still raise its spurious IRQ 7 or 15. */
    for (unsigned v = LEGACY_PIC_BASE; v < LEGACY_PIC_BASE + 16; v++)
        set_gate(v, isr_spurious);
    lapic_setup(found->lapic_base);
    lapic_enable();
    set_gate(VECTOR_TIMER, isr_timer);
    set_gate(VECTOR_WAKEUP, isr_wakeup);
    set_gate(VECTOR_SPURIOUS, isr_spurious);
    cpus[0].apic_id = lapic_id();
    cpus[0].online = 1;

    size_t size = (size_t)(ap_trampoline_end - ap_trampoline);
    memcpy((void *)(uintptr_t)TRAMPOLINE_BASE, ap_trampoline, size);

    bool bsp_listed = false;
    for (unsigned i = 0; i < found->count; i++) {
        if (found->apic_id[i] == cpus[0].apic_id) {
            bsp_listed = true;
            continue;
        }
        struct cpu *c = &cpus[online];
        c->number = online;
        c->apic_id = found->apic_id[i];
        if (!start_one(c, why, len))
            return online;
        online++;
    }
    if (!bsp_listed)
        ksnprintf(why, len, "the BSP's APIC id %u is not in the MADT", cpus[0].apic_id);
    return online;
}
