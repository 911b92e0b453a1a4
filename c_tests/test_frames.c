/* The frame manager through the C header: init from plain ranges and from
 * synthetic Multiboot 1 and 2 structures, single and contiguous frames,
 * reservations, misuse reports, and the heap growing from frames.
 *
 * A 16 MiB mapping plays physical memory 0..16 MiB (phys_offset = its
 * address, phys_limit = 16 MiB); the memory maps claim more RAM above it,
 * which memshim tracks and hands out but never touches. Each test runs in
 * its own child process, so each one starts with no frame manager. */
#include "harness.h"

#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define FRAME ((uint64_t)4096)
#define RAM_SIZE (16 * MiB)
#define KERNEL_START (1 * MiB)
#define KERNEL_END (2 * MiB + 0x123)

static unsigned char *ram;

static void ram_map(void)
{
    if (!ram) {
        void *m = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            perror("mmap");
            abort();
        }
        ram = (unsigned char *)m;
    }
}

static struct memshim_boot_config config(void)
{
    ram_map();
    struct memshim_boot_config c = {
        .kernel_start = KERNEL_START,
        .kernel_end = KERNEL_END,
        .phys_offset = (uint64_t)(uintptr_t)ram,
        .phys_limit = RAM_SIZE,
    };
    return c;
}

static void put32(uint64_t phys, uint32_t v) { memcpy(ram + phys, &v, 4); }
static void put64(uint64_t phys, uint64_t v) { memcpy(ram + phys, &v, 8); }

static int init_ranges(uint64_t ram_bytes)
{
    struct memshim_boot_config c = config();
    struct memshim_range r = {0, ram_bytes};
    return memshim_frames_init(&r, 1, &c);
}

/* Takes every frame; checks each against the forbidden ranges; returns
 * the count and gives them all back. */
struct span { uint64_t start, end; };

