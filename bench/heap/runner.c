/* heap-runner: runs one heap workload against one allocator, in its own
 * process, and prints one line of results. bench-heap (bench/src/bin/heap.rs)
 * starts it once per measurement; see docs/benchmarks.md, "Heap".
 *
 *   heap-runner ALLOCATOR MODE WORKLOAD SCALE
 *
 * ALLOCATOR  "glibc" (the process's own malloc) or the path of a shared
 *            object exporting malloc, free, calloc, realloc, aligned_alloc
 *            and posix_memalign. It is loaded RTLD_LOCAL, so it replaces
 *            nothing: only this program's workloads call it. "null" (for
 *            the pairs workloads) calls no allocator: what the harness costs.
 * MODE       time  ns per operation (CPU time single-threaded, wall time
 *                  with threads), then peak RSS (VmHWM)
 *            lat   every malloc/free timed alone: p99, p99.99, max
 *            eff   the random mix under an address-space limit until the
 *                  first refusal: live bytes and the space the limit allowed
 *                  (256 MiB times SCALE; give WORKLOAD as "random")
 * WORKLOAD   see the table `workloads` below
 * SCALE      operations are the workload's default times SCALE (0.1 = quick)
 * SECONDS    (optional, single-threaded workloads) stop after this long and
 *            report what was done ("partial=1"; ops=0 if the clock never
 *            started): linked_list_allocator's linear searches would
 *            otherwise take minutes
 *
 * The program's own bookkeeping (pointer arrays, latency records) comes
 * from mmap, never from the allocator under test, and glibc's malloc is
 * called by nothing but the workloads (stdout has a static buffer). */

#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <x86intrin.h>

/* ---- the allocator under test ------------------------------------------- */

static struct {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    int (*posix_memalign)(void **, size_t, size_t);
} api;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "heap-runner: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(2);
}

static void *sym(void *handle, const char *name)
{
    void *p = dlsym(handle, name);
    if (!p)
        die("missing symbol", name);
    return p;
}

/* "null": no allocator at all, to count what the harness itself executes
 * (pairs workloads only: every call returns the same block). */
static _Alignas(4096) char null_block[1 << 16];
static void *null_malloc(size_t n) { return n <= sizeof null_block ? null_block : NULL; }
static void null_free(void *p) { (void)p; }

static void load(const char *spec)
{
    if (strcmp(spec, "null") == 0) {
        api.malloc = null_malloc;
        api.free = null_free;
        return;
    }
    void *h = strcmp(spec, "glibc") == 0 ? dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD)
                                         : dlopen(spec, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        die("cannot load", dlerror());
    *(void **)&api.malloc = sym(h, "malloc");
    *(void **)&api.free = sym(h, "free");
    *(void **)&api.calloc = sym(h, "calloc");
    *(void **)&api.realloc = sym(h, "realloc");
    *(void **)&api.aligned_alloc = sym(h, "aligned_alloc");
    *(void **)&api.posix_memalign = sym(h, "posix_memalign");
}

