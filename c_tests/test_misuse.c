/* Misuse: each fault in a forked child that must die of SIGABRT with
 * `memshim: <message naming the fault and the address>` on stderr; then the
 * same faults with a panic handler that returns, after which the process
 * goes on with a consistent heap. */
#include "harness.h"

/* Using freed blocks is the point of this file. */
#pragma GCC diagnostic ignored "-Wuse-after-free"
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"

#define DOUBLE_FREE_WORDS "double free"
#define STALE_WORDS "double free|already free|freed|invalid pointer|not a block"
#define BAD_PTR_WORDS "invalid pointer|not a block|foreign|interior"
#define CORRUPT_WORDS "corrupt|overwritten|overrun|overflow"

/* Blocks above memshim's small-object classes (8 KiB) carry a header in
 * front of them, which an overrun of the block before reaches. Small blocks
 * keep no metadata in user memory at all: an overrun of one reaches only
 * the next block's data (see small_overrun_leaves_heap_intact). */
#define BIG 9000

/* Two blocks of `n` bytes where b directly follows a (so an overrun of a
 * reaches b's header). Earlier non-adjacent pairs are kept live. */
static void adjacent_pair(size_t n, char **a, char **b)
{
    for (int tries = 0; tries < 100; tries++) {
        *a = malloc(n);
        *b = malloc(n);
        if (*a && *b && *b > *a && (size_t)(*b - *a) <= malloc_usable_size(*a) + 16)
            return;
    }
    *a = *b = NULL;
}

/* Overwrites `len` bytes right after a's usable end (b's header), saving them. */
static void overrun(char *a, unsigned char *saved, size_t len)
{
    char *end = a + malloc_usable_size(a);
    memcpy(saved, end, len);
    memset(end, 0x41, len);
}

/* ---- the faults, as child bodies ------------------------------------- */

static void do_double_free(void *arg)
{
    (void)arg;
    char *p = malloc(100), *guard = malloc(100);
    free(p);
    harness_note(0, p);
    free(p);
    (void)guard;
}

static void do_double_free_after_merge(void *arg)
{
    (void)arg;
    char *a = malloc(100), *p = malloc(100), *guard = malloc(100);
    free(a);
    free(p); /* coalesces with a */
    harness_note(0, p);
    free(p);
    (void)guard;
}

static void do_interior_free(void *arg)
{
    size_t off = (size_t)(uintptr_t)arg;
    char *p = malloc(256);
    harness_note(0, p + off);
    free(p + off);
}

static void do_stack_free(void *arg)
{
    (void)arg;
    _Alignas(16) char local[64];
    memset(local, 0, sizeof local);
    harness_note(0, local + 16);
    free(local + 16);
}

static _Alignas(16) char static_buf[256];

static void do_static_free(void *arg)
{
    (void)arg;
    harness_note(0, static_buf + 32);
    free(static_buf + 32);
}

/* A foreign page with nothing readable before it: memshim must not touch
 * memory below the pointer before knowing it is its own. */
static void do_foreign_page_free(void *arg)
{
    (void)arg;
    char *m = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        _exit(3);
    mprotect(m, 4096, PROT_NONE);
    harness_note(0, m + 4096);
    free(m + 4096);
}

static void do_realloc_freed(void *arg)
{
    (void)arg;
    char *p = malloc(100), *guard = malloc(100);
    free(p);
    harness_note(0, p);
    p = realloc(p, 200);
    (void)guard;
}

static void do_realloc_interior(void *arg)
{
    (void)arg;
    char *p = malloc(100);
    harness_note(0, p + 32);
    p = realloc(p + 32, 200);
}

/* Overrun of a into b's header; then free(b) (the damaged block itself). */
static void do_overrun_free_victim(void *arg)
{
    (void)arg;
    char *a, *b;
    unsigned char saved[32];
    adjacent_pair(BIG, &a, &b);
    if (!a)
        _exit(3);
    harness_note(0, a);
    harness_note(1, b);
    overrun(a, saved, sizeof saved);
    free(b);
}

/* Overrun of a into b's header; then free(a), whose merge looks at b. */
static void do_overrun_free_neighbour(void *arg)
{
    (void)arg;
    char *a, *b;
    unsigned char saved[32];
    adjacent_pair(BIG, &a, &b);
    if (!a)
        _exit(3);
    harness_note(0, a);
    harness_note(1, b);
    overrun(a, saved, sizeof saved);
    free(a);
}

/* Overrun of a into a FREE neighbour's header; then free(a) merges with it. */
static void do_overrun_free_block(void *arg)
{
    (void)arg;
    char *a, *b, *guard;
    unsigned char saved[32];
    adjacent_pair(BIG, &a, &b);
    if (!a)
        _exit(3);
    guard = malloc(BIG);
    free(b);
    harness_note(0, a);
    harness_note(1, b);
    overrun(a, saved, sizeof saved);
    free(a);
    (void)guard;
}

