/* The demo's self-test: every promise of memshim's C API that a kernel can
   check, one line per check, using only the library and the identity map. */
#include "selftest.h"

#include <stdbool.h>
#include <memshim.h>

#include "console.h"
#include "platform.h"
#include "smp.h"

#define KIB ((uint64_t)1024)
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define PAGE_BYTES ((uint64_t)4096)
#define ERRNO_EINVAL 22 /* posix_memalign's code; the same in glibc and newlib */

static const struct selftest_env *env;
char selftest_why[200]; /* a failing check's reason, or a passing one's detail */

#define FAIL SELFTEST_FAIL
#define DETAIL SELFTEST_DETAIL

/* ---- the panic handler and provoked faults ---- */

static volatile bool fault_expected;
static volatile unsigned faults_seen;
static char fault_msg[256];

void selftest_panic_handler(const char *msg, size_t len, void *ctx)
{
    (void)ctx;
    if (!fault_expected) {
        kprintf("memshim panic on CPU %u: %.*s\nmemshim demo: FAIL\n", this_cpu()->number,
                (int)len, msg);
        qemu_exit(false);
    }
    size_t n = len < sizeof fault_msg - 1 ? len : sizeof fault_msg - 1;
    for (size_t i = 0; i < n; i++)
        fault_msg[i] = msg[i];
    fault_msg[n] = '\0';
    faults_seen++;
}

static void expect_fault(void)
{
    fault_msg[0] = '\0';
    faults_seen = 0;
    fault_expected = true;
}

/* Stops expecting; true when exactly one report arrived. */
static bool got_one_fault(void)
{
    fault_expected = false;
    return faults_seen == 1 && fault_msg[0];
}

/* ---- helpers ---- */

static struct memshim_stats stats(void)
{
    struct memshim_stats s;
    memshim_get_stats(&s);
    return s;
}

void selftest_print_stats(const char *when)
{
    struct memshim_stats s = stats();
    kprintf("stats %s: heap in use %lu B in %lu blocks, free %lu B, mapped %lu KiB in %lu spans; "
            "frames %lu free of %lu (%lu MiB)\n",
            when, s.heap_bytes_in_use, s.live_allocations, s.heap_bytes_free,
            s.heap_bytes_mapped >> 10, s.heap_spans, s.frames_free, s.frames_total,
            (s.frames_total * PAGE_BYTES) >> 20);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t xorshift(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

static uint64_t rng(void)
{
    return xorshift(&rng_state);
}

static bool aligned(const void *p, uint64_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

static void fill(void *p, size_t n, uint8_t seed)
{
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed + i * 7);
}

static bool filled(const void *p, size_t n, uint8_t seed)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (uint8_t)(seed + i * 7))
            return false;
    return true;
}

static bool all_bytes(const void *p, size_t n, uint8_t value)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != value)
            return false;
    return true;
}

/* ---- checks: the heap ---- */

static bool check_init(void)
{
    if (env->init_rc != 0)
        return FAIL("memshim_init_multiboot returned %d (%s)", env->init_rc,
                    memshim_strerror(env->init_rc));
    struct memshim_stats s = stats();
    if (s.frames_total == 0 || s.frames_free == 0 || s.frames_free > s.frames_total)
        return FAIL("frames: %lu free of %lu", s.frames_free, s.frames_total);
    /* Every usable frame, less what memshim reserves: below 1 MiB, the
       kernel image, the boot information and the bitmap (under 4 bits
       per frame up to the top of RAM, with its summary and run index). */
    uint64_t usable = env->usable_bytes / PAGE_BYTES;
    uint64_t image = (uint64_t)(__kernel_end - __kernel_start);
    uint64_t bitmap = env->ram_top / (2 * PAGE_BYTES);
    uint64_t reserved = (1 * MIB + image + bitmap + 64 * KIB) / PAGE_BYTES;
    if (s.frames_total > usable || s.frames_total + reserved < usable)
        return FAIL("tracks %lu frames; the boot map has %lu usable", s.frames_total, usable);
    DETAIL("%lu frames tracked, %lu free", s.frames_total, s.frames_free);
    return true;
}