static uint64_t drain_and_check(const struct span *forbidden, size_t n)
{
    /* mmap, not malloc: the heap itself would take frames. */
    size_t cap = 1 << 20, count = 0;
    void *m = mmap(NULL, cap * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 0;
    uint64_t *all = (uint64_t *)m;
    for (uint64_t f; (f = memshim_frame_alloc()) != 0;) {
        CHECKF(f % FRAME == 0 && f >= MiB, "frame %#llx", (unsigned long long)f);
        for (size_t i = 0; i < n; i++)
            CHECKF(!(f < forbidden[i].end && forbidden[i].start < f + FRAME),
                   "frame %#llx inside a reserved range", (unsigned long long)f);
        if (count == cap)
            break;
        all[count++] = f;
    }
    struct memshim_stats s = stats_now();
    CHECK(s.frames_free == 0);
    for (size_t i = 0; i < count; i++)
        memshim_frame_free(all[i]);
    munmap(m, cap * sizeof(uint64_t));
    return count;
}

/* ---- plain ranges ---------------------------------------------------- */

TEST(frames_init_from_ranges_and_alloc_free)
{
    MEMSHIM_ONLY();
    REQUIRE(memshim_frame_alloc() == 0); /* not initialised yet */
    REQUIRE(init_ranges(256 * MiB) == 0);
    struct memshim_stats a = stats_now();
    CHECK(a.frames_total > 60000 && a.frames_free == a.frames_total);
    uint64_t f = memshim_frame_alloc();
    CHECK(f >= 16 * MiB && f % FRAME == 0); /* above the ISA-DMA zone first */
    CHECK(stats_now().frames_free == a.frames_free - 1);
    memshim_frame_free(f);
    CHECK(stats_now().frames_free == a.frames_free);
    struct span none[] = {{0, MiB}, {KERNEL_START, KERNEL_END}};
    CHECK(drain_and_check(none, 2) == a.frames_total);
    CHECK(stats_now().frames_free == a.frames_total);
    CHECK(memshim_check() == 0);
}

TEST(frames_init_refuses_bad_input)
{
    MEMSHIM_ONLY();
    struct memshim_boot_config c = config();
    struct memshim_range r = {0, 64 * MiB};
    CHECK(memshim_frame_reserve(2 * MiB, FRAME) == MEMSHIM_ENOTINIT);
    CHECK(memshim_frames_init(&r, 1, NULL) == MEMSHIM_EINVAL);
    CHECK(memshim_frames_init(NULL, 1, &c) == MEMSHIM_EINVAL);
    CHECK(memshim_frames_init(&r, 5000, &c) == MEMSHIM_EINVAL);
    CHECK(memshim_init_multiboot(0x2BADB002, NULL, &c) == MEMSHIM_EINVAL);
    CHECK(memshim_init_multiboot(0x36D76289, NULL, &c) == MEMSHIM_EINVAL);
    CHECK(memshim_init_multiboot(0x12345678, ram, &c) == MEMSHIM_EMAGIC);
    struct memshim_range wrap = {UINT64_MAX - 100, 200};
    CHECK(memshim_frames_init(&wrap, 1, &c) == MEMSHIM_ERANGE);
    struct memshim_boot_config odd = c;
    odd.phys_offset += 8;
    CHECK(memshim_frames_init(&r, 1, &odd) == MEMSHIM_EINVAL);
    struct memshim_boot_config tiny = c;
    tiny.phys_limit = MiB; /* no room below the limit for the bitmap */
    CHECK(memshim_frames_init(&r, 1, &tiny) == MEMSHIM_ENOMEM);
    struct memshim_range low = {0, 640 * 1024};
    CHECK(memshim_frames_init(&low, 1, &c) == MEMSHIM_ENOMEM);
    CHECK(stats_now().frames_total == 0);
    CHECK(memshim_frames_init(&r, 1, &c) == 0);
    CHECK(memshim_frames_init(&r, 1, &c) == MEMSHIM_EALREADY);
    CHECK(memshim_init_multiboot(0x2BADB002, ram, &c) == MEMSHIM_EALREADY);
}

/* ---- Multiboot 1 ----------------------------------------------------- */

#define MB1_INFO 0x10000u /* where GRUB-like loaders put it: below 1 MiB */
#define MB1_MMAP 0x10100u
#define MB1_MODS 0x10400u
#define MB1_MODSTR 0x10500u
#define MB1_CMDLINE 0x10600u
#define MODULE_START (3 * MiB)
#define MODULE_END (3 * MiB + 100000)

static uint32_t mb1_entry(uint32_t at, uint64_t base, uint64_t len, uint32_t type)
{
    put32(at, 20);       /* +0  size of the rest of the entry */
    put64(at + 4, base); /* +4  base_addr */
    put64(at + 12, len); /* +12 length */
    put32(at + 20, type); /* +20 type: 1 = usable RAM */
    return at + 24;
}

static void mb1_build(void)
{
    ram_map();
    uint32_t end = MB1_MMAP;
    end = mb1_entry(end, 0, 0x9FC00, 1);
    end = mb1_entry(end, 0x9FC00, 0x400, 2);
    end = mb1_entry(end, 4 * GiB, 64 * MiB, 1); /* unsorted, above 4 GiB */
    end = mb1_entry(end, MiB, 127 * MiB, 1);
    end = mb1_entry(end, 64 * MiB, 0, 1); /* zero-sized */
    put32(MB1_MODS + 0, (uint32_t)MODULE_START); /* mod_start */
    put32(MB1_MODS + 4, (uint32_t)MODULE_END);   /* mod_end */
    put32(MB1_MODS + 8, MB1_MODSTR);             /* string */
    memcpy(ram + MB1_MODSTR, "initrd", 7);
    memcpy(ram + MB1_CMDLINE, "console=ttyS0", 14);
    memset(ram + MB1_INFO, 0, 116);
    put32(MB1_INFO + 0, 1u << 0 | 1u << 2 | 1u << 3 | 1u << 6); /* flags: mem, cmdline, mods, mmap */
    put32(MB1_INFO + 4, 639);              /* mem_lower (KiB) */
    put32(MB1_INFO + 8, 127 * 1024);       /* mem_upper (KiB above 1 MiB) */
    put32(MB1_INFO + 16, MB1_CMDLINE);     /* cmdline */
    put32(MB1_INFO + 20, 1);               /* mods_count */
    put32(MB1_INFO + 24, MB1_MODS);        /* mods_addr */
    put32(MB1_INFO + 44, end - MB1_MMAP);  /* mmap_length */
    put32(MB1_INFO + 48, MB1_MMAP);        /* mmap_addr */
}

TEST(multiboot1_map_modules_and_exhaustion)
{
    MEMSHIM_ONLY();
    mb1_build();
    struct memshim_boot_config c = config();
    REQUIRE(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == 0);
    struct memshim_stats s = stats_now();
    /* 127 MiB + 64 MiB of frames, minus the kernel (257), module (25) and
       bitmap (3.5 bits a frame up to 4 GiB + 64 MiB: about 115 frames). */
    uint64_t most = (127 * MiB + 64 * MiB) / FRAME - 257 - 25;
    CHECKF(s.frames_total < most && s.frames_total > most - 130, "%llu", (unsigned long long)s.frames_total);
    struct span forbidden[] = {
        {0, MiB}, {KERNEL_START, KERNEL_END}, {MODULE_START, MODULE_END}, {128 * MiB, 4 * GiB},
    };
    uint64_t n = drain_and_check(forbidden, 4);
    CHECK(n == s.frames_total);
    CHECK(drain_and_check(forbidden, 4) == n); /* the same count again */
    CHECK(memshim_check() == 0);
}

/* Every other structure the flags can name, each in usable RAM above
   1 MiB: none of their frames may be handed out. */
#define MB1_ELF 0x500000u    /* 3 ELF32 section headers */
#define MB1_SYMTAB 0x600000u /* the non-ALLOC section they describe, 0x1800 bytes */
#define MB1_DRIVES 0x501000u
#define MB1_CONFIG 0x502000u
#define MB1_NAME 0x503FF8u /* crosses a page */
#define MB1_APM 0x505000u
#define MB1_VBE_CTRL 0x506000u
#define MB1_VBE_MODE 0x507000u
#define MB1_FB 0x610000u /* 4096-byte pitch x 4 rows */

static void shdr32(uint32_t at, uint32_t type, uint32_t flags, uint32_t addr, uint32_t size)
{
    memset(ram + at, 0, 40);
    put32(at + 4, type);   /* sh_type */
    put32(at + 8, flags);  /* sh_flags (2 = SHF_ALLOC) */
    put32(at + 12, addr);  /* sh_addr */
    put32(at + 20, size);  /* sh_size */
}

TEST(multiboot1_every_structure_is_reserved)
{
    MEMSHIM_ONLY();
    mb1_build();
    shdr32(MB1_ELF, 0, 0, 0, 0);
    shdr32(MB1_ELF + 40, 1, 6, 0x700000, 0x4000); /* .text: the kernel's, not reserved here */
    shdr32(MB1_ELF + 80, 2, 0, MB1_SYMTAB, 0x1800); /* .symtab, loaded by the boot loader */
    memset(ram + MB1_DRIVES, 0x10, 0x30);
    put32(MB1_CONFIG, 8); /* length word of the ROM configuration table */
    memcpy(ram + MB1_NAME, "GRUB 2.06", 10);
    uint32_t flags = 1u << 0 | 1u << 2 | 1u << 3 | 1u << 6;
    flags |= 1u << 5 | 1u << 7 | 1u << 8 | 1u << 9 | 1u << 10 | 1u << 11 | 1u << 12;
    put32(MB1_INFO + 0, flags);
    put32(MB1_INFO + 28, 3);       /* ELF: num */
    put32(MB1_INFO + 32, 40);      /* size of each header */
    put32(MB1_INFO + 36, MB1_ELF); /* addr */
    put32(MB1_INFO + 52, 0x30);    /* drives_length */
    put32(MB1_INFO + 56, MB1_DRIVES);
    put32(MB1_INFO + 60, MB1_CONFIG);
    put32(MB1_INFO + 64, MB1_NAME);
    put32(MB1_INFO + 68, MB1_APM);
    put32(MB1_INFO + 72, MB1_VBE_CTRL);
    put32(MB1_INFO + 76, MB1_VBE_MODE);
    put64(MB1_INFO + 88, MB1_FB);  /* framebuffer_addr */
    put32(MB1_INFO + 96, 4096);    /* pitch */
    put32(MB1_INFO + 104, 4);      /* height */
    ram[MB1_INFO + 109] = 1;       /* type: RGB, no palette */
    struct memshim_boot_config c = config();
    REQUIRE(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == 0);
    struct span forbidden[] = {
        {0, MiB}, {KERNEL_START, KERNEL_END}, {MODULE_START, MODULE_END}, {128 * MiB, 4 * GiB},
        {MB1_ELF, MB1_ELF + 120}, {MB1_SYMTAB, MB1_SYMTAB + 0x1800},
        {MB1_DRIVES, MB1_DRIVES + 0x30}, {MB1_CONFIG, MB1_CONFIG + 10},
        {MB1_NAME, MB1_NAME + 10}, {MB1_APM, MB1_APM + 20},
        {MB1_VBE_CTRL, MB1_VBE_CTRL + 512}, {MB1_VBE_MODE, MB1_VBE_MODE + 256},
        {MB1_FB, MB1_FB + 4 * 4096},
    };
    uint64_t n = drain_and_check(forbidden, sizeof forbidden / sizeof forbidden[0]);
    CHECK(n == stats_now().frames_total);
    CHECK(memshim_check() == 0);
}

TEST(multiboot1_malformed_map_is_refused)
{
    MEMSHIM_ONLY();
    mb1_build();
    struct memshim_boot_config c = config();
    put32(MB1_MMAP, 12); /* first entry's size field below the 20-byte minimum */
    CHECK(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == MEMSHIM_EBOOTINFO);
    mb1_build();
    put32(MB1_INFO + 44, 24 * 5 - 4); /* mmap_length cuts the last entry */
    CHECK(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == MEMSHIM_EBOOTINFO);
    mb1_build();
    put32(MB1_INFO + 48, (uint32_t)(RAM_SIZE - 8)); /* map above phys_limit */
    CHECK(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == MEMSHIM_ERANGE);
    mb1_build();
    put32(MB1_INFO + 0, 1u << 3); /* no map, no mem_lower/mem_upper */
    CHECK(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == MEMSHIM_ENOMMAP);
    mb1_build();
    put32(MB1_INFO + 0, 1u << 0); /* no map: mem_upper decides */
    CHECK(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == 0);
    CHECK(stats_now().frames_total > 127 * MiB / FRAME - 300);
}

/* ---- Multiboot 2 ----------------------------------------------------- */

#define MB2_AT (5 * MiB) /* above 1 MiB: its own reservation shows */

static uint32_t mb2_tag(uint32_t at, uint32_t type, uint32_t size)
{
    at = (at + 7) & ~7u;     /* tags start 8-byte aligned */
    put32(MB2_AT + at, type); /* +0 type */
    put32(MB2_AT + at + 4, size); /* +4 size, header included */
    return at;
}

static uint32_t mb2_build(uint32_t entry_size)
{
    ram_map();
    memset(ram + MB2_AT, 0, 4096);
    uint32_t at = 8;
    uint32_t t = mb2_tag(at, 1, 8 + 6); /* command line "quiet" */
    memcpy(ram + MB2_AT + t + 8, "quiet", 6);
    at = t + 14;
    t = mb2_tag(at, 3, 16 + 7); /* module: mod_start, mod_end, "initrd" */
    put32(MB2_AT + t + 8, (uint32_t)MODULE_START);
    put32(MB2_AT + t + 12, (uint32_t)MODULE_END);
    memcpy(ram + MB2_AT + t + 16, "initrd", 7);
    at = t + 23;
    uint64_t map[3][3] = {{0, 0x9FC00, 1}, {MiB, 127 * MiB, 1}, {4 * GiB, 64 * MiB, 1}};
    t = mb2_tag(at, 6, 16 + 3 * entry_size); /* memory map */
    put32(MB2_AT + t + 8, entry_size); /* entry_size */
    put32(MB2_AT + t + 12, 0);         /* entry_version */
    for (uint32_t i = 0; i < 3; i++) {
        uint64_t e = MB2_AT + t + 16 + i * entry_size;
        put64(e, map[i][0]);                /* base_addr */
        put64(e + 8, map[i][1]);            /* length */
        put32(e + 16, (uint32_t)map[i][2]); /* type */
    }
    at = t + 16 + 3 * entry_size;
    t = mb2_tag(at, 0, 8); /* end tag */
    put32(MB2_AT, t + 8);  /* total_size */
    return t + 8;
}

TEST(multiboot2_map_modules_and_exhaustion)
{
    MEMSHIM_ONLY();
    uint32_t total = mb2_build(24);
    struct memshim_boot_config c = config();
    REQUIRE(memshim_init_multiboot(0x36D76289, ram + MB2_AT, &c) == 0);
    struct span forbidden[] = {
        {0, MiB}, {KERNEL_START, KERNEL_END}, {MODULE_START, MODULE_END}, {MB2_AT, MB2_AT + total},
    };
    uint64_t n = drain_and_check(forbidden, 4);
    CHECK(n == stats_now().frames_total && n > 190 * MiB / FRAME - 400);
    CHECK(memshim_check() == 0);
}

TEST(multiboot2_malformed_is_refused)
{
    MEMSHIM_ONLY();
    struct memshim_boot_config c = config();
    mb2_build(20); /* entry_size smaller than an entry */
    CHECK(memshim_init_multiboot(0x36D76289, ram + MB2_AT, &c) == MEMSHIM_EBOOTINFO);
    uint32_t total = mb2_build(24);
    put32(MB2_AT, total - 8); /* total_size cuts off the end tag */
    CHECK(memshim_init_multiboot(0x36D76289, ram + MB2_AT, &c) == MEMSHIM_EBOOTINFO);
    mb2_build(24);
    put32(MB2_AT + 12, 0x10000); /* first tag runs past the structure */
    CHECK(memshim_init_multiboot(0x36D76289, ram + MB2_AT, &c) == MEMSHIM_EBOOTINFO);
    CHECK(memshim_init_multiboot(0x36D76289, ram + MB2_AT + 0, NULL) == MEMSHIM_EINVAL);
    CHECK(mb2_build(32) > 0); /* a larger entry_size is valid */
    CHECK(memshim_init_multiboot(0x36D76289, ram + MB2_AT, &c) == 0);
}

/* ---- contiguous, reserve, heap -------------------------------------- */

TEST(contiguous_dma_frames)
{
    MEMSHIM_ONLY();
    REQUIRE(init_ranges(256 * MiB) == 0);
    uint64_t d = memshim_frame_alloc_contiguous(16, 64 * 1024, 16 * MiB);
    CHECK(d >= MiB && d % (64 * 1024) == 0 && d + 16 * FRAME <= 16 * MiB);
    uint64_t big = memshim_frame_alloc_contiguous(512, 2 * MiB, 0);
    CHECK(big != 0 && big % (2 * MiB) == 0);
    CHECK(memshim_frame_alloc_contiguous(0, 0, 0) == 0);
    CHECK(memshim_frame_alloc_contiguous(1, 3 * FRAME, 0) == 0);
    CHECK(memshim_frame_alloc_contiguous(1, 0, MiB) == 0);
    CHECK(memshim_frame_alloc_contiguous(SIZE_MAX, 0, 0) == 0);
    memshim_frame_free_contiguous(d, 16);
    memshim_frame_free_contiguous(big, 512);
    struct memshim_stats s = stats_now();
    CHECK(s.frames_free == s.frames_total);
    CHECK(memshim_check() == 0);
}

TEST(reserve_keeps_frames_out)
{
    MEMSHIM_ONLY();
    REQUIRE(init_ranges(64 * MiB) == 0);
    uint64_t total = stats_now().frames_total;
    CHECK(memshim_frame_reserve(40 * MiB + 5, 2 * FRAME) == 0); /* 3 frames */
    CHECK(memshim_frame_reserve(0xFD000000u, 8 * MiB) == 0);    /* not RAM: fine */
    CHECK(stats_now().frames_total == total - 3);
    CHECK(memshim_frame_reserve(0, 0) == MEMSHIM_EINVAL);
    CHECK(memshim_frame_reserve(UINT64_MAX - 10, 100) == MEMSHIM_ERANGE);
    uint64_t f = memshim_frame_alloc();
    CHECK(memshim_frame_reserve(f, 1) == MEMSHIM_EOVERLAP);
    struct span r[] = {{40 * MiB, 40 * MiB + 3 * FRAME}};
    CHECK(drain_and_check(r, 1) == total - 4);
}

TEST(heap_grows_from_frames)
{
    MEMSHIM_ONLY();
    REQUIRE(init_ranges(256 * MiB) == 0);
    uint64_t before = stats_now().frames_free;
    size_t len = 6 * MiB;
    unsigned char *p = malloc(len);
    REQUIRE(p != NULL);
    CHECK(p >= ram && p + len <= ram + RAM_SIZE); /* from frames below phys_limit */
    memset(p, 0x5A, len);
    CHECK(stats_now().frames_free <= before - len / FRAME);
    free(p);
    CHECK(memshim_check() == 0);
}

TEST(frames_the_heap_keeps_for_speed_go_to_the_kernel_when_frames_run_out)
{
    MEMSHIM_ONLY();
    REQUIRE(init_ranges(256 * MiB) == 0);
    /* Blocks below the dedicated-span size share spans; once freed, the
     * heap keeps their wholly free spans for reuse (up to 64 MiB). */
    enum { N = 96 };
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        REQUIRE((blocks[i] = malloc(512 * 1024)) != NULL);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    struct memshim_stats kept = stats_now();
    CHECKF(kept.heap_bytes_mapped >= 32 * MiB, "heap keeps %llu bytes",
           (unsigned long long)kept.heap_bytes_mapped);
    /* Taking every frame reaches those spans too. */
    uint64_t taken = 0;
    while (memshim_frame_alloc() != 0)
        taken++;
    struct memshim_stats after = stats_now();
    CHECK(after.frames_free == 0);
    CHECKF(after.heap_bytes_mapped < 2 * MiB, "heap still holds %llu bytes",
           (unsigned long long)after.heap_bytes_mapped);
    /* Every frame but the heap's metadata (kept for good) was reachable. */
    CHECKF(taken + kept.heap_bytes_metadata / FRAME + 16 >= kept.frames_total,
           "%llu frames taken of %llu (%llu were free, %llu bytes of heap metadata)",
           (unsigned long long)taken, (unsigned long long)kept.frames_total,
           (unsigned long long)kept.frames_free, (unsigned long long)kept.heap_bytes_metadata);
    CHECK(memshim_check() == 0);
}

/* ---- misuse ---------------------------------------------------------- */

static char last_msg[256];
static int reports;

static void record(const char *msg, size_t len, void *ctx)
{
    (void)ctx;
    snprintf(last_msg, sizeof last_msg, "%.*s", (int)len, msg);
    reports++;
}

TEST(frame_misuse_is_reported_with_the_address)
{
    MEMSHIM_ONLY();
    REQUIRE(init_ranges(64 * MiB) == 0);
    memshim_set_panic_handler(record, NULL);
    uint64_t f = memshim_frame_alloc();
    memshim_frame_free(f);
    uint64_t free_before = stats_now().frames_free;
    memshim_frame_free(f);
    CHECK(reports == 1 && strstr(last_msg, "double free") != NULL);
    CHECK(harness_names_address(last_msg, f, f));
    memshim_frame_free(KERNEL_START); /* reserved: never allocated */
    CHECK(reports == 2 && strstr(last_msg, "reserved") != NULL);
    memshim_frame_free(f + 12); /* not a frame address */
    CHECK(reports == 3 && strstr(last_msg, "unaligned") != NULL);
    memshim_frame_free(8 * GiB); /* not RAM */
    CHECK(reports == 4 && harness_names_address(last_msg, 8 * GiB, 8 * GiB));
    /* Four single frames in a row (next fit), the second given back: a
       contiguous free over all four frees nothing. */
    uint64_t run = memshim_frame_alloc();
    for (uint64_t i = 1; i < 4; i++)
        REQUIRE(memshim_frame_alloc() == run + i * FRAME);
    memshim_frame_free(run + FRAME);
    memshim_frame_free_contiguous(run, 4); /* frees nothing: one is already free */
    CHECK(reports == 5 && harness_names_address(last_msg, run + FRAME, run + FRAME));
    CHECK(stats_now().frames_free == free_before - 3);
    CHECK(memshim_check() == 0);
    memshim_set_panic_handler(NULL, NULL);
}

TEST(freeing_part_of_a_contiguous_run_is_reported)
{
    MEMSHIM_ONLY();
    REQUIRE(init_ranges(64 * MiB) == 0);
    memshim_set_panic_handler(record, NULL);
    uint64_t before = stats_now().frames_free;
    uint64_t run = memshim_frame_alloc_contiguous(512, 2 * MiB, 0);
    REQUIRE(run != 0);
    memshim_frame_free(run + 5 * FRAME); /* one frame of the run */
    CHECK(reports == 1 && strstr(last_msg, "split the contiguous run of 512 frames") != NULL);
    CHECK(harness_names_address(last_msg, run + 5 * FRAME, run + 5 * FRAME));
    memshim_frame_free_contiguous(run, 256); /* the first half */
    CHECK(reports == 2 && strstr(last_msg, "split") != NULL);
    CHECK(stats_now().frames_free == before - 512); /* nothing was freed */
    CHECK(memshim_check() == 0);
    memshim_frame_free_contiguous(run, 512); /* the whole run: fine */
    CHECK(reports == 2);
    CHECK(stats_now().frames_free == before);
    CHECK(memshim_check() == 0);
    memshim_set_panic_handler(NULL, NULL);
}

TEST(freeing_a_heap_frame_is_reported)
{
    MEMSHIM_ONLY();
    REQUIRE(init_ranges(256 * MiB) == 0);
    unsigned char *p = malloc(6 * MiB);
    REQUIRE(p != NULL && p >= ram && p + 6 * MiB <= ram + RAM_SIZE);
    /* A frame well inside the block: it came to the heap from the frames. */
    uint64_t phys = ((uint64_t)(p - ram) + MiB) & ~(FRAME - 1);
    uint64_t free_before = stats_now().frames_free;
    memshim_set_panic_handler(record, NULL);
    memshim_frame_free(phys);
    CHECK(reports == 1 && strstr(last_msg, "belongs to the heap") != NULL);
    CHECK(harness_names_address(last_msg, phys, phys));
    memshim_frame_free_contiguous(phys, 4);
    CHECK(reports == 2 && strstr(last_msg, "belongs to the heap") != NULL);
    CHECK(stats_now().frames_free == free_before); /* nothing was freed */
    memset(p, 0x5A, 6 * MiB);
    free(p);
    CHECK(memshim_check() == 0);
    memshim_set_panic_handler(NULL, NULL);
}

static void double_free_default(void *arg)
{
    (void)arg;
    if (init_ranges(64 * MiB) != 0)
        return;
    uint64_t f = memshim_frame_alloc();
    harness_note(0, (void *)(uintptr_t)f);
    memshim_frame_free(f);
    memshim_frame_free(f);
}

TEST(frame_double_free_aborts_by_default)
{
    MEMSHIM_ONLY();
    struct harness_child c;
    harness_run_child(double_free_default, NULL, &c);
    EXPECT_ABORT(&c, "double free", c.noted[0], c.noted[0]);
}

/* ---- the boot config is validated like the boot information ---------- */

TEST(kernel_range_outside_usable_ram_is_refused)
{
    MEMSHIM_ONLY();
    struct memshim_boot_config c = config();
    struct memshim_range r[2] = {{0, 640 * 1024}, {MiB, 255 * MiB}};
    /* A higher-half kernel's linked (virtual) addresses: the easy mistake. */
    struct memshim_boot_config virt = c;
    virt.kernel_start = 0xffffffff80100000ull;
    virt.kernel_end = 0xffffffff8023f000ull;
    CHECK(memshim_frames_init(r, 2, &virt) == MEMSHIM_EKERNEL);
    /* Past the highest usable byte, and in the hole below 1 MiB. */
    struct memshim_boot_config past = c;
    past.kernel_start = 255 * MiB;
    past.kernel_end = 256 * MiB + 1;
    CHECK(memshim_frames_init(r, 2, &past) == MEMSHIM_EKERNEL);
    struct memshim_boot_config hole = c;
    hole.kernel_start = 640 * 1024;
    hole.kernel_end = MiB;
    CHECK(memshim_frames_init(r, 2, &hole) == MEMSHIM_EKERNEL);
    CHECK(memshim_strerror(MEMSHIM_EKERNEL)[0] != 0);
    CHECK(stats_now().frames_total == 0);
    /* Nothing was initialised: the right range still works. */
    CHECK(memshim_frames_init(r, 2, &c) == 0);
}

TEST(kernel_range_in_a_multiboot_map_is_checked)
{
    MEMSHIM_ONLY();
    struct memshim_boot_config c = config();
    c.kernel_start += 0xffffffff80000000ull;
    c.kernel_end += 0xffffffff80000000ull;
    /* mem_lower/mem_upper only: 640 KiB and 1 MiB .. 256 MiB. */
    put32(MB1_INFO, 1);
    put32(MB1_INFO + 4, 640);
    put32(MB1_INFO + 8, 255 * 1024);
    CHECK(memshim_init_multiboot(0x2BADB002, ram + MB1_INFO, &c) == MEMSHIM_EKERNEL);
}

struct dump_text {
    char buf[4096];
    size_t len;
};

static void dump_collect(void *ctx, const char *text, size_t len)
{
    struct dump_text *t = ctx;
    size_t take = len < sizeof t->buf - 1 - t->len ? len : sizeof t->buf - 1 - t->len;
    memcpy(t->buf + t->len, text, take);
    t->len += take;
    t->buf[t->len] = 0;
}

TEST(phys_limit_beyond_ram_is_clamped)
{
    MEMSHIM_ONLY();
    /* 16 MiB of RAM, a 16 GiB limit (a kernel that copied the demo's). */
    struct memshim_boot_config c = config();
    c.phys_limit = 16 * GiB;
    struct memshim_range r = {MiB, 15 * MiB};
    REQUIRE(memshim_frames_init(&r, 1, &c) == 0);
    static struct dump_text t;
    memshim_dump(dump_collect, &t);
    CHECKF(strstr(t.buf, "phys_limit 0x1000000") != NULL, "dump: %s", t.buf);
    /* The heap still grows from frames below the (clamped) limit. */
    void *p = malloc(4 * MiB);
    CHECK(p != NULL);
    free(p);
    CHECK(memshim_check() == 0);
}

/* ---- mixed use, everything given back --------------------------------- */

/* What smptest.c does on one CPU, interleaved at random: single frames,
 * runs of 8, runs of other shapes (alignment, `below`), large mallocs the
 * heap grows from frames for and gives back (memshim_trim now and then),
 * reservations, frees in random order, both free calls for single frames.
 * RAM is 96 MiB, the first 64 MiB of it a mapping of ours (phys_limit), so
 * the heap's runs lie among the frames above 16 MiB. Frames below the
 * limit carry a tag and heap blocks a pattern, both checked when given
 * back: a frame handed out twice, or one the heap also holds, shows.
 * After each round, with everything back and trimmed: no problems, the
 * free count where it was (less the frames reserved and any the heap took
 * for its metadata, which is never given back), and the longest run above
 * 16 MiB (above the metadata a first round leaves) where it was. */
#define MIX_RAM (64 * MiB)
#define MIX_TOP (96 * MiB)
#define MIX_HELD 16384
#define MIX_BLOCKS 48

struct mix_held { uint64_t phys; uint32_t frames; };
static struct mix_held mix_held[MIX_HELD];
static size_t mix_nheld;
static unsigned char mix_owned[MIX_TOP / FRAME];
static struct { unsigned char *p; size_t len; } mix_block[MIX_BLOCKS];
static unsigned char *mix_ram;

static uint64_t mix_seed;
static uint64_t mix_rand(void)
{
    mix_seed ^= mix_seed << 13;
    mix_seed ^= mix_seed >> 7;
    mix_seed ^= mix_seed << 17;
    return mix_seed;
}

static uint64_t mix_tag(uint64_t phys) { return phys * 0x9E3779B97F4A7C15ull ^ 0x5A5A; }

/* Records frames [phys, phys + n) as ours (there is room: callers see
 * to it): none may be ours already. A frame handed out twice is reported
 * and kept out of the books. */
static void mix_take(uint64_t phys, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t f = phys + i * FRAME;
        if (f % FRAME || f < MiB || f >= MIX_TOP || mix_owned[f / FRAME]) {
            CHECKF(0, "frame %#llx handed out while held, or outside RAM", (unsigned long long)f);
            return;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        uint64_t f = phys + i * FRAME;
        mix_owned[f / FRAME] = 1;
        if (f < MIX_RAM)
            memcpy(mix_ram + f, &(uint64_t){mix_tag(f)}, 8);
    }
    mix_held[mix_nheld++] = (struct mix_held){phys, n};
}

static void mix_give(size_t i)
{
    struct mix_held h = mix_held[i];
    mix_held[i] = mix_held[--mix_nheld];
    for (uint32_t k = 0; k < h.frames; k++) {
        uint64_t f = h.phys + k * FRAME, t;
        if (f < MIX_RAM) {
            memcpy(&t, mix_ram + f, 8);
            CHECKF(t == mix_tag(f), "frame %#llx was written by someone else", (unsigned long long)f);
        }
        mix_owned[f / FRAME] = 0;
    }
    if (h.frames == 1 && mix_rand() % 2)
        memshim_frame_free(h.phys);
    else
        memshim_frame_free_contiguous(h.phys, h.frames);
}

static void mix_block_free(size_t i)
{
    unsigned char *p = mix_block[i].p;
    size_t len = mix_block[i].len;
    unsigned char v = (unsigned char)((uintptr_t)p >> 12);
    CHECKF(p[0] == v && p[len / 2] == v && p[len - 1] == v, "heap block %p was overwritten", (void *)p);
    free(p);
    mix_block[i].p = NULL;
}

/* Frames reserved (of them, frames that were free), blocks from frames. */
static uint64_t mix_reserved, mix_reserved_free, mix_heap_from_frames;

/* One round of mixed use, then everything given back in random order and
 * the heap trimmed. */
static void mix_round(uint64_t seed, int steps)
{
    mix_seed = seed;
    for (int step = 0; step < steps; step++) {
        uint64_t op = mix_rand() % 32, p;
        if (op < 15 && mix_nheld == MIX_HELD)
            op = 31; /* no room to remember more: give one back */
        if (op < 10) { /* one frame */
            if ((p = memshim_frame_alloc()) != 0)
                mix_take(p, 1);
        } else if (op < 13) { /* a run of 8, as smptest.c takes */
            uint64_t align = (mix_rand() % 2) ? 8 * FRAME : FRAME;
            if ((p = memshim_frame_alloc_contiguous(8, align, 0)) != 0)
                mix_take(p, 8);
        } else if (op < 15) { /* other shapes, alignment, below */
            uint32_t n = 1 + (uint32_t)(mix_rand() % 300);
            uint64_t align = FRAME << (mix_rand() % 10);
            uint64_t below = (uint64_t[]){0, 16 * MiB, 40 * MiB, 80 * MiB}[mix_rand() % 4];
            if ((p = memshim_frame_alloc_contiguous(n, align, below)) != 0) {
                CHECK(p % align == 0 && (below == 0 || p + n * FRAME <= below));
                mix_take(p, n);
            }
        } else if (op < 17) { /* a large block: the heap grows from frames */
            size_t i = mix_rand() % MIX_BLOCKS;
            if (mix_block[i].p)
                mix_block_free(i);
            size_t len = (size_t)(64 * 1024 + mix_rand() % (6 * MiB));
            unsigned char *b = malloc(len);
            if (b) {
                unsigned char v = (unsigned char)((uintptr_t)b >> 12);
                b[0] = b[len / 2] = b[len - 1] = v;
                mix_heap_from_frames += b >= mix_ram && b < mix_ram + MIX_RAM;
                mix_block[i].p = b;
                mix_block[i].len = len;
            }
        } else if (op < 18) {
            size_t i = mix_rand() % MIX_BLOCKS;
            if (mix_block[i].p)
                mix_block_free(i);
        } else if (op == 18 && mix_rand() % 16 == 0) {
            memshim_trim();
        } else if (op == 19 && mix_reserved < 16 && mix_rand() % 8 == 0) {
            /* One frame of the 1-16 MiB zone, if it is not in use. */
            uint64_t f = (256 + mix_rand() % (15 * 256)) * FRAME;
            struct memshim_stats a = stats_now();
            if (memshim_frame_reserve(f, FRAME) == 0) {
                struct memshim_stats b = stats_now();
                mix_reserved += a.frames_total - b.frames_total;
                mix_reserved_free += a.frames_free - b.frames_free;
            }
        } else if (mix_nheld > 0) { /* give back: mostly recent, else any */
            size_t back = (size_t)(mix_rand() % 4);
            size_t i = mix_rand() % 4 ? mix_nheld - 1 - (back < mix_nheld ? back : mix_nheld - 1)
                                       : (size_t)(mix_rand() % mix_nheld);
            mix_give(i);
        }
        if (step % 1000 == 999)
            CHECKF(memshim_check() == 0, "seed %#llx step %d", (unsigned long long)seed, step);
    }
    while (mix_nheld > 0)
        mix_give(mix_rand() % mix_nheld);
    for (size_t i = 0; i < MIX_BLOCKS; i++)
        if (mix_block[i].p)
            mix_block_free(i);
    memshim_trim();
}

/* The longest free run at or above 16 MiB (a binary search of contiguous
 * requests, each given back): its length, and where a request for it
 * lands in *at. */
static size_t mix_longest_above_16_mib(uint64_t *at)
{
    size_t lo = 0, hi = MIX_TOP / FRAME;
    *at = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        uint64_t p = memshim_frame_alloc_contiguous(mid, FRAME, 0);
        if (p)
            memshim_frame_free_contiguous(p, mid);
        if (p >= 16 * MiB)
            lo = mid, *at = p;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Maps MIX_RAM bytes to play RAM and starts the frame manager on 0..usable. */
static int mix_init(uint64_t usable)
{
    void *m = mmap(NULL, MIX_RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    mix_ram = (unsigned char *)m;
    struct memshim_boot_config c = {
        .kernel_start = KERNEL_START,
        .kernel_end = KERNEL_END,
        .phys_offset = (uint64_t)(uintptr_t)mix_ram,
        .phys_limit = MIX_RAM,
    };
    struct memshim_range r = {0, usable};
    return memshim_frames_init(&r, 1, &c);
}

TEST(frames_and_heap_mixed_use_all_given_back)
{
    MEMSHIM_ONLY();
    REQUIRE(mix_init(MIX_TOP) == 0);
    /* With nothing else in use yet, a run from the first free frame above
       16 MiB (after the bitmap) to the top of RAM. */
    uint64_t at0;
    size_t run0 = mix_longest_above_16_mib(&at0);
    CHECK(at0 >= 16 * MiB && at0 < 16 * MiB + 16 * FRAME && at0 + run0 * FRAME == MIX_TOP);
    /* A first round grows the heap's metadata to its peak (metadata pages
       come from frames too and are never given back). */
    mix_round(0x0123456789ABCDEFull, 30000);
    const uint64_t seeds[] = {0x9E3779B97F4A7C15ull, 1, 0xDEADBEEF, 4242};
    int compared = 0;
    for (size_t round = 0; round < sizeof seeds / sizeof seeds[0]; round++) {
        CHECKF(memshim_check() == 0, "before round %zu", round);
        struct memshim_stats s0 = stats_now();
        uint64_t at;
        size_t run = mix_longest_above_16_mib(&at);
        uint64_t reserved = mix_reserved, reserved_free = mix_reserved_free;
        mix_round(seeds[round], 30000);
        struct memshim_stats s = stats_now();
        CHECKF(memshim_check() == 0, "round %zu", round);
        uint64_t meta = (s.heap_bytes_metadata - s0.heap_bytes_metadata) / FRAME;
        reserved = mix_reserved - reserved;
        reserved_free = mix_reserved_free - reserved_free;
        CHECKF(s.frames_total == s0.frames_total - reserved, "round %zu: %llu of %llu frames", round,
               (unsigned long long)s.frames_total, (unsigned long long)s0.frames_total);
        CHECKF(s.frames_free == s0.frames_free - reserved_free - meta,
               "round %zu: %llu frames free, %llu before (%llu reserved, %llu taken for metadata)",
               round, (unsigned long long)s.frames_free, (unsigned long long)s0.frames_free,
               (unsigned long long)reserved_free, (unsigned long long)meta);
        if (meta != 0)
            continue; /* a new metadata chunk may sit anywhere */
        uint64_t p = memshim_frame_alloc_contiguous(run, FRAME, 0);
        CHECKF(p == at, "round %zu: a run of %zu frames at %#llx: %#llx", round, run,
               (unsigned long long)at, (unsigned long long)p);
        if (p)
            memshim_frame_free_contiguous(p, run);
        CHECKF(memshim_check() == 0, "round %zu", round);
        compared++;
    }
    CHECK(compared >= 2);
    CHECK(mix_heap_from_frames > 0);
    CHECK(mix_reserved > 0);
}

/* Takes every free frame above 16 MiB below `at` (one by one, lowest
 * first), into mix_held: the holes the heap's metadata leaves. */
static void mix_fill_below(uint64_t at)
{
    uint64_t p;
    while (mix_nheld < MIX_HELD && (p = memshim_frame_alloc_contiguous(1, FRAME, 0)) != 0) {
        if (p < 16 * MiB || p >= at) {
            memshim_frame_free_contiguous(p, 1);
            return;
        }
        mix_held[mix_nheld++] = (struct mix_held){p, 1};
    }
}

/* The heap's runs and single frames side by side, as in smptest.c:
 * padding frames up to the single-frame hint, a large block (the heap
 * grows by a run from frames just above the padding), one frame (next
 * fit: the first one after the heap's run), the block freed and the heap
 * trimmed (its run goes back), the frame given back, the padding too.
 * Each time, every frame above the heap's metadata is free again and must
 * be one run where it was. Before the run index applied its queue ahead
 * of range changes, the heap's run going back between the frame's two
 * calls (the frame's bitmap word in the same 256 frames as the run's
 * end) left the index showing the frame taken. The heap's metadata pages
 * (never given back) come from frames too, now and then: the holes below
 * the run are kept filled, and the run measured again. */
TEST(heap_runs_given_back_beside_single_frames_leave_one_run)
{
    MEMSHIM_ONLY();
    REQUIRE(mix_init(MIX_RAM) == 0);
    struct memshim_stats start = stats_now();
    free(malloc(2 * MiB));
    memshim_trim();
    struct memshim_stats s0 = stats_now();
    uint64_t at;
    size_t run = mix_longest_above_16_mib(&at);
    REQUIRE(run > 8192);
    mix_nheld = 0;
    mix_fill_below(at);
    size_t fillers = mix_nheld;
    mix_seed = 0x2545F4914F6CDD1Dull;
    uint64_t hint = 16 * MiB; /* the next single frame: the first free one from here */
    int beside = 0, compared = 0;
    for (int i = 0; i < 600 && harness_fails == 0; i++) {
        size_t pad = (size_t)((hint > at ? hint - at : 0) / FRAME + mix_rand() % 64);
        size_t len = (size_t)(256 * 1024 + mix_rand() % (2 * MiB));
        if (at + pad * FRAME + 2 * len + 4 * MiB > at + run * FRAME) {
            /* Near the top: take every frame from the hint up, so the
               next one wraps to the lowest free frame above 16 MiB. */
            uint64_t f;
            while ((f = memshim_frame_alloc()) >= hint && mix_nheld < MIX_HELD)
                mix_held[mix_nheld++] = (struct mix_held){f, 1};
            CHECKF(f == at, "wrapped to %#llx, not %#llx", (unsigned long long)f, (unsigned long long)at);
            memshim_frame_free(f);
            while (mix_nheld > fillers)
                memshim_frame_free(mix_held[--mix_nheld].phys);
            hint = at + FRAME;
            continue;
        }
        uint64_t p = pad ? memshim_frame_alloc_contiguous(pad, FRAME, 0) : 0;
        CHECKF(!pad || p == at, "padding at %#llx", (unsigned long long)p);
        unsigned char *b = malloc(len);
        REQUIRE(b != NULL);
        uint64_t f = memshim_frame_alloc();
        REQUIRE(f != 0);
        hint = f + FRAME;
        beside += b >= mix_ram + at + pad * FRAME && b < mix_ram + f;
        free(b);
        memshim_trim();
        memshim_frame_free(f);
        if (pad)
            memshim_frame_free_contiguous(p, pad);
        struct memshim_stats s = stats_now();
        uint64_t meta = (s.heap_bytes_metadata - s0.heap_bytes_metadata) / FRAME;
        CHECKF(s.frames_free == s0.frames_free - meta, "step %d: %llu frames free, %llu before", i,
               (unsigned long long)s.frames_free, (unsigned long long)s0.frames_free);
        uint64_t now;
        size_t got = mix_longest_above_16_mib(&now);
        if (meta != 0) { /* a new metadata chunk: fill below, measure again */
            s0 = s;
            run = got, at = now;
            REQUIRE(run > 4096);
            mix_fill_below(at);
            fillers = mix_nheld;
            s0.frames_free = stats_now().frames_free;
            continue;
        }
        CHECKF(got == run && now == at,
               "step %d (pad %zu, block %zu, frame %#llx): longest run %zu at %#llx, not %zu at %#llx", i,
               pad, len, (unsigned long long)f, got, (unsigned long long)now, run, (unsigned long long)at);
        CHECKF(memshim_check() == 0, "step %d", i);
        compared++;
    }
    while (mix_nheld > 0)
        memshim_frame_free(mix_held[--mix_nheld].phys);
    struct memshim_stats s = stats_now();
    CHECK(memshim_check() == 0);
    CHECK(s.frames_free == start.frames_free - (s.heap_bytes_metadata - start.heap_bytes_metadata) / FRAME);
    CHECKF(compared > 400 && beside > 300, "%d compared, the frame right after the heap's run %d times",
           compared, beside);
}
