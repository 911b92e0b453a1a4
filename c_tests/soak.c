/* The soak (`make soak`; a short run is a `make test` step): worker threads
 * allocate through every entry point with random sizes, check the contents
 * of every block they free, hand blocks to each other to free, fork now and
 * then (the child allocates, checks and exits), while the main thread runs
 * memshim_check() periodically. At the end every block is freed, the heap
 * is trimmed, and the counters must be back where they started: every byte
 * returned, every span given back to the system.
 *
 *   soak [seconds [threads]]      defaults: 10 s, 4 threads
 *
 * Last line: "N passed, N failed" (one test: the soak). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "memshim.h"

enum { SLOTS = 512, RING = 256, MAX_THREADS = 16 };

struct block {
    unsigned char *p;
    size_t n;
    unsigned seed;
};

/* Blocks handed from one thread to the next, to be checked and freed there. */
struct ring {
    pthread_mutex_t m;
    struct block b[RING];
    int len;
};

static struct ring rings[MAX_THREADS];
static int nthreads;
static atomic_int stop;
static atomic_long ops, forks, bad, handed;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static int intact(const struct block *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->p[i] != (unsigned char)(b->seed + i * 7))
            return 0;
    return 1;
}

/* Mostly small, some above the slab classes, a few large. */
static size_t size_of(uint64_t r)
{
    switch (r & 15) {
    case 0:
        return (size_t)(r >> 8) % (1 << 20);
    case 1:
    case 2:
        return (size_t)(r >> 8) % 65536;
    default:
        return (size_t)(r >> 8) % 512;
    }
}

/* One allocation through a random entry point; NULL only on failure. */
static unsigned char *alloc_any(uint64_t *s, size_t n)
{
    void *p = NULL;
    uint64_t r = rnd(s);
    switch (r % 9) {
    case 0:
        return calloc(1, n);
    case 1:
        return reallocarray(NULL, n ? n : 1, 1);
    case 2:
        return posix_memalign(&p, (size_t)16 << (r >> 8) % 9, n) == 0 ? p : NULL;
    case 3:
        return aligned_alloc((size_t)8 << (r >> 8) % 10, n);
    case 4:
        return memalign((size_t)32 << (r >> 8) % 6, n);
    case 5:
        return (r >> 8) % 8 == 0 ? valloc(n) : malloc(n);
    case 6:
        return (r >> 8) % 8 == 0 ? pvalloc(n) : malloc(n);
    default:
        return malloc(n);
    }
}

static void give(int to, struct block b)
{
    struct ring *q = &rings[to];
    pthread_mutex_lock(&q->m);
    if (q->len < RING) {
        q->b[q->len++] = b;
        b.p = NULL;
    }
    pthread_mutex_unlock(&q->m);
    if (b.p) { /* ring full: free it here */
        if (!intact(&b))
            atomic_fetch_add(&bad, 1);
        free(b.p);
    } else {
        atomic_fetch_add(&handed, 1);
    }
}

static void drain(int me)
{
    struct ring *q = &rings[me];
    struct block got[RING];
    pthread_mutex_lock(&q->m);
    int n = q->len;
    memcpy(got, q->b, (size_t)n * sizeof got[0]);
    q->len = 0;
    pthread_mutex_unlock(&q->m);
    for (int i = 0; i < n; i++) {
        if (!intact(&got[i]))
            atomic_fetch_add(&bad, 1);
        free(got[i].p);
    }
}

/* The child of a fork: the heap must work there, with this one thread. */
static void child(uint64_t seed)
{
    struct block mine[64] = {{0}};
    for (int k = 0; k < 2000; k++) {
        int i = (int)(rnd(&seed) % 64);
        if (mine[i].p && !intact(&mine[i]))
            _exit(2);
        free(mine[i].p);
        mine[i].n = size_of(rnd(&seed));
        mine[i].seed = (unsigned)k;
        mine[i].p = alloc_any(&seed, mine[i].n);
        if (!mine[i].p)
            _exit(3);
        fill(mine[i].p, mine[i].n, mine[i].seed);
    }
    for (int i = 0; i < 64; i++)
        free(mine[i].p);
    _exit(memshim_check() == 0 ? 0 : 4);
}