static bool check_malloc_free(void)
{
    static const size_t sizes[] = {1, 15, 16, 24, 100, 1000, 4096, 100000};
    void *p[8];
    struct memshim_stats before = stats();
    for (int i = 0; i < 8; i++) {
        p[i] = malloc(sizes[i]);
        if (!p[i])
            return FAIL("malloc(%zu) returned NULL", sizes[i]);
        if (!aligned(p[i], 16))
            return FAIL("malloc(%zu) = %p is not 16-byte aligned", sizes[i], p[i]);
        if (malloc_usable_size(p[i]) < sizes[i])
            return FAIL("malloc_usable_size(%p) = %zu < %zu", p[i], malloc_usable_size(p[i]),
                        sizes[i]);
        fill(p[i], sizes[i], (uint8_t)i);
    }
    for (int i = 0; i < 8; i++)
        if (!filled(p[i], sizes[i], (uint8_t)i))
            return FAIL("block %d (%zu bytes at %p) overlaps another", i, sizes[i], p[i]);
    if (stats().live_allocations != before.live_allocations + 8)
        return FAIL("live_allocations %lu, expected %lu", stats().live_allocations,
                    before.live_allocations + 8);
    void *z1 = malloc(0), *z2 = malloc(0);
    if (!z1 || !z2 || z1 == z2)
        return FAIL("malloc(0) gave %p and %p: not unique", z1, z2);
    free(z1);
    free(z2);
    for (int i = 0; i < 8; i++)
        free(p[i]);
    free(NULL);
    if (stats().live_allocations != before.live_allocations)
        return FAIL("live_allocations %lu after freeing all, expected %lu",
                    stats().live_allocations, before.live_allocations);
    if (malloc(SIZE_MAX) || malloc(SIZE_MAX - 4096))
        return FAIL("malloc(SIZE_MAX) did not return NULL");
    return true;
}

static bool check_calloc(void)
{
    void *dirty = malloc(8192);
    if (!dirty)
        return FAIL("malloc(8192) returned NULL");
    fill(dirty, 8192, 0x5a);
    free(dirty);
    uint8_t *p = calloc(1024, 8);
    if (!p)
        return FAIL("calloc(1024, 8) returned NULL");
    bool zero = all_bytes(p, 8192, 0);
    free(p);
    if (!zero)
        return FAIL("calloc(1024, 8) memory is not zeroed");
    if (calloc(SIZE_MAX / 2 + 1, 2) || calloc(SIZE_MAX, SIZE_MAX))
        return FAIL("calloc with an overflowing product did not return NULL");
    void *none = calloc(0, 16);
    if (!none)
        return FAIL("calloc(0, 16) returned NULL");
    free(none);
    return true;
}

static bool check_realloc(void)
{
    uint8_t *p = realloc(NULL, 100);
    if (!p)
        return FAIL("realloc(NULL, 100) returned NULL");
    fill(p, 100, 3);
    uint8_t *q = realloc(p, 100000);
    if (!q || !filled(q, 100, 3))
        return FAIL("growing to 100000 bytes lost the contents (%p)", (void *)q);
    fill(q, 100000, 4);
    p = realloc(q, 40);
    if (!p || !filled(p, 40, 4))
        return FAIL("shrinking to 40 bytes lost the contents (%p)", (void *)p);
    if (realloc(p, SIZE_MAX) || !filled(p, 40, 4))
        return FAIL("realloc(p, SIZE_MAX) did not fail cleanly");
    if (reallocarray(p, SIZE_MAX / 4, 8) || !filled(p, 40, 4))
        return FAIL("reallocarray with an overflowing product did not fail cleanly");
    q = reallocarray(p, 50, 40);
    if (!q || !filled(q, 40, 4))
        return FAIL("reallocarray(p, 50, 40) lost the contents");
    if (realloc(q, 0))
        return FAIL("realloc(p, 0) did not return NULL");
    return true;
}

static bool check_one_aligned(void *p, uint64_t align, size_t size, const char *how)
{
    if (!p)
        return FAIL("%s(%lu, %zu) returned NULL", how, align, size);
    if (!aligned(p, align)) {
        free(p);
        return FAIL("%s(%lu, %zu) = %p is not aligned", how, align, size, p);
    }
    fill(p, size, 9);
    bool ok = filled(p, size, 9);
    free(p);
    return ok ? true : FAIL("%s(%lu, %zu) = %p: block not writable", how, align, size, p);
}

