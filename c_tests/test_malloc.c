/* The standard allocation functions: alignment, sizes, errno, realloc rules,
 * the aligned family, malloc_usable_size, size_t end to end. */
#include "harness.h"

#include <malloc.h>

/* These tests pass impossible sizes on purpose and keep using a block after a
 * realloc that failed (which leaves it live); GCC cannot know either. */
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)
#define GiB ((size_t)1 << 30)

/* Sizes around every interesting boundary: small, class edges, pages, spans. */
static size_t test_size(size_t i)
{
    static const size_t fixed[] = {
        0, 1, 2, 3, 7, 8, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 100, 127, 128, 129,
        255, 256, 257, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 8191, 8192, 65535, 65536,
        65537, 131072, 262143, 1048575, 1048576, 1048577, 4194304 + 3, 16777216,
    };
    size_t n = sizeof fixed / sizeof fixed[0];
    return i < n ? fixed[i] : (size_t)-1;
}

TEST(alignment_every_small_size)
{
    enum { N = 4097 };
    static void *p[N];
    for (size_t n = 0; n < N; n++) {
        p[n] = malloc(n);
        REQUIRE(p[n] != NULL);
        CHECKF(aligned_to(p[n], 16), "malloc(%zu) = %p not 16-aligned", n, p[n]);
        memset(p[n], 0xA5, n);
    }
    for (size_t n = 0; n < N; n++)
        free(p[n]);
    CHECK(heap_problems() == 0);
}

TEST(alignment_malloc_2)
{
    /* glibc's own tests expect 16 even for tiny requests. */
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = malloc(2);
        REQUIRE(p[i] != NULL);
        CHECKF(aligned_to(p[i], 16), "malloc(2) = %p", p[i]);
    }
    for (int i = 0; i < 64; i++)
        free(p[i]);
}

TEST(alignment_boundary_sizes)
{
    for (size_t i = 0; test_size(i) != (size_t)-1; i++) {
        size_t n = test_size(i);
        void *p = malloc(n);
        REQUIRE(p != NULL);
        CHECKF(aligned_to(p, 16), "malloc(%zu) = %p", n, p);
        CHECKF(malloc_usable_size(p) >= n, "usable %zu < %zu", malloc_usable_size(p), n);
        memset(p, 0x5A, n);
        free(p);
    }
    CHECK(heap_problems() == 0);
}

TEST(malloc_zero_unique_and_freeable)
{
    enum { N = 100 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = malloc(0);
        REQUIRE(p[i] != NULL);
        CHECK(aligned_to(p[i], 16));
        for (int j = 0; j < i; j++)
            CHECKF(p[i] != p[j], "malloc(0) returned %p twice", p[i]);
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    CHECK(heap_problems() == 0);
}

TEST(free_null_is_a_no_op)
{
    struct memshim_stats a = stats_now();
    errno = 4242;
    free(NULL);
    CHECK(errno == 4242);
    struct memshim_stats b = stats_now();
    CHECK(a.total_frees == b.total_frees);
    CHECK(a.live_allocations == b.live_allocations);
}

TEST(free_leaves_errno_unchanged)
{
    size_t sizes[] = {1, 100, 5000, 300 * KiB, 8 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(sizes[i]);
        REQUIRE(p != NULL);
        memset(p, 1, sizes[i]);
        errno = ENOMEM;
        free(p);
        CHECKF(errno == ENOMEM, "free of %zu bytes changed errno to %d", sizes[i], errno);
        errno = 0;
        p = malloc(sizes[i]);
        REQUIRE(p != NULL);
        free(p);
        CHECKF(errno == 0, "free of %zu bytes set errno to %d", sizes[i], errno);
    }
}

TEST(calloc_zeroes)
{
    /* Dirty memory first, so zeroes are not just fresh pages. */
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; test_size(i) != (size_t)-1; i++) {
            size_t n = test_size(i);
            void *d = malloc(n);
            REQUIRE(d != NULL);
            memset(d, 0xFF, n);
            free(d);
            unsigned char *p = calloc(1, n);
            REQUIRE(p != NULL);
            CHECK(aligned_to(p, 16));
            size_t bad = 0;
            for (size_t k = 0; k < n; k++)
                bad += p[k] != 0;
            CHECKF(bad == 0, "calloc(1, %zu): %zu non-zero bytes", n, bad);
            free(p);
        }
    }
    unsigned char *q = calloc(1000, 24);
    REQUIRE(q != NULL);
    for (size_t k = 0; k < 24000; k++)
        CHECKF(q[k] == 0, "calloc(1000, 24)[%zu] = %d", k, q[k]);
    free(q);
    q = calloc(0, 5);
    CHECK(q != NULL);
    free(q);
}