static void *worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(me + 1);
    struct block slot[SLOTS];
    memset(slot, 0, sizeof slot);
    long n = 0;
    while (!atomic_load(&stop)) {
        int i = (int)(rnd(&seed) % SLOTS);
        struct block *b = &slot[i];
        uint64_t r = rnd(&seed);
        if (b->p && !intact(b))
            atomic_fetch_add(&bad, 1);
        if (b->p && (r & 7) == 0) {
            give((me + 1) % nthreads, *b);
            b->p = NULL;
            continue;
        } else if (b->p && (r & 7) == 1) {
            size_t m = size_of(rnd(&seed));
            unsigned char *q = realloc(b->p, m ? m : 1);
            if (!q) {
                atomic_fetch_add(&bad, 1);
                continue;
            }
            size_t keep = b->n < m ? b->n : m;
            b->p = q;
            b->n = keep;
            if (!intact(b))
                atomic_fetch_add(&bad, 1);
            b->n = m;
        } else {
            if (b->p && malloc_usable_size(b->p) < b->n)
                atomic_fetch_add(&bad, 1);
            free(b->p);
            b->n = size_of(r);
            b->p = alloc_any(&seed, b->n);
            if (!b->p) {
                atomic_fetch_add(&bad, 1);
                continue;
            }
        }
        b->seed = (unsigned)rnd(&seed);
        fill(b->p, b->n, b->seed);
        if ((++n & 255) == 0)
            drain(me);
        if (me == 0 && (n & 2047) == 0) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0)
                child(seed);
            int st = 0;
            if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                atomic_fetch_add(&bad, 1);
            atomic_fetch_add(&forks, 1);
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        if (slot[i].p && !intact(&slot[i]))
            atomic_fetch_add(&bad, 1);
        free(slot[i].p);
    }
    atomic_fetch_add(&ops, n);
    return NULL;
}

static void *idle(void *arg)
{
    return arg;
}

static struct memshim_stats stats(void)
{
    struct memshim_stats s;
    memshim_get_stats(&s);
    return s;
}

int main(int argc, char **argv)
{
    int seconds = argc > 1 ? atoi(argv[1]) : 10;
    nthreads = argc > 2 ? atoi(argv[2]) : 4;
    if (nthreads < 1 || nthreads > MAX_THREADS || seconds < 1) {
        fprintf(stderr, "usage: soak [seconds >= 1 [threads 1..%d]]\n", MAX_THREADS);
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    for (int i = 0; i < nthreads; i++)
        pthread_mutex_init(&rings[i].m, NULL);
    pthread_t t[MAX_THREADS];
    /* glibc allocates a few blocks per thread (its TLS vectors) and keeps
       them with the stacks it caches: make those before the baseline. */
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, idle, NULL);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    memshim_trim();
    struct memshim_stats before = stats();
    for (int i = 0; i < nthreads; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    long checks = 0, problems = 0;
    time_t end = time(NULL) + seconds;
    while (time(NULL) < end) {
        struct timespec d = {0, 200 * 1000 * 1000};
        nanosleep(&d, NULL);
        problems += (long)memshim_check();
        checks++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < nthreads; i++)
        drain(i);
    problems += (long)memshim_check();
    memshim_trim();
    struct memshim_stats after = stats();
    int ok = atomic_load(&bad) == 0 && problems == 0 &&
             after.live_allocations == before.live_allocations &&
             after.heap_bytes_in_use == before.heap_bytes_in_use &&
             after.heap_bytes_mapped == before.heap_bytes_mapped &&
             after.heap_slabs == before.heap_slabs;
    printf("soak: %d s, %d threads: %ld operations, %ld handed to another thread, %ld forks, "
           "%ld checks (%ld problems), %ld bad blocks\n",
           seconds, nthreads, atomic_load(&ops), atomic_load(&handed), atomic_load(&forks),
           checks, problems, atomic_load(&bad));
    printf("soak: before: %llu live, %llu B in use, %llu B mapped in %llu spans, %llu slabs\n",
           (unsigned long long)before.live_allocations,
           (unsigned long long)before.heap_bytes_in_use,
           (unsigned long long)before.heap_bytes_mapped, (unsigned long long)before.heap_spans,
           (unsigned long long)before.heap_slabs);
    printf("soak: after:  %llu live, %llu B in use, %llu B mapped in %llu spans, %llu slabs "
           "(peak %llu B in use, %llu allocations, %llu B of metadata)\n",
           (unsigned long long)after.live_allocations, (unsigned long long)after.heap_bytes_in_use,
           (unsigned long long)after.heap_bytes_mapped, (unsigned long long)after.heap_spans,
           (unsigned long long)after.heap_slabs, (unsigned long long)after.heap_peak_bytes_in_use,
           (unsigned long long)after.total_allocations,
           (unsigned long long)after.heap_bytes_metadata);
    printf("%s soak\n%d passed, %d failed\n", ok ? "ok  " : "FAIL", ok, !ok);
    return ok ? 0 : 1;
}