static bool check_aligned(void)
{
    static const uint64_t aligns[] = {32, 64, 256, 4096, 65536, 2 * MIB};
    for (int i = 0; i < 6; i++) {
        uint64_t a = aligns[i];
        if (!check_one_aligned(aligned_alloc(a, 100), a, 100, "aligned_alloc") ||
            !check_one_aligned(memalign(a, a + 1), a, a + 1, "memalign"))
            return false;
        void *p = NULL;
        int rc = posix_memalign(&p, a, 3 * a);
        if (rc != 0)
            return FAIL("posix_memalign(%lu, %lu) returned %d", a, 3 * a, rc);
        if (!check_one_aligned(p, a, 3 * a, "posix_memalign"))
            return false;
    }
    if (!check_one_aligned(memalign(2 * MIB, 3 * MIB), 2 * MIB, 3 * MIB, "memalign") ||
        !check_one_aligned(valloc(100), PAGE_BYTES, 100, "valloc"))
        return false;
    void *p = pvalloc(1);
    if (!p || malloc_usable_size(p) < PAGE_BYTES)
        return FAIL("pvalloc(1) = %p with %zu usable bytes", p, p ? malloc_usable_size(p) : 0);
    if (!check_one_aligned(p, PAGE_BYTES, PAGE_BYTES, "pvalloc"))
        return false;
    void *untouched = &untouched;
    int rc = posix_memalign(&untouched, 24, 64);
    if (rc != ERRNO_EINVAL || untouched != &untouched)
        return FAIL("posix_memalign(24, 64) returned %d, expected EINVAL", rc);
    if (aligned_alloc(3, 64))
        return FAIL("aligned_alloc(3, 64) did not return NULL");
    DETAIL("16 B .. 2 MiB alignments");
    return true;
}

/* ---- checks: memory functions (on static buffers, not the heap) ---- */

#define BUF 640
static uint8_t src_buf[BUF], dst_buf[BUF], ref_buf[BUF];

static void reference_move(uint8_t *ref, size_t dst, size_t src, size_t n)
{
    uint8_t tmp[BUF];
    for (size_t i = 0; i < n; i++)
        tmp[i] = ref[src + i];
    for (size_t i = 0; i < n; i++)
        ref[dst + i] = tmp[i];
}