TEST(calloc_overflow_enomem)
{
    struct { size_t n, s; } cases[] = {
        {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX, SIZE_MAX}, {((size_t)1 << 33) + 1, (size_t)1 << 31},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        errno = 0;
        void *p = calloc(cases[i].n, cases[i].s);
        CHECKF(p == NULL, "calloc(%zu, %zu) = %p", cases[i].n, cases[i].s, p);
        CHECKF(errno == ENOMEM, "calloc(%zu, %zu): errno %d", cases[i].n, cases[i].s, errno);
    }
}

TEST(malloc_huge_enomem)
{
    for (size_t k = 0; k <= 64; k++) {
        errno = 0;
        void *p = malloc(SIZE_MAX - k);
        CHECKF(p == NULL, "malloc(SIZE_MAX - %zu) = %p", k, p);
        CHECKF(errno == ENOMEM, "malloc(SIZE_MAX - %zu): errno %d", k, errno);
    }
    errno = 0;
    CHECK(malloc(SIZE_MAX / 2 + 1) == NULL);
    CHECK(errno == ENOMEM);
}

TEST(realloc_null_is_malloc)
{
    void *p = realloc(NULL, 100);
    REQUIRE(p != NULL);
    CHECK(aligned_to(p, 16));
    CHECK(malloc_usable_size(p) >= 100);
    memset(p, 7, 100);
    free(p);
    p = realloc(NULL, 0);
    CHECK(p != NULL); /* like malloc(0) */
    free(p);
}

TEST(realloc_zero_frees_and_returns_null)
{
    void *p = malloc(100);
    REQUIRE(p != NULL);
    struct memshim_stats a = stats_now();
    void *q = realloc(p, 0);
    CHECK(q == NULL);
    struct memshim_stats b = stats_now();
    if (!harness_reference) {
        CHECK(b.live_allocations == a.live_allocations - 1);
        CHECK(b.total_frees == a.total_frees + 1);
    }
    CHECK(heap_problems() == 0);
}

TEST(realloc_grow_shrink_preserve_contents)
{
    uint64_t seed = 12345;
    void *p = NULL;
    size_t have = 0;
    for (int step = 0; step < 400; step++) {
        size_t n = (size_t)(harness_rand(&seed) % (step % 10 == 0 ? 3 * MiB : 5000)) + 1;
        void *q = realloc(p, n);
        REQUIRE(q != NULL);
        CHECK(aligned_to(q, 16));
        size_t keep = have < n ? have : n;
        CHECKF(has_pattern(q, keep, 99), "step %d: contents lost going %zu -> %zu", step, have, n);
        fill_pattern(q, n, 99);
        p = q;
        have = n;
    }
    free(p);
    CHECK(heap_problems() == 0);
}

TEST(realloc_in_place)
{
    MEMSHIM_ONLY();
    /* Shrinking a block above the small-object classes never moves it. */
    char *p = malloc(40000);
    REQUIRE(p != NULL);
    fill_pattern(p, 40000, 3);
    CHECK(realloc(p, 1000) == p);
    CHECK(has_pattern(p, 1000, 3));
    /* Growing into a free neighbour does not move: find two adjacent blocks
       (above the small-object classes, 8 KiB, where blocks have neighbours). */
    char *a = NULL, *b = NULL;
    void *junk[200];
    int nj = 0;
    for (; nj < 200; nj++) {
        a = malloc(9000);
        b = malloc(9000);
        REQUIRE(a && b);
        if (b > a && (size_t)(b - a) <= malloc_usable_size(a) + 16)
            break;
        junk[nj] = a;
        free(b);
    }
    REQUIRE(nj < 200);
    fill_pattern(a, 9000, 4);
    free(b);
    CHECK(realloc(a, 17000) == a);
    CHECK(has_pattern(a, 9000, 4));
    /* A small block stays put while the new size fits its class. */
    char *s = malloc(100);
    REQUIRE(s != NULL);
    fill_pattern(s, 100, 6);
    CHECK(realloc(s, malloc_usable_size(s)) == s);
    CHECK(realloc(s, 60) == s);
    CHECK(has_pattern(s, 60, 6));
    free(s);
    free(a);
    free(p);
    for (int i = 0; i < nj; i++)
        free(junk[i]);
    CHECK(heap_problems() == 0);
}