/* Overrun of a into b's header; then realloc(b). */
static void do_overrun_realloc(void *arg)
{
    (void)arg;
    char *a, *b;
    unsigned char saved[32];
    adjacent_pair(BIG, &a, &b);
    if (!a)
        _exit(3);
    harness_note(0, a);
    harness_note(1, b);
    overrun(a, saved, sizeof saved);
    b = realloc(b, 3 * BIG);
}

/* ---- death tests ----------------------------------------------------- */

static void expect_death(void (*fn)(void *), void *arg, const char *words, int lo_slot,
                         int hi_slot, uintptr_t hi_slack)
{
    struct harness_child c;
    harness_run_child(fn, arg, &c);
    uintptr_t lo = c.noted[lo_slot], hi = c.noted[hi_slot] + hi_slack;
    CHECKF(lo != 0, "the child did not get to the fault (status %#x): %s", c.status, c.err);
    EXPECT_ABORT(&c, words, lo, hi);
    printf("    stderr: %s", c.err[0] ? c.err : "(empty)\n");
}

TEST(die_double_free)
{
    expect_death(do_double_free, NULL, DOUBLE_FREE_WORDS, 0, 0, 0);
}

TEST(die_double_free_after_merge)
{
    MEMSHIM_ONLY();
    expect_death(do_double_free_after_merge, NULL, STALE_WORDS, 0, 0, 0);
}

TEST(die_interior_free)
{
    expect_death(do_interior_free, (void *)(uintptr_t)16, BAD_PTR_WORDS, 0, 0, 0);
}

TEST(die_interior_free_misaligned)
{
    MEMSHIM_ONLY();
    expect_death(do_interior_free, (void *)(uintptr_t)1, BAD_PTR_WORDS, 0, 0, 0);
    expect_death(do_interior_free, (void *)(uintptr_t)8, BAD_PTR_WORDS, 0, 0, 0);
    expect_death(do_interior_free, (void *)(uintptr_t)128, BAD_PTR_WORDS, 0, 0, 0);
}

TEST(die_stack_pointer_free)
{
    expect_death(do_stack_free, NULL, BAD_PTR_WORDS, 0, 0, 0);
}

TEST(die_static_pointer_free)
{
    MEMSHIM_ONLY();
    expect_death(do_static_free, NULL, BAD_PTR_WORDS, 0, 0, 0);
}

TEST(die_foreign_page_free)
{
    MEMSHIM_ONLY();
    expect_death(do_foreign_page_free, NULL, BAD_PTR_WORDS, 0, 0, 0);
}

TEST(die_realloc_of_freed)
{
    MEMSHIM_ONLY();
    expect_death(do_realloc_freed, NULL, STALE_WORDS, 0, 0, 0);
}

TEST(die_realloc_of_interior)
{
    expect_death(do_realloc_interior, NULL, BAD_PTR_WORDS, 0, 0, 0);
}

TEST(die_overrun_then_free_victim)
{
    MEMSHIM_ONLY();
    expect_death(do_overrun_free_victim, NULL, CORRUPT_WORDS, 0, 1, 64);
}

TEST(die_overrun_then_free_neighbour)
{
    MEMSHIM_ONLY();
    expect_death(do_overrun_free_neighbour, NULL, CORRUPT_WORDS, 0, 1, 64);
}

TEST(die_overrun_of_free_block_then_merge)
{
    MEMSHIM_ONLY();
    expect_death(do_overrun_free_block, NULL, CORRUPT_WORDS, 0, 1, 64);
}

TEST(die_overrun_then_realloc)
{
    MEMSHIM_ONLY();
    expect_death(do_overrun_realloc, NULL, CORRUPT_WORDS, 0, 1, 64);
}

/* ---- a panic handler that returns ------------------------------------ */

static struct {
    char msg[512];
    size_t len;
    int calls;
    bool len_matches, could_allocate;
} seen;

static void record(const char *msg, size_t len, void *ctx)
{
    seen.calls++;
    seen.len_matches = strlen(msg) == len;
    snprintf(seen.msg, sizeof seen.msg, "%s", msg);
    seen.len = len;
    /* The handler runs without memshim's lock: it may allocate. */
    void *p = malloc(32);
    seen.could_allocate = p != NULL;
    free(p);
    *(int *)ctx += 1;
}

static int handler_ctx;

static void reset_seen(void)
{
    memset(&seen, 0, sizeof seen);
}

#define EXPECT_REPORTED(words, lo, hi)                                          \
    do {                                                                      \
        CHECKF(seen.calls == 1, "handler called %d times", seen.calls);       \
        CHECK(seen.len_matches);                                              \
        CHECK(seen.could_allocate);                                           \
        CHECKF(harness_names_any(seen.msg, words), "message names none of '%s': %s", words, \
               seen.msg);                                                     \
        CHECKF(harness_names_address(seen.msg, (lo), (hi)),                   \
               "message names no address in [%#lx, %#lx]: %s", (unsigned long)(lo), \
               (unsigned long)(hi), seen.msg);                                \
    } while (0)