static bool same(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

static bool check_memcpy(void)
{
    fill(src_buf, BUF, 1);
    for (size_t n = 0; n <= 300; n += n < 40 ? 1 : 13)
        for (size_t so = 0; so < 8; so++)
            for (size_t d = 0; d < 8; d++) {
                for (size_t i = 0; i < BUF; i++)
                    dst_buf[i] = ref_buf[i] = 0xee;
                for (size_t i = 0; i < n; i++)
                    ref_buf[16 + d + i] = src_buf[so + i];
                void *r = memcpy(dst_buf + 16 + d, src_buf + so, n);
                if (r != dst_buf + 16 + d || !same(dst_buf, ref_buf, BUF))
                    return FAIL("memcpy n=%zu src+%zu dst+%zu wrong", n, so, d);
            }
    return true;
}

static bool check_memmove(void)
{
    for (size_t n = 0; n <= 300; n += n < 40 ? 1 : 11)
        for (int shift = -33; shift <= 33; shift += 3) {
            fill(dst_buf, BUF, 2);
            fill(ref_buf, BUF, 2);
            size_t src = 100, dst = (size_t)(100 + shift);
            reference_move(ref_buf, dst, src, n);
            void *r = memmove(dst_buf + dst, dst_buf + src, n);
            if (r != dst_buf + dst || !same(dst_buf, ref_buf, BUF))
                return FAIL("memmove n=%zu shift=%d wrong", n, shift);
        }
    return true;
}

static bool check_memset_bzero(void)
{
    for (size_t n = 0; n <= 300; n += n < 40 ? 1 : 7)
        for (size_t off = 0; off < 16; off++) {
            for (size_t i = 0; i < BUF; i++)
                dst_buf[i] = ref_buf[i] = 0x11;
            for (size_t i = 0; i < n; i++)
                ref_buf[32 + off + i] = 0xc3;
            void *r = memset(dst_buf + 32 + off, 0x1c3, n); /* only the low byte counts */
            if (r != dst_buf + 32 + off || !same(dst_buf, ref_buf, BUF))
                return FAIL("memset n=%zu offset %zu wrong (tail or guard bytes)", n, off);
            for (size_t i = 0; i < n; i++)
                ref_buf[32 + off + i] = 0;
            bzero(dst_buf + 32 + off, n);
            if (!same(dst_buf, ref_buf, BUF))
                return FAIL("bzero n=%zu offset %zu wrong", n, off);
        }
    return true;
}

static bool check_memcmp(void)
{
    fill(src_buf, BUF, 5);
    for (size_t n = 1; n <= 300; n += n < 40 ? 1 : 17)
        for (size_t at = 0; at < n; at += 1 + n / 8) {
            for (size_t i = 0; i < n; i++)
                dst_buf[i] = src_buf[i];
            if (memcmp(dst_buf, src_buf, n) != 0 || bcmp(dst_buf, src_buf, n) != 0)
                return FAIL("memcmp/bcmp of equal %zu bytes is not 0", n);
            src_buf[at] = 0x01;
            dst_buf[at] = 0x80; /* compared as unsigned char: dst is greater */
            if (memcmp(dst_buf, src_buf, n) <= 0 || memcmp(src_buf, dst_buf, n) >= 0)
                return FAIL("memcmp sign wrong, n=%zu, difference at %zu", n, at);
            if (bcmp(dst_buf, src_buf, n) == 0)
                return FAIL("bcmp missed a difference, n=%zu at %zu", n, at);
            fill(src_buf, BUF, 5);
        }
    if (memcmp(src_buf, dst_buf, 0) != 0)
        return FAIL("memcmp of 0 bytes is not 0");
    return true;
}

/* The freestanding build starts on general-purpose registers only, and
 * memshim_enable_simd() refuses here: this kernel enables SSE but not
 * XSAVE (CR4.OSXSAVE clear), so it saves no AVX state. The memory checks
 * above ran on that path; any AVX instruction would have raised #UD. */
static bool check_simd_off(void)
{
    if (memshim_simd_width() != 0)
        return FAIL("vector width %d before any memshim_enable_simd()", memshim_simd_width());
    if (memshim_enable_simd() != 0)
        return FAIL("memshim_enable_simd() accepted a kernel without XSAVE");
    if (memshim_simd_width() != 0)
        return FAIL("vector width %d after a refused memshim_enable_simd()", memshim_simd_width());
    return true;
}

/* ---- checks: a random workload ---- */

#define SLOTS 512
static struct {
    uint8_t *p;
    size_t n;
    uint8_t seed;
} slot[SLOTS];

static bool slot_intact(int i)
{
    return !slot[i].p || filled(slot[i].p, slot[i].n, slot[i].seed);
}

static size_t random_size(void)
{
    uint64_t r = rng();
    /* Never 0: realloc(p, 0) frees, which the workload does not model. */
    return 1 + (size_t)(r >> 8) % ((r & 15) == 0 ? 64 * KIB : 2048);
}

static bool check_stress(void)
{
    struct memshim_stats before = stats();
    unsigned ops = 20000;
    for (unsigned op = 0; op < ops; op++) {
        int i = (int)(rng() % SLOTS);
        if (!slot_intact(i))
            return FAIL("block %p (%zu bytes) corrupted at op %u", slot[i].p, slot[i].n, op);
        size_t n = random_size();
        uint8_t seed = (uint8_t)op;
        if (!slot[i].p) {
            slot[i].p = (rng() & 1) ? malloc(n) : calloc(1, n);
        } else if (rng() & 1) {
            free(slot[i].p);
            slot[i].p = NULL;
            continue;
        } else {
            uint8_t *q = realloc(slot[i].p, n);
            if (!q)
                return FAIL("realloc(%p, %zu) failed at op %u", slot[i].p, n, op);
            size_t keep = n < slot[i].n ? n : slot[i].n;
            if (!filled(q, keep, slot[i].seed))
                return FAIL("realloc to %zu bytes lost the contents at op %u", n, op);
            slot[i].p = q;
        }
        if (!slot[i].p)
            return FAIL("allocating %zu bytes failed at op %u", n, op);
        slot[i].n = n;
        slot[i].seed = seed;
        fill(slot[i].p, n, seed);
    }
    size_t problems = memshim_check();
    for (int i = 0; i < SLOTS; i++) {
        if (!slot_intact(i))
            return FAIL("block %p corrupted at the end", slot[i].p);
        free(slot[i].p);
        slot[i].p = NULL;
    }
    if (problems)
        return FAIL("memshim_check found %zu problems mid-workload", problems);
    struct memshim_stats after = stats();
    if (after.live_allocations != before.live_allocations)
        return FAIL("live_allocations %lu after the workload, expected %lu",
                    after.live_allocations, before.live_allocations);
    DETAIL("%u random malloc/calloc/realloc/free, peak %lu KiB in use", ops,
           after.heap_peak_bytes_in_use >> 10);
    return true;
}

/* ---- checks: frames ---- */

static bool frame_usable(uint64_t f)
{
    return f >= 1 * MIB && f % PAGE_BYTES == 0 && f + PAGE_BYTES <= env->ram_top;
}

static bool check_frames(void)
{
    struct memshim_stats before = stats();
    uint64_t a = memshim_frame_alloc(), b = memshim_frame_alloc();
    if (!frame_usable(a) || !frame_usable(b) || a == b)
        return FAIL("memshim_frame_alloc gave 0x%lx and 0x%lx", a, b);
    /* Single frames come from above 16 MiB first, sparing the ISA-DMA zone. */
    if (env->ram_top >= 32 * MIB && (a < 16 * MIB || b < 16 * MIB))
        return FAIL("single frames 0x%lx, 0x%lx below 16 MiB", a, b);
    if (stats().frames_free != before.frames_free - 2)
        return FAIL("frames_free %lu after 2 allocations, expected %lu", stats().frames_free,
                    before.frames_free - 2);
    if (a < env->phys_limit && b < env->phys_limit) {
        fill((void *)(uintptr_t)a, PAGE_BYTES, 1);
        fill((void *)(uintptr_t)b, PAGE_BYTES, 2);
        if (!filled((void *)(uintptr_t)a, PAGE_BYTES, 1))
            return FAIL("frames 0x%lx and 0x%lx overlap", a, b);
    }
    memshim_frame_free(a);
    memshim_frame_free(b);
    if (stats().frames_free != before.frames_free)
        return FAIL("frames_free %lu after freeing, expected %lu", stats().frames_free,
                    before.frames_free);
    DETAIL("0x%lx, 0x%lx", a, b);
    return true;
}

static bool check_frames_contiguous(void)
{
    struct memshim_stats before = stats();
    size_t count = 16;
    uint64_t c = memshim_frame_alloc_contiguous(count, 64 * KIB, 16 * MIB);
    if (!c || c % (64 * KIB) || c < 1 * MIB || c + count * PAGE_BYTES > 16 * MIB)
        return FAIL("alloc_contiguous(16, 64 KiB, below 16 MiB) gave 0x%lx", c);
    fill((void *)(uintptr_t)c, count * PAGE_BYTES, 3);
    bool ok = filled((void *)(uintptr_t)c, count * PAGE_BYTES, 3);
    if (stats().frames_free != before.frames_free - count)
        ok = FAIL("frames_free did not drop by %zu", count);
    memshim_frame_free_contiguous(c, count);
    if (!ok)
        return false;
    if (stats().frames_free != before.frames_free)
        return FAIL("frames_free %lu after freeing, expected %lu", stats().frames_free,
                    before.frames_free);
    uint64_t none = memshim_frame_alloc_contiguous((size_t)(env->ram_top / PAGE_BYTES) + 1, 0, 0);
    if (none)
        return FAIL("a run larger than RAM was granted at 0x%lx", none);
    if (memshim_frame_alloc_contiguous(1, 3 * PAGE_BYTES, 0))
        return FAIL("a non-power-of-two alignment was accepted");
    DETAIL("64 KiB at 0x%lx", c);
    return true;
}

static bool check_frame_reserve(void)
{
    uint64_t f = memshim_frame_alloc();
    if (!f)
        return FAIL("memshim_frame_alloc returned 0");
    int rc = memshim_frame_reserve(f, PAGE_BYTES);
    if (rc != MEMSHIM_EOVERLAP)
        return FAIL("reserving an allocated frame returned %d, expected MEMSHIM_EOVERLAP", rc);
    memshim_frame_free(f);
    struct memshim_stats before = stats();
    rc = memshim_frame_reserve(f, PAGE_BYTES);
    if (rc != 0 || stats().frames_free != before.frames_free - 1)
        return FAIL("reserving the free frame 0x%lx returned %d", f, rc);
    if (memshim_frame_reserve(f, 0) != MEMSHIM_EINVAL)
        return FAIL("a zero-length reservation was accepted");
    DETAIL("0x%lx reserved for good", f);
    return true;
}

/* ---- checks: heap growth from frames ---- */

#define MAX_CHUNKS 2048
static uint64_t *chunk[MAX_CHUNKS];

static size_t chunk_size_for(uint64_t ram)
{
    size_t size = 64 * KIB;
    while (size < 16 * MIB && size * 128 <= ram)
        size *= 2;
    return size;
}

/* Marks a chunk at both ends: a chunk that shares memory with another, or
   is not really mapped, shows up when the marks are read back. */
static void mark(int i, size_t words)
{
    chunk[i][0] = (uint64_t)i;
    chunk[i][words - 1] = ~(uint64_t)i;
}

static bool marked(int i, size_t words)
{
    return chunk[i][0] == (uint64_t)i && chunk[i][words - 1] == ~(uint64_t)i;
}

static bool check_heap_growth(void)
{
    struct memshim_stats before = stats();
    uint64_t ram = before.frames_total * PAGE_BYTES;
    size_t size = chunk_size_for(ram), words = size / 8;
    int n = 0;
    uint64_t highest = 0;
    while (n < MAX_CHUNKS && (chunk[n] = malloc(size)) != NULL) {
        mark(n, words);
        if ((uintptr_t)chunk[n] > highest)
            highest = (uintptr_t)chunk[n];
        n++;
    }
    uint64_t got = (uint64_t)n * size;
    struct memshim_stats full = stats();
    bool ok = true;
    for (int i = 0; i < n && ok; i++)
        if (!marked(i, words))
            ok = FAIL("chunk %d at %p overwritten", i, (void *)chunk[i]);
    size_t problems = memshim_check();
    for (int i = 0; i < n; i++)
        free(chunk[i]);
    if (!ok)
        return false;
    if (problems)
        return FAIL("memshim_check found %zu problems with the heap full", problems);
    /* The heap grows only from frames below phys_limit. */
    uint64_t reachable = ram < env->phys_limit ? ram : env->phys_limit;
    if (got < reachable / 2)
        return FAIL("only %lu MiB of %lu MiB RAM allocated in %zu KiB chunks", got >> 20,
                    reachable >> 20, size >> 10);
    if (env->ram_top > 4 * GIB + 64 * MIB && env->phys_limit > 4 * GIB + 64 * MIB &&
        highest < 4 * GIB)
        return FAIL("no chunk above 4 GiB although RAM reaches 0x%lx", env->ram_top);
    struct memshim_stats after = stats();
    if (after.live_allocations != before.live_allocations)
        return FAIL("live_allocations %lu after freeing, expected %lu", after.live_allocations,
                    before.live_allocations);
    void *again = malloc(size);
    if (!again)
        return FAIL("malloc(%zu) failed after giving the memory back", size);
    free(again);
    DETAIL("%lu MiB in %d x %zu KiB (highest %p); frames free %lu -> %lu -> %lu", got >> 20, n,
           size >> 10, (void *)(uintptr_t)highest, before.frames_free, full.frames_free,
           after.frames_free);
    return true;
}

/* ---- checks: introspection and misuse ---- */

static bool check_consistency(void)
{
    size_t problems = memshim_check();
    if (problems)
        return FAIL("memshim_check found %zu problems", problems);
    struct memshim_stats s = stats();
    if (s.heap_peak_bytes_in_use < s.heap_bytes_in_use ||
        s.heap_bytes_in_use + s.heap_bytes_free > s.heap_bytes_mapped)
        return FAIL("inconsistent counters: in use %lu, free %lu, mapped %lu, peak %lu",
                    s.heap_bytes_in_use, s.heap_bytes_free, s.heap_bytes_mapped,
                    s.heap_peak_bytes_in_use);
    return true;
}

static size_t dumped;

static void dump_line(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    console_write(text, len);
    dumped += len;
}

static bool check_dump(void)
{
    dumped = 0;
    kprintf("---- memshim_dump\n");
    memshim_dump(dump_line, NULL);
    kprintf("---- end of dump\n");
    return dumped ? true : FAIL("memshim_dump wrote nothing");
}

static bool check_double_free(void)
{
    void *p = malloc(64), *keep = malloc(64);
    if (!p || !keep)
        return FAIL("malloc(64) returned NULL");
    free(p);
    expect_fault();
    free(p);
    if (!got_one_fault())
        return FAIL("double free of %p not reported (%u reports)", p, faults_seen);
    DETAIL("reported: \"%s\"", fault_msg);
    free(keep);
    size_t problems = memshim_check();
    return problems ? FAIL("heap damaged after the report: %zu problems", problems) : true;
}

static bool check_bad_pointer(void)
{
    uint8_t *p = malloc(256);
    if (!p)
        return FAIL("malloc(256) returned NULL");
    fill(p, 256, 7);
    expect_fault();
    free(p + 32);
    if (!got_one_fault())
        return FAIL("free of interior pointer %p not reported", (void *)(p + 32));
    expect_fault();
    void *r = realloc(p + 32, 1000);
    if (!got_one_fault() || r)
        return FAIL("realloc of interior pointer not refused (returned %p)", r);
    if (!filled(p, 256, 7))
        return FAIL("the block changed after the refused calls");
    DETAIL("reported: \"%s\"", fault_msg);
    free(p);
    size_t problems = memshim_check();
    return problems ? FAIL("heap damaged after the reports: %zu problems", problems) : true;
}

static bool check_overrun(void)
{
    /* Above the small-object classes (8 KiB) a block has a header in front;
       small blocks keep no metadata in user memory for an overrun to hit. */
    uint8_t *a = malloc(9000), *b = malloc(9000);
    if (!a || !b)
        return FAIL("malloc(9000) returned NULL");
    /* Overrun a by 16 bytes: whatever follows it (b's header, or a span's
       end marker) is heap metadata. Keep the bytes to repair it after. */
    size_t end = malloc_usable_size(a);
    uint8_t saved[16];
    memcpy(saved, a + end, sizeof saved);
    memset(a + end, 0x41, sizeof saved);
    size_t problems = memshim_check();
    expect_fault();
    free(a);
    bool reported = got_one_fault();
    memcpy(a + end, saved, sizeof saved);
    size_t after_repair = memshim_check();
    free(a);
    free(b);
    if (!problems)
        return FAIL("memshim_check missed 16 bytes written past %p", (void *)(a + end));
    if (!reported)
        return FAIL("free next to the overwritten header was not reported");
    if (after_repair)
        return FAIL("%zu problems after repairing the header", after_repair);
    DETAIL("memshim_check: %zu problem(s); free reported: \"%s\"", problems, fault_msg);
    return true;
}

static bool check_frame_double_free(void)
{
    uint64_t f = memshim_frame_alloc();
    if (!f)
        return FAIL("memshim_frame_alloc returned 0");
    memshim_frame_free(f);
    uint64_t free_before = stats().frames_free;
    expect_fault();
    memshim_frame_free(f);
    if (!got_one_fault())
        return FAIL("double free of frame 0x%lx not reported", f);
    if (stats().frames_free != free_before)
        return FAIL("frames_free changed by the refused free");
    DETAIL("reported: \"%s\"", fault_msg);
    return true;
}

/* ---- cycles per operation (rdtsc) ---- */

uint64_t selftest_pair_cycles(size_t n, unsigned reps)
{
    uint64_t t0 = rdtsc();
    for (unsigned i = 0; i < reps; i++) {
        void *p = malloc(n);
        *(volatile char *)p = 1;
        free(p);
    }
    return (rdtsc() - t0) / reps;
}

uint64_t selftest_random_cycles(unsigned ops, uint64_t *rng_state, void *ws[512])
{
    uint64_t t0 = rdtsc();
    for (unsigned op = 0; op < ops; op++) {
        unsigned i = (unsigned)(xorshift(rng_state) % 512);
        if (ws[i]) {
            free(ws[i]);
            ws[i] = NULL;
        } else {
            uint64_t r = xorshift(rng_state);
            ws[i] = malloc(8 + (size_t)(r >> 8) % ((r & 15) == 0 ? 4096 : 256));
        }
    }
    uint64_t t = rdtsc() - t0;
    for (unsigned i = 0; i < 512; i++) {
        free(ws[i]);
        ws[i] = NULL;
    }
    return t / ops;
}

static void *timing_slots[512];

/* The best of three runs: under emulation a host thread that loses its
   core for a while inflates one run, rarely all three. */
static uint64_t best_pair(size_t n, unsigned reps)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        uint64_t c = selftest_pair_cycles(n, reps);
        best = c < best ? c : best;
    }
    return best;
}