TEST(realloc_failure_leaves_block_intact)
{
    size_t huge[] = {SIZE_MAX, SIZE_MAX - 15, SIZE_MAX / 2 + 1, (size_t)1 << 62};
    char *p = malloc(300);
    REQUIRE(p != NULL);
    fill_pattern(p, 300, 5);
    struct memshim_stats a = stats_now();
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        errno = 0;
        void *q = realloc(p, huge[i]);
        CHECKF(q == NULL, "realloc(p, %#zx) = %p", huge[i], q);
        CHECKF(errno == ENOMEM, "realloc(p, %#zx): errno %d", huge[i], errno);
        CHECK(has_pattern(p, 300, 5));
    }
    struct memshim_stats b = stats_now();
    CHECK(a.live_allocations == b.live_allocations);
    CHECK(malloc_usable_size(p) >= 300);
    char *q = realloc(p, 600); /* still a live block */
    REQUIRE(q != NULL);
    CHECK(has_pattern(q, 300, 5));
    free(q);
    CHECK(heap_problems() == 0);
}

TEST(reallocarray_overflow)
{
    char *p = reallocarray(NULL, 10, 10);
    REQUIRE(p != NULL);
    fill_pattern(p, 100, 6);
    errno = 0;
    CHECK(reallocarray(p, SIZE_MAX / 2, 3) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(reallocarray(p, (size_t)1 << 32, (size_t)1 << 32) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(has_pattern(p, 100, 6));
    char *q = reallocarray(p, 50, 40);
    REQUIRE(q != NULL);
    CHECK(has_pattern(q, 100, 6));
    CHECK(malloc_usable_size(q) >= 2000);
    free(q);
}

TEST(posix_memalign_einval)
{
    size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 100, 4095, 4097, 3 * 4096, SIZE_MAX, SIZE_MAX / 2};
    void *sentinel = (void *)0x1234;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = sentinel;
        errno = 777;
        int r = posix_memalign(&p, bad[i], 64);
        CHECKF(r == EINVAL, "posix_memalign(align %zu) = %d, not EINVAL", bad[i], r);
        CHECKF(p == sentinel, "posix_memalign(align %zu) touched *memptr", bad[i]);
        CHECKF(errno == 777, "posix_memalign(align %zu) changed errno to %d", bad[i], errno);
    }
}

TEST(posix_memalign_enomem)
{
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, (size_t)1 << 62};
    void *sentinel = (void *)0x1234;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = sentinel;
        errno = 777;
        int r = posix_memalign(&p, 64, sizes[i]);
        CHECKF(r == ENOMEM, "posix_memalign(64, %#zx) = %d, not ENOMEM", sizes[i], r);
        CHECK(p == sentinel);
        /* memshim's promise; glibc sets errno here. */
        CHECK(harness_reference || errno == 777);
    }
}

TEST(posix_memalign_alignments)
{
    for (size_t a = sizeof(void *); a <= 2 * MiB; a *= 2) {
        size_t sizes[] = {0, 1, a - 1, a, a + 1, 3 * a + 5};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = NULL;
            int r = posix_memalign(&p, a, sizes[i]);
            CHECKF(r == 0, "posix_memalign(%zu, %zu) = %d", a, sizes[i], r);
            if (r != 0)
                continue;
            CHECKF(aligned_to(p, a < 16 ? 16 : a), "posix_memalign(%zu) = %p", a, p);
            CHECK(malloc_usable_size(p) >= sizes[i]);
            memset(p, 0x11, sizes[i]);
            free(p);
        }
    }
    CHECK(heap_problems() == 0);
}

