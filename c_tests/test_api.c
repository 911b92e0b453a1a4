/* memshim's own functions: stats, check, dump, strerror, add_region, page
 * hooks, lock hooks, panic handler plumbing, and newlib's _r entry points. */
#include "harness.h"

#include <pthread.h>

#pragma GCC diagnostic ignored "-Walloc-size-larger-than="

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

static bool inside(const void *p, const void *base, size_t len)
{
    return (const char *)p >= (const char *)base && (const char *)p < (const char *)base + len;
}

/* ---- stats / check / dump / strerror -------------------------------- */

TEST(stats_follow_malloc_and_free)
{
    MEMSHIM_ONLY();
    struct memshim_stats a = stats_now();
    CHECK(a.heap_spans >= 1);
    CHECK(a.heap_bytes_in_use + a.heap_bytes_free <= a.heap_bytes_mapped);
    CHECK(a.heap_peak_bytes_in_use >= a.heap_bytes_in_use);
    CHECK(a.frames_total == 0 && a.frames_free == 0); /* no frame manager on the host */

    void *p = malloc(1000);
    REQUIRE(p != NULL);
    struct memshim_stats b = stats_now();
    CHECK(b.live_allocations == a.live_allocations + 1);
    CHECK(b.total_allocations == a.total_allocations + 1);
    CHECK(b.total_frees == a.total_frees);
    CHECK(b.heap_bytes_in_use >= a.heap_bytes_in_use + 1000);
    CHECK(b.heap_peak_bytes_in_use >= b.heap_bytes_in_use);
    CHECK(b.heap_bytes_in_use + b.heap_bytes_free <= b.heap_bytes_mapped);

    void *q = calloc(10, 10);
    void *r = aligned_alloc(256, 300);
    REQUIRE(q && r);
    struct memshim_stats c = stats_now();
    CHECK(c.live_allocations == a.live_allocations + 3);
    CHECK(c.total_allocations == a.total_allocations + 3);

    free(p);
    free(q);
    free(r);
    struct memshim_stats d = stats_now();
    CHECK(d.live_allocations == a.live_allocations);
    CHECK(d.total_frees == a.total_frees + 3);
    CHECK(d.heap_bytes_in_use == a.heap_bytes_in_use);
    CHECK(d.heap_peak_bytes_in_use >= c.heap_bytes_in_use);
    memshim_get_stats(NULL); /* ignored */
}

TEST(stats_realloc_moves_count)
{
    MEMSHIM_ONLY();
    void *p = malloc(100);
    REQUIRE(p != NULL);
    void *blocker = malloc(100); /* keeps p from growing in place */
    struct memshim_stats a = stats_now();
    void *q = realloc(p, 64 * KiB);
    REQUIRE(q != NULL);
    struct memshim_stats b = stats_now();
    CHECK(b.live_allocations == a.live_allocations);
    if (q != p)
        CHECK(b.total_allocations == a.total_allocations + 1 && b.total_frees == a.total_frees + 1);
    free(q);
    free(blocker);
}

TEST(big_spans_go_back_to_the_system)
{
    MEMSHIM_ONLY();
    struct memshim_stats a = stats_now();
    void *p = malloc(16 * MiB);
    REQUIRE(p != NULL);
    memset(p, 1, 16 * MiB);
    struct memshim_stats b = stats_now();
    CHECK(b.heap_bytes_mapped >= a.heap_bytes_mapped + 16 * MiB);
    CHECK(b.heap_spans > a.heap_spans);
    free(p);
    struct memshim_stats c = stats_now();
    CHECKF(c.heap_bytes_mapped < b.heap_bytes_mapped - 8 * MiB,
           "a wholly free 16 MiB span was kept: mapped %llu -> %llu",
           (unsigned long long)b.heap_bytes_mapped, (unsigned long long)c.heap_bytes_mapped);
    CHECK(c.heap_spans == a.heap_spans);
    CHECK(memshim_check() == 0);
}

TEST(check_is_zero_after_workloads)
{
    MEMSHIM_ONLY();
    CHECK(memshim_check() == 0);
    void *p[1000];
    for (int i = 0; i < 1000; i++) {
        p[i] = malloc((size_t)(i * 37 % 5000));
        REQUIRE(p[i] != NULL);
    }
    CHECK(memshim_check() == 0);
    for (int i = 0; i < 1000; i += 2)
        free(p[i]);
    CHECK(memshim_check() == 0);
    for (int i = 1; i < 1000; i += 2)
        free(p[i]);
    CHECK(memshim_check() == 0);
}