/* ---- timing, counting, recording ---------------------------------------- */

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static inline uint64_t tsc_start(void)
{
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

static inline uint64_t tsc_end(void)
{
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}

/* Operations done by this thread (one call = one operation). */
static __thread uint64_t ops;

/* lat mode: every call's TSC ticks, in order. */
static uint32_t *lat;
static size_t lat_n, lat_cap;

static void *xmap(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        die("mmap failed for the benchmark's own arrays", NULL);
    return p;
}

static inline void record(uint64_t t0)
{
    uint64_t d = tsc_end() - t0;
    if (lat_n < lat_cap)
        lat[lat_n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* The optional time limit, checked every 1024 operations (or set-up steps):
 * past it, the run ends where it is and reports what it did. */
static double deadline;
static jmp_buf stop_jmp;
static int clock_running;
static void clock_off(void);
static inline void check_deadline(uint64_t step)
{
    if (deadline > 0 && (step & 1023) == 0 && now_ns() > deadline) {
        if (clock_running)
            clock_off();
        longjmp(stop_jmp, 1);
    }
}

static void fail_null(const char *call, size_t n)
{
    char msg[64];
    snprintf(msg, sizeof msg, "%s(%zu) returned NULL", call, n);
    die(msg, NULL);
}

/* Every block is written at both ends, as a program would use it. */
static inline void touch(void *p, size_t n)
{
    ((volatile char *)p)[0] = 1;
    ((volatile char *)p)[n - 1] = 2;
}

static inline void *xmalloc(size_t n)
{
    check_deadline(ops);
    ops++;
    void *p;
    if (lat) {
        uint64_t t = tsc_start();
        p = api.malloc(n);
        record(t);
    } else {
        p = api.malloc(n);
    }
    if (!p)
        fail_null("malloc", n);
    touch(p, n);
    return p;
}

static inline void *xcalloc(size_t n)
{
    check_deadline(ops);
    ops++;
    void *p;
    if (lat) {
        uint64_t t = tsc_start();
        p = api.calloc(1, n);
        record(t);
    } else {
        p = api.calloc(1, n);
    }
    if (!p)
        fail_null("calloc", n);
    if (((volatile char *)p)[n - 1] != 0)
        die("calloc returned memory that is not zero", NULL);
    touch(p, n);
    return p;
}

static inline void *xrealloc(void *old, size_t n)
{
    check_deadline(ops);
    ops++;
    void *p;
    if (lat) {
        uint64_t t = tsc_start();
        p = api.realloc(old, n);
        record(t);
    } else {
        p = api.realloc(old, n);
    }
    if (!p)
        fail_null("realloc", n);
    touch(p, n);
    return p;
}

static inline void *xaligned(size_t align, size_t n, int posix)
{
    check_deadline(ops);
    ops++;
    void *p = NULL;
    uint64_t t = lat ? tsc_start() : 0;
    if (posix) {
        if (api.posix_memalign(&p, align, n) != 0)
            p = NULL;
    } else {
        p = api.aligned_alloc(align, n);
    }
    if (lat)
        record(t);
    if (!p)
        fail_null(posix ? "posix_memalign" : "aligned_alloc", n);
    if ((uintptr_t)p & (align - 1)) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s(%zu, %zu) returned %p, not aligned", posix ? "posix_memalign" : "aligned_alloc",
                 align, n, p);
        die(msg, NULL);
    }
    touch(p, n);
    return p;
}

static inline void xfree(void *p)
{
    check_deadline(ops);
    ops++;
    if (lat) {
        uint64_t t = tsc_start();
        api.free(p);
        record(t);
    } else {
        api.free(p);
    }
}

/* ---- sizes -------------------------------------------------------------- */

/* xorshift64*, the same generator as bench/src/lib.rs. */
static inline uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static inline size_t between(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(rnd(s) % (hi - lo + 1));
}

/* The small-heavy mix: 80 % 16-128 B, 15 % to 1 KiB, 4 % to 8 KiB, 1 % to 64 KiB. */
static inline size_t mix_size(uint64_t *s)
{
    unsigned p = (unsigned)(rnd(s) % 100);
    if (p < 80)
        return between(s, 16, 128);
    if (p < 95)
        return between(s, 129, 1024);
    if (p < 99)
        return between(s, 1025, 8192);
    return between(s, 8193, 65536);
}

/* ---- single-threaded workloads ------------------------------------------ */
/* Each runs about `n` operations; what it sets up before the clock starts
 * (the churn's million blocks) is outside clock_on() ... clock_off(), and
 * what is live at the end is left to the process's exit (freeing it would
 * only add noise to the instruction counts). */

/* Single-threaded workloads are timed in CPU time (user + system) of the
 * process: on a shared machine, time spent waiting for a CPU is not the
 * allocator's. Threaded ones in wall time, their throughput. */
static clockid_t timed_clock = CLOCK_MONOTONIC;
static double clock_ns(void)
{
    struct timespec t;
    clock_gettime(timed_clock, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double timed_start, timed_ns;
static uint64_t timed_ops;
static void clock_on(void)
{
    timed_ops = ops;
    timed_start = clock_ns();
    clock_running = 1;
}
static void clock_off(void)
{
    timed_ns = clock_ns() - timed_start;
    timed_ops = ops - timed_ops;
    clock_running = 0;
}

static void pairs(uint64_t n, size_t size)
{
    clock_on();
    for (uint64_t i = 0; i < n / 2; i++)
        xfree(xmalloc(size));
    clock_off();
}
static void w_pairs16(uint64_t n) { pairs(n, 16); }
static void w_pairs256(uint64_t n) { pairs(n, 256); }
static void w_pairs4k(uint64_t n) { pairs(n, 4096); }

/* Blocks of 16-256 B allocated 64 at a time and freed newest first. */
static void w_lifo(uint64_t n)
{
    enum { DEPTH = 64 };
    void *p[DEPTH];
    uint64_t s = 1;
    clock_on();
    for (uint64_t r = 0; r < n / (2 * DEPTH); r++) {
        for (int i = 0; i < DEPTH; i++)
            p[i] = xmalloc(between(&s, 16, 256));
        for (int i = DEPTH - 1; i >= 0; i--)
            xfree(p[i]);
    }
    clock_off();
}

/* 8192 slots; a step frees a random slot's block or fills it from the
 * small-heavy mix (every eighth block through calloc). About half full. */
static void w_random(uint64_t n)
{
    enum { SLOTS = 8192 };
    void **p = xmap(SLOTS * sizeof *p);
    uint64_t s = 2;
    clock_on();
    for (uint64_t i = 0; i < n; i++) {
        size_t k = (size_t)(rnd(&s) % SLOTS);
        if (p[k]) {
            xfree(p[k]);
            p[k] = NULL;
        } else {
            size_t size = mix_size(&s);
            p[k] = (i & 7) == 0 ? xcalloc(size) : xmalloc(size);
        }
    }
    clock_off();
}

/* A queue of 1024 blocks of 16-512 B: the oldest is freed for each new one. */
static void w_fifo(uint64_t n)
{
    enum { DEPTH = 1024 };
    void **p = xmap(DEPTH * sizeof *p);
    uint64_t s = 3;
    clock_on();
    for (uint64_t i = 0; i < n / 2; i++) {
        size_t k = (size_t)(i % DEPTH);
        if (p[k])
            xfree(p[k]);
        p[k] = xmalloc(between(&s, 16, 512));
    }
    clock_off();
}

/* 16 blocks, each grown by realloc by half again from 16 B to 64 KiB, then
 * freed and started again; the blocks take turns at random. */
static void w_realloc(uint64_t n)
{
    enum { BLOCKS = 16 };
    void *p[BLOCKS] = {0};
    size_t size[BLOCKS] = {0};
    uint64_t s = 4;
    clock_on();
    for (uint64_t i = 0; i < n; i++) {
        size_t k = (size_t)(rnd(&s) % BLOCKS);
        if (size[k] >= 65536) {
            xfree(p[k]);
            p[k] = NULL;
            size[k] = 0;
        } else {
            size[k] = size[k] ? size[k] + size[k] / 2 : 16;
            p[k] = xrealloc(p[k], size[k]);
        }
    }
    clock_off();
}

/* 32 live blocks of 64 KiB-1 MiB, replaced at random. */
static void w_large(uint64_t n)
{
    enum { SLOTS = 32 };
    void *p[SLOTS] = {0};
    uint64_t s = 5;
    clock_on();
    for (uint64_t i = 0; i < n / 2; i++) {
        size_t k = (size_t)(rnd(&s) % SLOTS);
        if (p[k])
            xfree(p[k]);
        p[k] = xmalloc(between(&s, 64 << 10, 1 << 20));
    }
    clock_off();
}

/* 256 live blocks of 16 B-2 KiB aligned to 64 B-4 KiB, replaced at random;
 * aligned_alloc and posix_memalign take turns. */
static void w_align(uint64_t n)
{
    enum { SLOTS = 256 };
    void *p[SLOTS] = {0};
    uint64_t s = 6;
    clock_on();
    for (uint64_t i = 0; i < n / 2; i++) {
        size_t k = (size_t)(rnd(&s) % SLOTS);
        if (p[k])
            xfree(p[k]);
        size_t align = (size_t)64 << (rnd(&s) % 7);
        size_t size = between(&s, 16, 2048);
        if (i & 1)
            p[k] = xaligned(align, size, 1);
        else /* C11: a multiple of the alignment */
            p[k] = xaligned(align, (size + align - 1) & ~(align - 1), 0);
    }
    clock_off();
}

/* Rounds of: 8 000 blocks of 16-128 B, every other one freed (holes),
 * 2 000 larger requests (256 B-2 KiB), then everything freed. */
static void w_fragment(uint64_t n)
{
    enum { SMALL = 8000, LARGE = 2000 };
    void **p = xmap((SMALL + LARGE) * sizeof *p);
    uint64_t s = 7;
    uint64_t per_round = SMALL + SMALL / 2 + LARGE + SMALL / 2 + LARGE;
    clock_on();
    for (uint64_t r = 0; r < (n + per_round - 1) / per_round; r++) {
        for (size_t i = 0; i < SMALL; i++)
            p[i] = xmalloc(between(&s, 16, 128));
        for (size_t i = 0; i < SMALL; i += 2)
            xfree(p[i]);
        for (size_t i = 0; i < LARGE; i++)
            p[SMALL + i] = xmalloc(between(&s, 256, 2048));
        for (size_t i = 1; i < SMALL; i += 2)
            xfree(p[i]);
        for (size_t i = 0; i < LARGE; i++)
            xfree(p[SMALL + i]);
    }
    clock_off();
}

/* 10^6 live blocks of 16-256 B (set up before the clock starts); a step
 * frees a random one and allocates its replacement. */
static void w_churn(uint64_t n)
{
    enum { LIVE = 1000000 };
    void **p = xmap(LIVE * sizeof *p);
    uint64_t s = 8;
    for (size_t i = 0; i < LIVE; i++) {
        check_deadline(i);
        if (!(p[i] = api.malloc(between(&s, 16, 256))))
            fail_null("malloc", 0);
    }
    clock_on();
    for (uint64_t i = 0; i < n / 2; i++) {
        size_t k = (size_t)(rnd(&s) % LIVE);
        xfree(p[k]);
        p[k] = xmalloc(between(&s, 16, 256));
    }
    clock_off();
}

/* ---- threads ------------------------------------------------------------ */

struct thread_arg {
    uint64_t n, seed, ops;
    _Atomic(void *) *ring; /* producer/consumer: the shared ring */
};

/* Each thread on its own blocks: 1024 slots of 16-512 B, replaced at random. */
static void *local_thread(void *v)
{
    struct thread_arg *a = v;
    enum { SLOTS = 1024 };
    void **p = xmap(SLOTS * sizeof *p);
    uint64_t s = a->seed;
    for (uint64_t i = 0; i < a->n / 2; i++) {
        size_t k = (size_t)(rnd(&s) % SLOTS);
        if (p[k])
            xfree(p[k]);
        p[k] = xmalloc(between(&s, 16, 512));
    }
    for (size_t k = 0; k < SLOTS; k++)
        if (p[k])
            xfree(p[k]);
    a->ops = ops;
    return NULL;
}

enum { RING = 1024 };

static void wait_a_little(unsigned *spins)
{
    if (++*spins > 64) {
        sched_yield(); /* 2 cores may run 4 threads: let the other side run */
        *spins = 0;
    } else {
        _mm_pause();
    }
}

/* Producer: allocates blocks of 16-512 B and passes them on through a
 * single-producer, single-consumer ring. */
static void *producer(void *v)
{
    struct thread_arg *a = v;
    uint64_t s = a->seed;
    unsigned spins = 0;
    for (uint64_t i = 0; i < a->n / 2; i++) {
        void *p = xmalloc(between(&s, 16, 512));
        _Atomic(void *) *slot = &a->ring[i % RING];
        while (atomic_load_explicit(slot, memory_order_acquire))
            wait_a_little(&spins);
        atomic_store_explicit(slot, p, memory_order_release);
    }
    a->ops = ops;
    return NULL;
}

/* Consumer: frees what its producer allocated. */
static void *consumer(void *v)
{
    struct thread_arg *a = v;
    unsigned spins = 0;
    for (uint64_t i = 0; i < a->n / 2; i++) {
        _Atomic(void *) *slot = &a->ring[i % RING];
        void *p;
        while (!(p = atomic_load_explicit(slot, memory_order_acquire)))
            wait_a_little(&spins);
        atomic_store_explicit(slot, NULL, memory_order_release);
        xfree(p);
    }
    a->ops = ops;
    return NULL;
}

/* `threads` threads, each doing n / threads operations; cross: pairs of
 * producer and consumer. */
static void threaded(uint64_t n, int threads, int cross)
{
    pthread_t t[8];
    struct thread_arg arg[8];
    memset(arg, 0, sizeof arg);
    clock_on();
    for (int i = 0; i < threads; i++) {
        arg[i].n = n / (uint64_t)threads;
        arg[i].seed = 100 + (uint64_t)i;
        if (cross)
            arg[i].ring = i % 2 == 0 ? xmap(RING * sizeof(void *)) : arg[i - 1].ring;
        void *(*fn)(void *) = !cross ? local_thread : i % 2 == 0 ? producer : consumer;
        if (pthread_create(&t[i], NULL, fn, &arg[i]) != 0)
            die("pthread_create failed", NULL);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        ops += arg[i].ops;
    }
    clock_off();
}
static void w_local1(uint64_t n) { threaded(n, 1, 0); }
static void w_local2(uint64_t n) { threaded(n, 2, 0); }
static void w_local4(uint64_t n) { threaded(n, 4, 0); }
static void w_cross2(uint64_t n) { threaded(n, 2, 1); }
static void w_cross4(uint64_t n) { threaded(n, 4, 1); }

/* ---- the table ---------------------------------------------------------- */

static const struct workload {
    const char *name;
    void (*run)(uint64_t n);
    uint64_t n; /* operations at scale 1 */
    int threads; /* runs in threads of its own (no time limit) */
} workloads[] = {
    {"pairs-16", w_pairs16, 4000000, 0},
    {"pairs-256", w_pairs256, 4000000, 0},
    {"pairs-4k", w_pairs4k, 2000000, 0},
    {"lifo", w_lifo, 4000000, 0},
    {"random", w_random, 2000000, 0},
    {"fifo", w_fifo, 2000000, 0},
    {"realloc", w_realloc, 1000000, 0},
    {"large", w_large, 100000, 0},
    {"align", w_align, 1000000, 0},
    {"fragment", w_fragment, 1000000, 0},
    {"churn-1m", w_churn, 1000000, 0},
    {"local-1t", w_local1, 2000000, 1},
    {"local-2t", w_local2, 2000000, 1},
    {"local-4t", w_local4, 2000000, 1},
    {"cross-2t", w_cross2, 2000000, 1},
    {"cross-4t", w_cross4, 2000000, 1},
};

/* ---- reports ------------------------------------------------------------ */

static long status_kib(const char *field)
{
    static char buf[4096];
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    char *p = strstr(buf, field);
    return p ? strtol(p + strlen(field), NULL, 10) : -1;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* TSC ticks per ns, against CLOCK_MONOTONIC over 50 ms. */
static double tsc_per_ns(void)
{
    double t0 = now_ns();
    uint64_t c0 = tsc_start();
    while (now_ns() - t0 < 50e6)
        ;
    return (double)(tsc_end() - c0) / (now_ns() - t0);
}

static void report_lat(void)
{
    double per_ns = tsc_per_ns();
    /* What the timer itself adds: the fastest of many empty measurements. */
    uint64_t floor = UINT64_MAX;
    for (int i = 0; i < 10000; i++) {
        uint64_t t = tsc_start();
        uint64_t d = tsc_end() - t;
        floor = d < floor ? d : floor;
    }
    if (lat_n == 0) { /* stopped in the set-up */
        printf("ops=0");
        return;
    }
    qsort(lat, lat_n, sizeof *lat, cmp_u32);
    double p99 = lat[(size_t)((double)lat_n * 0.99)];
    double p9999 = lat[(size_t)((double)lat_n * 0.9999)];
    double max = lat[lat_n - 1];
    printf("ops=%zu p99_ns=%.1f p9999_ns=%.1f max_ns=%.1f timer_ns=%.1f", lat_n, p99 / per_ns,
           p9999 / per_ns, max / per_ns, (double)floor / per_ns);
}

/* eff: the random mix, 3 allocations to 1 free, until the allocator first
 * refuses, under an address-space limit of what the process had mapped
 * before plus `budget`, set before the allocator's first call. Everything
 * the allocator maps counts: its metadata, its caches, address space it
 * reserves ahead (mimalloc reserves 32 MiB segments, for one). */
static size_t eff_live;
static void efficiency(size_t budget)
{
    size_t cap = budget / 16;
    void **p = xmap(cap * sizeof *p);
    size_t *size = xmap(cap * sizeof *size);
    long vm = status_kib("VmSize:");
    if (vm < 0)
        die("cannot read VmSize", NULL);
    struct rlimit rl = {.rlim_cur = (rlim_t)vm * 1024 + budget, .rlim_max = RLIM_INFINITY};
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        die("setrlimit failed", strerror(errno));
    uint64_t s = 9;
    size_t count = 0;
    for (uint64_t step = 1;; step++) {
        check_deadline(step);
        if (count > 0 && rnd(&s) % 4 == 0) {
            size_t k = (size_t)(rnd(&s) % count);
            api.free(p[k]);
            eff_live -= size[k];
            p[k] = p[--count];
            size[k] = size[count];
            continue;
        }
        size_t n = mix_size(&s);
        void *b = api.malloc(n);
        if (!b)
            break;
        touch(b, n);
        if (count == cap)
            die("the efficiency run's arrays are full", NULL);
        p[count] = b;
        size[count++] = n;
        eff_live += n;
    }
}

int main(int argc, char **argv)
{
    static char out[4096];
    setvbuf(stdout, out, _IOFBF, sizeof out);
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: heap-runner ALLOCATOR time|lat|eff WORKLOAD SCALE [SECONDS]\n");
        return 2;
    }
    const char *mode = argv[2];
    double scale = strtod(argv[4], NULL);
    load(argv[1]);
    int is_lat = strcmp(mode, "lat") == 0, is_eff = strcmp(mode, "eff") == 0;
    if (!is_lat && !is_eff && strcmp(mode, "time") != 0)
        die("unknown mode", mode);
    const struct workload *w = NULL;
    for (size_t i = 0; i < sizeof workloads / sizeof *workloads; i++)
        if (strcmp(workloads[i].name, argv[3]) == 0)
            w = &workloads[i];
    if (!w)
        die("unknown workload", argv[3]);
    uint64_t n = (uint64_t)(scale * (double)w->n);
    if (n < 1000)
        n = 1000;
    size_t budget = (size_t)(scale * (double)(256u << 20));
    if (!w->threads)
        timed_clock = CLOCK_PROCESS_CPUTIME_ID;
    int partial = 0;
    if (argc == 6 && !w->threads)
        deadline = now_ns() + strtod(argv[5], NULL) * 1e9;
    if (setjmp(stop_jmp)) {
        partial = 1;
        deadline = 0;
        goto report;
    }
    if (is_lat) {
        lat_cap = (size_t)n + 1000;
        lat = xmap(lat_cap * sizeof *lat);
    }
    if (is_eff)
        efficiency(budget);
    else
        w->run(n);
report:
    lat_cap = 0;
    if (is_eff)
        printf("live=%zu budget=%zu", eff_live, budget);
    else if (is_lat)
        report_lat();
    else
        printf("ops=%llu ns_per_op=%.2f rss_kib=%ld", (unsigned long long)timed_ops,
               timed_ops ? timed_ns / (double)timed_ops : 0.0, status_kib("VmHWM:"));
    printf(" partial=%d\n", partial);
    return 0;
}