TEST(aligned_alloc_alignments)
{
    for (size_t a = 1; a <= 2 * MiB; a *= 2) {
        size_t sizes[] = {1, a, 100, 3 * a};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = aligned_alloc(a, sizes[i]);
            CHECKF(p != NULL, "aligned_alloc(%zu, %zu) = NULL", a, sizes[i]);
            if (!p)
                continue;
            CHECKF(aligned_to(p, a < 16 ? 16 : a), "aligned_alloc(%zu) = %p", a, p);
            CHECK(malloc_usable_size(p) >= sizes[i]);
            memset(p, 0x22, sizes[i]);
            free(p);
        }
    }
    CHECK(heap_problems() == 0);
}

TEST(aligned_alloc_bad_alignment_einval)
{
    /* glibc before 2.38 rounds such alignments up like memalign. */
    MEMSHIM_ONLY();
    size_t bad[] = {3, 24, 100, 4097};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECKF(aligned_alloc(bad[i], 64) == NULL, "aligned_alloc(%zu) succeeded", bad[i]);
        CHECK(errno == EINVAL);
    }
    errno = 0;
    CHECK(aligned_alloc(64, SIZE_MAX - 10) == NULL);
    CHECK(errno == ENOMEM);
}

TEST(memalign_alignments)
{
    size_t aligns[] = {1, 8, 16, 24, 32, 48, 100, 4096, 5000, 65536, 2 * MiB};
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
        size_t want = 16;
        while (want < aligns[i])
            want *= 2; /* a non-power of two is rounded up */
        void *p = memalign(aligns[i], 3000);
        REQUIRE(p != NULL);
        CHECKF(aligned_to(p, want), "memalign(%zu) = %p, want %zu-aligned", aligns[i], p, want);
        CHECK(malloc_usable_size(p) >= 3000);
        memset(p, 0x33, 3000);
        free(p);
    }
    void *big = memalign(2 * MiB, 3 * MiB);
    REQUIRE(big != NULL);
    CHECK(aligned_to(big, 2 * MiB));
    memset(big, 1, 3 * MiB);
    free(big);
    errno = 0;
    CHECK(memalign(64, SIZE_MAX - 10) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(memalign(SIZE_MAX / 2 + 2, 16) == NULL); /* too large to round */
    CHECK(errno == EINVAL || errno == ENOMEM);
    CHECK(heap_problems() == 0);
}