static uint64_t best_random(unsigned ops, uint64_t *rng_state, void *ws[512])
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 3; i++) {
        uint64_t c = selftest_random_cycles(ops, rng_state, ws);
        best = c < best ? c : best;
    }
    return best;
}

static void time_row(const char *label, char *out, size_t len)
{
    ksnprintf(out, len, "%s: 16 B %lu, 256 B %lu, 4 KiB %lu, 64 KiB %lu, random %lu", label,
              best_pair(16, 20000), best_pair(256, 20000), best_pair(4096, 20000),
              best_pair(64 * KIB, 2000), best_random(20000, &rng_state, timing_slots));
}

static unsigned cpu_zero(void *ctx)
{
    (void)ctx;
    return 0;
}

/* Cycles per malloc+free pair (and per operation of a random workload),
   best of three runs each: first with every CPU sharing one cache
   (nothing configured), then with the CPU registered through a hook, then
   through a GS slot (the number in the per-CPU area GS points at, smp.h).
   Under software emulation the figures are the emulator's, not a CPU's. */
static bool check_timing(void)
{
    char shared[120], hook[120], gs[120];
    time_row("shared", shared, sizeof shared);
    if (memshim_set_cpu_hook(1, cpu_zero, NULL) != 0)
        return FAIL("memshim_set_cpu_hook(1, ...) refused");
    time_row("hook", hook, sizeof hook);
    if (memshim_set_cpu_gs(1, offsetof(struct cpu, number)) != 0)
        return FAIL("memshim_set_cpu_gs(1, 0) refused");
    time_row("gs", gs, sizeof gs);
    if (memshim_set_cpu_hook(0, cpu_zero, NULL) == 0 || memshim_set_cpu_gs(257, 0) == 0)
        return FAIL("a CPU count of 0 or 257 was accepted");
    size_t problems = memshim_check();
    if (problems)
        return FAIL("memshim_check found %zu problems after the timed runs", problems);
    kprintf("     cycles per malloc+free pair (rdtsc):\n       %s\n       %s\n       %s\n", shared,
            hook, gs);
    return true;
}

