/*
 * A minimal kernel written from the README alone: serial output, the one
 * init call, a few allocations and frames, then QEMU's exit port. It is
 * linked with minimal.ld (gcc + GNU ld, and clang + ld.lld) to prove that
 * memshim's kernel archive asks nothing special of a linker script.
 *
 * -DHIGHER_HALF: linked at KERNEL_VMA + 1 MiB (minimal-high.ld), physical
 * memory 0..1 GiB mapped at KERNEL_VMA, which is passed as phys_offset.
 */
#include <memshim.h>
#include <stdbool.h>
#include <stdint.h>

extern char kernel_start[], kernel_end[]; /* from minimal.ld */

#ifdef HIGHER_HALF
#define KERNEL_VMA 0xffffffff80000000ull
#else
#define KERNEL_VMA 0ull
#endif

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static void puts_serial(const char *s)
{
    for (; *s; s++) {
        while (!(inb(0x3f8 + 5) & 0x20))
            ;
        outb(0x3f8, (uint8_t)*s);
    }
}

static void put_hex(uint64_t v)
{
    char buf[19] = "0x";
    for (int i = 0; i < 16; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 15];
    buf[18] = '\0';
    puts_serial(buf);
}

#ifdef HIGHER_HALF
#define HIGHER_HALF_TEXT ", linked at 0xffffffff80100000, 1 GiB mapped there and at 0"
#else
#define HIGHER_HALF_TEXT ", identity-mapped to 1 GiB"
#endif

static unsigned failures;

static void check(bool ok, const char *what)
{
    puts_serial(ok ? "ok   " : "FAIL ");
    puts_serial(what);
    puts_serial("\n");
    failures += !ok;
}

/* QEMU's isa-debug-exit at 0xf4: status (v << 1) | 1, 33 for 0x10. */
static _Noreturn void finish(void)
{
    puts_serial(failures ? "memshim demo: FAIL\n" : "memshim demo: PASS\n");
    __asm__ volatile("outl %0, %1" : : "a"(failures ? 0x11 : 0x10), "Nd"((uint16_t)0xf4));
    for (;;)
        __asm__ volatile("cli; hlt");
}

_Noreturn void kmain(uint32_t magic, const void *mbi);

_Noreturn void kmain(uint32_t magic, const void *mbi)
{
    puts_serial("memshim minimal kernel: image ");
    put_hex((uintptr_t)kernel_start);
    puts_serial("-");
    put_hex((uintptr_t)kernel_end);
    puts_serial(HIGHER_HALF_TEXT ": phys_limit ");
    put_hex(1ull << 30);
    puts_serial("\n");

    /* Before any init call the heap runs on its static arena in .bss. */
    char *early = malloc(100);
    check(early != NULL, "malloc before init (static arena)");

    /* The boot loader passes the information's physical address. */
    const void *info = (const char *)mbi + KERNEL_VMA;
    struct memshim_boot_config cfg = {
        .kernel_start = (uintptr_t)kernel_start - KERNEL_VMA, /* physical */
        .kernel_end = (uintptr_t)kernel_end - KERNEL_VMA,
        .phys_offset = KERNEL_VMA, /* virtual = physical + phys_offset */
        .phys_limit = 1ull << 30,  /* the end of what boot.S maps */
    };
#ifdef HIGHER_HALF
    /* The easy mistake, linked addresses for the kernel image, is refused. */
    struct memshim_boot_config wrong = cfg;
    wrong.kernel_start = (uintptr_t)kernel_start;
    wrong.kernel_end = (uintptr_t)kernel_end;
    check(memshim_init_multiboot(magic, info, &wrong) == MEMSHIM_EKERNEL,
          "virtual kernel_start/kernel_end refused (MEMSHIM_EKERNEL)");
#endif
    int rc = memshim_init_multiboot(magic, info, &cfg);
    puts_serial("memshim_init_multiboot: ");
    puts_serial(memshim_strerror(rc));
    puts_serial("\n");
    check(rc == 0, "memshim_init_multiboot");

    /* Large enough that the heap must grow from frames. */
    size_t big = 8u << 20;
    char *p = malloc(big);
    check(p != NULL, "malloc(8 MiB) from frames");
    if (p) {
        memset(p, 0xa5, big);
        check(p[0] == (char)0xa5 && p[big - 1] == (char)0xa5, "the 8 MiB block is writable");
        check((uintptr_t)p >= (uintptr_t)kernel_end, "the block lies above the kernel image");
    }
    free(p);
    free(early);

    uint64_t f = memshim_frame_alloc();
    check(f >= cfg.kernel_end && f % 4096 == 0, "memshim_frame_alloc");
    memshim_frame_free(f);

    uint64_t dma = memshim_frame_alloc_contiguous(16, 64 << 10, 16 << 20);
    check(dma != 0 && (dma >= cfg.kernel_end || dma + (16 << 12) <= cfg.kernel_start),
          "contiguous frames below 16 MiB, clear of the kernel");
    memshim_frame_free_contiguous(dma, 16);

    struct memshim_stats s;
    memshim_get_stats(&s);
    check(s.live_allocations == 0 && s.frames_total > 0, "no live blocks left, frames tracked");
    check(memshim_check() == 0, "memshim_check");
    finish();
}