TEST(valloc_pvalloc)
{
    size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, MiB + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        void *v = valloc(n);
        REQUIRE(v != NULL);
        CHECKF(aligned_to(v, 4096), "valloc(%zu) = %p", n, v);
        CHECK(malloc_usable_size(v) >= n);
        memset(v, 0x44, n);
        void *pv = pvalloc(n);
        REQUIRE(pv != NULL);
        CHECKF(aligned_to(pv, 4096), "pvalloc(%zu) = %p", n, pv);
        size_t rounded = (n + 4095) & ~(size_t)4095;
        CHECKF(malloc_usable_size(pv) >= rounded, "pvalloc(%zu): usable %zu < %zu", n,
               malloc_usable_size(pv), rounded);
        memset(pv, 0x55, rounded);
        free(v);
        free(pv);
    }
    errno = 0;
    CHECK(pvalloc(SIZE_MAX - 100) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(valloc(SIZE_MAX - 100) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(heap_problems() == 0);
}

TEST(two_mib_alignment_many)
{
    enum { N = 8 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = aligned_alloc(2 * MiB, 100 + (size_t)i * 4096);
        REQUIRE(p[i] != NULL);
        CHECK(aligned_to(p[i], 2 * MiB));
        memset(p[i], i, 100);
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    CHECK(heap_problems() == 0);
}

TEST(usable_size_covers_request)
{
    CHECK(malloc_usable_size(NULL) == 0);
    /* Writing every usable byte must not disturb any other block. */
    enum { N = 300 };
    static char *p[N];
    static size_t len[N];
    uint64_t seed = 7;
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(harness_rand(&seed) % 3000);
        p[i] = malloc(n);
        REQUIRE(p[i] != NULL);
        len[i] = malloc_usable_size(p[i]);
        CHECKF(len[i] >= n, "usable %zu < %zu", len[i], n);
        fill_pattern(p[i], len[i], (unsigned)i);
    }
    for (int i = 0; i < N; i++)
        CHECKF(has_pattern(p[i], len[i], (unsigned)i), "block %d overwritten", i);
    CHECK(heap_problems() == 0);
    for (int i = 0; i < N; i++)
        free(p[i]);
    CHECK(heap_problems() == 0);
}

/* A request above 4 GiB must succeed with a usable size covering it, or fail
 * with ENOMEM; a 32-bit truncation would hand back a tiny block. */
static void check_big(size_t n)
{
    errno = 0;
    unsigned char *p = malloc(n);
    if (p == NULL) {
        CHECKF(errno == ENOMEM, "malloc(%#zx) = NULL with errno %d", n, errno);
        return;
    }
    CHECKF(malloc_usable_size(p) >= n, "malloc(%#zx): usable %#zx", n, malloc_usable_size(p));
    /* Touch a few pages only (the rest stays untouched virtual memory). */
    p[0] = 1;
    p[(size_t)1 << 32] = 2;
    p[n - 1] = 3;
    CHECK(p[0] == 1 && p[(size_t)1 << 32] == 2 && p[n - 1] == 3);
    CHECK(heap_problems() == 0);
    free(p);
}

TEST(size_t_end_to_end)
{
    check_big(((size_t)1 << 32) + 16);
    check_big(5 * GiB);
    check_big(((size_t)1 << 33) + 1);
    /* realloc across 4 GiB keeps contents. */
    char *p = malloc(1000);
    REQUIRE(p != NULL);
    fill_pattern(p, 1000, 8);
    errno = 0;
    char *q = realloc(p, ((size_t)1 << 32) + 100);
    if (q == NULL) {
        CHECK(errno == ENOMEM);
        CHECK(has_pattern(p, 1000, 8));
        free(p);
    } else {
        CHECK(malloc_usable_size(q) >= ((size_t)1 << 32) + 100);
        CHECK(has_pattern(q, 1000, 8));
        q[((size_t)1 << 32) + 99] = 9;
        free(q);
    }
    /* aligned forms too */
    void *a = NULL;
    int r = posix_memalign(&a, 4096, ((size_t)1 << 32) + 1);
    CHECK(r == 0 || r == ENOMEM);
    if (r == 0) {
        CHECK(malloc_usable_size(a) >= ((size_t)1 << 32) + 1);
        free(a);
    }
    CHECK(heap_problems() == 0);
}

TEST(random_workload_then_check)
{
    enum { SLOTS = 512 };
    static char *p[SLOTS];
    static size_t len[SLOTS];
    uint64_t seed = 2024;
    for (int step = 0; step < 30000; step++) {
        int i = (int)(harness_rand(&seed) % SLOTS);
        uint64_t r = harness_rand(&seed);
        size_t n = (size_t)(r % (r & 0x100 ? 100000 : 600));
        if (p[i]) {
            CHECKF(has_pattern(p[i], len[i], (unsigned)i), "step %d: slot %d corrupted", step, i);
        }
        switch (r >> 60 & 3) {
        case 0:
            free(p[i]);
            p[i] = NULL;
            len[i] = 0;
            break;
        case 1: {
            size_t keep = len[i] < n + 1 ? len[i] : n + 1;
            char *q = realloc(p[i], n + 1);
            REQUIRE(q != NULL);
            p[i] = q;
            CHECKF(has_pattern(q, keep, (unsigned)i), "step %d: realloc lost contents", step);
            fill_pattern(q, n + 1, (unsigned)i);
            len[i] = n + 1;
            break;
        }
        case 2:
            free(p[i]);
            p[i] = (r & 1) ? calloc(n, 1) : aligned_alloc((size_t)16 << (r >> 8 & 7), n);
            REQUIRE(p[i] != NULL || n == 0);
            fill_pattern(p[i], n, (unsigned)i);
            len[i] = n;
            break;
        default:
            free(p[i]);
            p[i] = malloc(n);
            REQUIRE(p[i] != NULL);
            fill_pattern(p[i], n, (unsigned)i);
            len[i] = n;
        }
        if (step % 5000 == 0)
            CHECKF(heap_problems() == 0, "step %d: memshim_check() != 0", step);
    }
    for (int i = 0; i < SLOTS; i++)
        free(p[i]);
    CHECK(heap_problems() == 0);
}