/* ---- re-entry: memshim called while it holds its lock ---- */

static unsigned hook_calls;
static void *hook_inner;

/* A page hook that breaks the rule (hooks must not call memshim): memshim
   holds its lock while it runs, so this malloc is a re-entrant call. */
static bool contains(const char *s, const char *word)
{
    for (; *s; s++) {
        size_t i = 0;
        while (word[i] && s[i] == word[i])
            i++;
        if (!word[i])
            return true;
    }
    return false;
}

static void *reentering_pages(size_t pages, void *ctx)
{
    (void)pages;
    (void)ctx;
    hook_calls++;
    hook_inner = malloc(64 * KIB);
    return NULL;
}

/* With the CPU registered (check_timing did), the lock knows its holder: the
   nested call is reported as a re-entrant call and fails; nothing hangs, and
   the outer call, which asked for more than RAM, fails too. */
static bool check_reentry(void)
{
    memshim_set_page_hooks(reentering_pages, NULL, NULL);
    expect_fault();
    void *p = malloc((size_t)env->ram_top + 64 * MIB);
    fault_expected = false;
    /* One report per hook call: the heap asks the hook more than once. */
    bool reported = faults_seen >= 1 && faults_seen == hook_calls;
    memshim_set_page_hooks(NULL, NULL, NULL);
    if (p)
        return FAIL("malloc of more than RAM returned %p", p);
    if (hook_calls == 0)
        return FAIL("the page hook was never called");
    if (!reported || !contains(fault_msg, "re-entrant"))
        return FAIL("the re-entrant mallocs were not reported (%u calls, %u reports: \"%s\")",
                    hook_calls, faults_seen, fault_msg);
    if (hook_inner)
        return FAIL("the re-entrant malloc returned %p", hook_inner);
    void *q = malloc(64 * KIB);
    if (!q)
        return FAIL("malloc failed after the re-entry");
    free(q);
    size_t problems = memshim_check();
    if (problems)
        return FAIL("memshim_check: %zu problems after the re-entry", problems);
    DETAIL("%u reports: \"%s\"", faults_seen, fault_msg);
    return true;
}