struct text {
    char buf[1 << 16];
    size_t len;
    int calls;
    bool allocated;
};

static void collect(void *ctx, const char *text, size_t len)
{
    struct text *t = ctx;
    t->calls++;
    /* The lock is released before write is called, so this may allocate. */
    void *p = malloc(64);
    t->allocated = p != NULL;
    free(p);
    size_t take = len < sizeof t->buf - 1 - t->len ? len : sizeof t->buf - 1 - t->len;
    memcpy(t->buf + t->len, text, take);
    t->len += take;
    t->buf[t->len] = 0;
}

TEST(dump_writes_text)
{
    MEMSHIM_ONLY();
    static struct text t;
    void *p = malloc(12345);
    memshim_dump(collect, &t);
    CHECK(t.calls >= 1);
    CHECKF(t.len >= 40, "dump wrote %zu bytes", t.len);
    CHECK(t.allocated);
    size_t unprintable = 0;
    for (size_t i = 0; i < t.len; i++)
        unprintable += !isprint((unsigned char)t.buf[i]) && !isspace((unsigned char)t.buf[i]);
    CHECKF(unprintable == 0, "dump text has %zu unprintable bytes", unprintable);
    CHECK(strpbrk(t.buf, "0123456789") != NULL);
    memshim_dump(NULL, NULL); /* ignored */
    free(p);
    printf("    dump (%zu bytes), first line: %.*s\n", t.len, (int)strcspn(t.buf, "\n"), t.buf);
}

TEST(strerror_names_every_code)
{
    MEMSHIM_ONLY();
    const int codes[] = {MEMSHIM_OK, MEMSHIM_EINVAL, MEMSHIM_ENOMEM, MEMSHIM_EOVERLAP,
                         MEMSHIM_ETOOSMALL, MEMSHIM_EMAGIC, MEMSHIM_EBOOTINFO, MEMSHIM_ENOMMAP,
                         MEMSHIM_EALREADY, MEMSHIM_ERANGE, MEMSHIM_ENOTINIT,
                         MEMSHIM_EREENTERED};
    enum { N = sizeof codes / sizeof codes[0] };
    const char *unknown = memshim_strerror(-9999);
    REQUIRE(unknown != NULL);
    CHECK(memshim_strerror(12345) != NULL);
    CHECK(memshim_strerror(-12) != NULL);
    for (int i = 0; i < N; i++) {
        const char *s = memshim_strerror(codes[i]);
        REQUIRE(s != NULL);
        CHECKF(strlen(s) > 3, "code %d: '%s'", codes[i], s);
        CHECKF(strcmp(s, unknown) != 0, "code %d is unnamed: '%s'", codes[i], s);
        for (int j = 0; j < i; j++)
            CHECKF(strcmp(s, memshim_strerror(codes[j])) != 0, "codes %d and %d share '%s'",
                   codes[i], codes[j], s);
    }
    CHECK(codes[0] == 0);
    for (int i = 1; i < N; i++)
        CHECK(codes[i] < 0);
}

/* ---- add_region ------------------------------------------------------ */

static _Alignas(4096) char region_buf[4 * MiB];

TEST(add_region_refuses_bad_input)
{
    MEMSHIM_ONLY();
    CHECK(memshim_add_region(NULL, 4096) == MEMSHIM_EINVAL);
    CHECK(memshim_add_region(NULL, 0) == MEMSHIM_EINVAL);
    CHECK(memshim_add_region(region_buf, 8) == MEMSHIM_ETOOSMALL);
    CHECK(memshim_add_region(region_buf, 0) == MEMSHIM_ETOOSMALL);
    CHECK(memshim_add_region((void *)(UINTPTR_MAX - 4095), 8192) == MEMSHIM_EINVAL); /* wraps */
    /* Memory the heap already holds. */
    void *p = malloc(64);
    REQUIRE(p != NULL);
    CHECK(memshim_add_region((char *)p - 16, 4096) == MEMSHIM_EOVERLAP);
    free(p);
    CHECK(memshim_check() == 0);
}