/* After a reported fault: nothing was freed, and the heap is consistent. */
#define EXPECT_HEAP_UNCHANGED(before)                                         \
    do {                                                                      \
        struct memshim_stats after_ = stats_now();                            \
        CHECK(after_.live_allocations == (before).live_allocations);          \
        /* the handler itself mallocs and frees one block per call */      \
        CHECK(after_.total_frees == (before).total_frees + (uint64_t)seen.calls); \
        CHECKF(memshim_check() == 0, "memshim_check() = %zu", memshim_check()); \
    } while (0)

TEST(handler_returns_after_double_free)
{
    MEMSHIM_ONLY();
    memshim_set_panic_handler(record, &handler_ctx);
    char *p = malloc(100), *guard = malloc(100);
    free(p);
    struct memshim_stats before = stats_now();
    reset_seen();
    free(p);
    EXPECT_REPORTED(DOUBLE_FREE_WORDS, (uintptr_t)p, (uintptr_t)p);
    CHECK(handler_ctx == 1);
    EXPECT_HEAP_UNCHANGED(before);
    printf("    message: %s\n", seen.msg);
    free(guard);
    CHECK(memshim_check() == 0);
}

TEST(handler_returns_after_invalid_frees)
{
    MEMSHIM_ONLY();
    memshim_set_panic_handler(record, &handler_ctx);
    char *p = malloc(256);
    _Alignas(16) char local[64];
    char *targets[] = {p + 16, p + 1, local + 16, static_buf + 32};
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        struct memshim_stats before = stats_now();
        reset_seen();
        free(targets[i]);
        EXPECT_REPORTED(BAD_PTR_WORDS, (uintptr_t)targets[i], (uintptr_t)targets[i]);
        EXPECT_HEAP_UNCHANGED(before);
    }
    CHECK(malloc_usable_size(p) >= 256); /* p itself is still live */
    free(p);
    CHECK(memshim_check() == 0);
}

TEST(handler_returns_after_bad_realloc)
{
    MEMSHIM_ONLY();
    memshim_set_panic_handler(record, &handler_ctx);
    char *p = malloc(100), *guard = malloc(100);
    free(p);
    struct memshim_stats before = stats_now();
    reset_seen();
    errno = 0;
    CHECK(realloc(p, 500) == NULL);
    CHECK(errno == EINVAL);
    EXPECT_REPORTED(STALE_WORDS, (uintptr_t)p, (uintptr_t)p);
    EXPECT_HEAP_UNCHANGED(before);
    /* Far into a fresh block: no stale header from an earlier split there. */
    char *q = malloc(8000);
    REQUIRE(q != NULL);
    memset(q, 0, 8000);
    reset_seen();
    errno = 0;
    CHECK(realloc(q + 4096, 500) == NULL);
    CHECK(errno == EINVAL);
    EXPECT_REPORTED(BAD_PTR_WORDS, (uintptr_t)(q + 4096), (uintptr_t)(q + 4096));
    free(q);
    free(guard);
    CHECK(memshim_check() == 0);
}

TEST(handler_returns_after_overrun)
{
    MEMSHIM_ONLY();
    memshim_set_panic_handler(record, &handler_ctx);
    char *a, *b;
    unsigned char saved[32];
    adjacent_pair(BIG, &a, &b);
    REQUIRE(a != NULL);
    fill_pattern(b, BIG, 2);
    char *a_end = a + malloc_usable_size(a); /* a's own size is unreadable once b's header is gone */
    overrun(a, saved, sizeof saved);
    CHECKF(memshim_check() > 0, "memshim_check() missed an overwritten header");
    struct memshim_stats before = stats_now();
    reset_seen();
    free(b);
    EXPECT_REPORTED(CORRUPT_WORDS, (uintptr_t)a, (uintptr_t)b + 64);
    printf("    message: %s\n", seen.msg);
    /* Repair the header: the heap was not modified, so all is well again. */
    memcpy(a_end, saved, sizeof saved);
    CHECK(memshim_check() == 0);
    struct memshim_stats after = stats_now();
    CHECK(after.live_allocations == before.live_allocations);
    free(b);
    free(a);
    CHECK(memshim_check() == 0);
    /* NULL restores the default handler (abort). */
    memshim_set_panic_handler(NULL, NULL);
    struct harness_child c;
    harness_run_child(do_double_free, NULL, &c);
    EXPECT_ABORT(&c, DOUBLE_FREE_WORDS, c.noted[0], c.noted[0]);
}

/* An overrun of a small block (slab object) reaches only its neighbour's
 * bytes, never memshim's metadata: the heap stays whole and every later
 * call works. (It is the program's own data that is damaged.) */
TEST(small_overrun_leaves_heap_intact)
{
    MEMSHIM_ONLY();
    char *blocks[64];
    for (int i = 0; i < 64; i++) {
        blocks[i] = malloc(100);
        REQUIRE(blocks[i] != NULL);
    }
    for (int i = 0; i < 64; i += 2)
        memset(blocks[i], 0x41, malloc_usable_size(blocks[i]) + 32);
    CHECK(memshim_check() == 0);
    for (int i = 0; i < 64; i++)
        free(blocks[i]);
    CHECK(memshim_check() == 0);
    char *p = malloc(100);
    CHECK(p != NULL);
    free(p);
}