static const struct selftest_check checks[] = {
    {"memshim_init_multiboot", check_init},
    {"malloc/free", check_malloc_free},
    {"calloc", check_calloc},
    {"realloc/reallocarray", check_realloc},
    {"aligned forms", check_aligned},
    {"memcpy", check_memcpy},
    {"memmove", check_memmove},
    {"memset/bzero", check_memset_bzero},
    {"memcmp/bcmp", check_memcmp},
    {"vector path off without XSAVE", check_simd_off},
    {"random workload", check_stress},
    {"frame alloc/free", check_frames},
    {"contiguous frames < 16 MiB", check_frames_contiguous},
    {"frame reserve", check_frame_reserve},
    {"heap growth from frames", check_heap_growth},
    {"memshim_check/stats", check_consistency},
    {"memshim_dump", check_dump},
    {"double free caught", check_double_free},
    {"bad pointer caught", check_bad_pointer},
    {"overrun caught", check_overrun},
    {"frame double free caught", check_frame_double_free},
    {"cycles per operation", check_timing},
    {"re-entry reported", check_reentry},
};

static bool run_one(const struct selftest_check *c)
{
    selftest_why[0] = '\0';
    bool ok = c->run();
    kprintf("%s %-28s %s\n", ok ? "ok  " : "FAIL", c->name, selftest_why);
    return ok;
}

unsigned selftest_run(const struct selftest_env *e)
{
    env = e;
    unsigned failed = 0, total = 0;
    for (unsigned i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (checks[i].run == check_timing && env->cpu_check_count) {
            for (unsigned j = 0; j < env->cpu_check_count; j++, total++)
                failed += !run_one(&env->cpu_checks[j]);
            continue;
        }
        failed += !run_one(&checks[i]);
        total++;
    }
    selftest_print_stats("at the end");
    kprintf("self-test: %u checks, %u failed\n", total, failed);
    return failed;
}