TEST(add_region_then_allocations_use_it)
{
    MEMSHIM_ONLY();
    CHECK(memshim_add_region(region_buf, sizeof region_buf) == 0);
    CHECK(memshim_add_region(region_buf, sizeof region_buf) == MEMSHIM_EOVERLAP);
    CHECK(memshim_add_region(region_buf + MiB, 64 * KiB) == MEMSHIM_EOVERLAP);
    CHECK(memshim_add_region(region_buf + sizeof region_buf - 4096, 2 * 4096) == MEMSHIM_EOVERLAP);
    struct memshim_stats s = stats_now();
    CHECK(s.heap_bytes_mapped >= sizeof region_buf);
    /* Too big for the arena, fits the region: the heap uses memory it has
     * before asking the system for more. */
    char *p = malloc(3 * MiB);
    REQUIRE(p != NULL);
    CHECKF(inside(p, region_buf, sizeof region_buf), "3 MiB block %p not in the region %p",
           (void *)p, (void *)region_buf);
    memset(p, 0x77, 3 * MiB);
    void *small[100];
    for (int i = 0; i < 100; i++) {
        small[i] = malloc(1000);
        REQUIRE(small[i] != NULL);
        CHECK(aligned_to(small[i], 16));
    }
    CHECK(memshim_check() == 0);
    free(p);
    for (int i = 0; i < 100; i++)
        free(small[i]);
    CHECK(memshim_check() == 0);
    struct memshim_stats e = stats_now();
    CHECK(e.heap_bytes_mapped >= sizeof region_buf); /* regions are never given back */
}

static char odd_region[MiB + 64];

TEST(add_region_unaligned_start)
{
    MEMSHIM_ONLY();
    char *start = odd_region + 3;
    int rc = memshim_add_region(start, MiB);
    CHECKF(rc == 0 || rc == MEMSHIM_EINVAL, "rc %d", rc);
    if (rc != 0)
        return;
    char *p = malloc(MiB - 4096);
    REQUIRE(p != NULL);
    CHECK(aligned_to(p, 16));
    if (inside(p, start, MiB))
        CHECK(p + MiB - 4096 <= start + MiB);
    memset(p, 1, MiB - 4096);
    free(p);
    CHECK(memshim_check() == 0);
}

/* ---- page hooks ------------------------------------------------------ */

#define POOL (64 * MiB)
#define PAGE 4096
struct pages {
    char *base;
    size_t used; /* bump pointer, in pages */
    int allocs, frees;
    size_t pages_out, pages_back;
    struct { char *p; size_t n; bool live; } runs[256];
    int nruns;
    bool bad_free;
    void *seen_ctx;
};

static void *alloc_pages(size_t n, void *ctx)
{
    struct pages *pg = ctx;
    pg->seen_ctx = ctx;
    pg->allocs++;
    if (n == 0 || n > POOL / PAGE - pg->used || pg->nruns == 256)
        return NULL;
    char *p = pg->base + pg->used * PAGE;
    pg->used += n;
    pg->pages_out += n;
    pg->runs[pg->nruns].p = p;
    pg->runs[pg->nruns].n = n;
    pg->runs[pg->nruns].live = true;
    pg->nruns++;
    return p;
}

static void free_pages(void *p, size_t n, void *ctx)
{
    struct pages *pg = ctx;
    pg->frees++;
    pg->pages_back += n;
    for (int i = 0; i < pg->nruns; i++) {
        if (pg->runs[i].p == p && pg->runs[i].n == n && pg->runs[i].live) {
            pg->runs[i].live = false;
            return;
        }
    }
    pg->bad_free = true; /* not exactly a run we handed out */
}

static struct pages *new_pool(void)
{
    static struct pages pg;
    memset(&pg, 0, sizeof pg);
    pg.base = mmap(NULL, POOL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return pg.base == MAP_FAILED ? NULL : &pg;
}

TEST(page_hooks_feed_the_heap_and_get_pages_back)
{
    MEMSHIM_ONLY();
    struct pages *pg = new_pool();
    REQUIRE(pg != NULL);
    memshim_set_page_hooks(alloc_pages, free_pages, pg);
    /* Exhaust the arena: 64 KiB blocks until one comes from the hooks. */
    enum { N = 200 };
    static char *b[N];
    int n = 0, first_hooked = -1;
    while (n < N && (first_hooked < 0 || n <= first_hooked + 40)) {
        b[n] = malloc(64 * KiB);
        REQUIRE(b[n] != NULL);
        fill_pattern(b[n], 64 * KiB, (unsigned)n);
        if (first_hooked < 0 && inside(b[n], pg->base, POOL))
            first_hooked = n;
        n++;
    }
    REQUIRE(first_hooked >= 0);
    CHECK(pg->allocs >= 1);
    CHECK(pg->seen_ctx == pg);
    for (int i = 0; i < n; i++)
        CHECKF(has_pattern(b[i], 64 * KiB, (unsigned)i), "block %d corrupted", i);
    /* Once arena memory ran out, every block came from the hooks (not mmap). */
    for (int i = first_hooked; i < n; i++)
        CHECKF(inside(b[i], pg->base, POOL), "block %d at %p not from the hooks", i, (void *)b[i]);
    /* A large block also comes from the hooks. */
    char *big = malloc(3 * MiB);
    REQUIRE(big != NULL);
    CHECK(inside(big, pg->base, POOL));
    memset(big, 9, 3 * MiB);
    CHECK(memshim_check() == 0);
    free(big);
    for (int i = 0; i < n; i++)
        free(b[i]);
    CHECK(memshim_check() == 0);
    CHECK(!pg->bad_free);
    /* Everything goes back but metadata (kept for good) once the span kept
       for reuse is trimmed. */
    memshim_trim();
    size_t meta_pages = stats_now().heap_bytes_metadata / 4096, live_runs = 0, live_pages = 0;
    for (int i = 0; i < pg->nruns; i++)
        if (pg->runs[i].live) {
            live_runs++;
            live_pages += pg->runs[i].n;
        }
    CHECKF(pg->pages_out - pg->pages_back == live_pages && live_pages <= meta_pages,
           "%zu pages out, %zu back, %zu pages in %zu runs never given back (metadata: %zu pages)",
           pg->pages_out, pg->pages_back, live_pages, live_runs, meta_pages);
    /* Removing the hooks: the heap falls back to the system. */
    memshim_set_page_hooks(NULL, NULL, NULL);
    int allocs = pg->allocs;
    void *after = malloc(8 * MiB);
    CHECK(after != NULL);
    CHECK(pg->allocs == allocs);
    free(after);
}

static void *no_pages(size_t n, void *ctx)
{
    (void)n;
    ++*(int *)ctx;
    return NULL;
}

TEST(page_hook_refusal_is_not_fatal)
{
    MEMSHIM_ONLY();
    static int asked;
    memshim_set_page_hooks(no_pages, NULL, &asked);
    void *p = malloc(8 * MiB); /* the host still has mmap */
    CHECK(p != NULL);
    CHECK(asked >= 1);
    free(p);
    CHECK(memshim_check() == 0);
    memshim_set_page_hooks(NULL, NULL, NULL);
}

TEST(page_hooks_without_free_keep_spans)
{
    MEMSHIM_ONLY();
    struct pages *pg = new_pool();
    REQUIRE(pg != NULL);
    memshim_set_page_hooks(alloc_pages, NULL, pg);
    void *p = malloc(4 * MiB);
    REQUIRE(p != NULL);
    CHECK(inside(p, pg->base, POOL));
    free(p);
    CHECK(pg->frees == 0);
    void *q = malloc(4 * MiB); /* reuses the kept span */
    CHECK(inside(q, pg->base, POOL));
    free(q);
    CHECK(memshim_check() == 0);
    memshim_set_page_hooks(NULL, NULL, NULL);
}

/* ---- lock hooks ------------------------------------------------------ */

struct lockctx {
    pthread_mutex_t m;
    long locks, unlocks;
    int depth, max_depth;
};

static void hook_lock(void *ctx)
{
    struct lockctx *l = ctx;
    pthread_mutex_lock(&l->m);
    l->locks++;
    if (++l->depth > l->max_depth)
        l->max_depth = l->depth;
}

static void hook_unlock(void *ctx)
{
    struct lockctx *l = ctx;
    l->unlocks++;
    l->depth--;
    pthread_mutex_unlock(&l->m);
}

static struct lockctx lk = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};

static void *lock_worker(void *arg)
{
    uint64_t seed = (uintptr_t)arg;
    void *p[64] = {0};
    for (int i = 0; i < 20000; i++) {
        int k = (int)(harness_rand(&seed) % 64);
        free(p[k]);
        p[k] = malloc((size_t)(harness_rand(&seed) % 2000));
    }
    for (int k = 0; k < 64; k++)
        free(p[k]);
    return NULL;
}

TEST(lock_hooks_are_called_balanced)
{
    MEMSHIM_ONLY();
    memshim_set_lock_hooks(hook_lock, hook_unlock, &lk);
    long l0 = lk.locks;
    /* Blocks above the small-object classes are the heap's, under its lock
       (small ones come from the thread's cache, which needs no lock). */
    void *p = malloc(10000);
    CHECK(lk.locks > l0);
    CHECK(lk.locks == lk.unlocks);
    p = realloc(p, 20000);
    void *q = calloc(3, 4000);
    free(p);
    free(q);
    free(malloc(10));
    (void)memshim_check();
    struct memshim_stats s;
    memshim_get_stats(&s);
    CHECKF(lk.locks >= l0 + 7, "%ld lock calls for 7 locked operations", lk.locks - l0);
    CHECK(lk.locks == lk.unlocks);
    CHECK(lk.depth == 0);
    /* Threads serialised by the hook lock alone. */
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&t[i], NULL, lock_worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK(lk.locks == lk.unlocks);
    CHECK(lk.max_depth == 1);
    CHECK(memshim_check() == 0);
    /* fork holds the hook lock across the fork; the child can allocate. */
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        void *c = malloc(1000);
        free(c);
        _exit(c != NULL && lk.locks == lk.unlocks ? 0 : 1);
    }
    int st;
    REQUIRE(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
    CHECK(lk.locks == lk.unlocks);
    /* NULL restores the built-in lock: the hooks are no longer called. */
    memshim_set_lock_hooks(NULL, NULL, NULL);
    long l1 = lk.locks;
    free(malloc(10));
    CHECK(lk.locks == l1);
}

/* ---- newlib's reentrant entry points --------------------------------- */

struct fake_reent {
    int _errno; /* newlib's struct _reent starts with int _errno */
    char rest[1024];
};

TEST(newlib_r_entry_points_set_reent_errno)
{
    MEMSHIM_ONLY();
    struct fake_reent r;
    memset(&r, 0, sizeof r);
    void *p = _malloc_r(&r, 100);
    REQUIRE(p != NULL);
    CHECK(aligned_to(p, 16));
    CHECK(_malloc_usable_size_r(&r, p) >= 100);
    CHECK(r._errno == 0);

    r._errno = 0;
    CHECK(_malloc_r(&r, SIZE_MAX - 8) == NULL);
    CHECK(r._errno == ENOMEM);

    r._errno = 0;
    CHECK(_calloc_r(&r, SIZE_MAX / 2, 4) == NULL);
    CHECK(r._errno == ENOMEM);
    unsigned char *z = _calloc_r(&r, 50, 2);
    REQUIRE(z != NULL);
    for (int i = 0; i < 100; i++)
        CHECK(z[i] == 0);
    _free_r(&r, z);

    fill_pattern(p, 100, 1);
    r._errno = 0;
    CHECK(_realloc_r(&r, p, SIZE_MAX - 8) == NULL);
    CHECK(r._errno == ENOMEM);
    CHECK(has_pattern(p, 100, 1));
    void *q = _realloc_r(&r, p, 5000);
    REQUIRE(q != NULL);
    CHECK(has_pattern(q, 100, 1));

    void *a = _memalign_r(&r, 4096, 100);
    REQUIRE(a != NULL);
    CHECK(aligned_to(a, 4096));
    r._errno = 0;
    CHECK(_memalign_r(&r, 64, SIZE_MAX - 100) == NULL);
    CHECK(r._errno == ENOMEM);
    r._errno = 0;
    CHECK(_memalign_r(&r, SIZE_MAX / 2 + 2, 16) == NULL);
    CHECKF(r._errno == EINVAL, "_memalign_r(bad alignment): reent errno %d, want EINVAL",
           r._errno);

    r._errno = 1234;
    _free_r(&r, a);
    _free_r(&r, NULL);
    CHECK(r._errno == 1234);
    CHECK(_realloc_r(&r, q, 0) == NULL); /* frees, not an error */
    CHECK(r._errno == 1234);
    CHECK(_malloc_usable_size_r(&r, NULL) == 0);
    CHECK(memshim_check() == 0);
}
