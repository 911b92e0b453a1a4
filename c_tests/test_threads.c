/* Threads and fork: concurrent malloc/free/realloc with content checks,
 * blocks freed by another thread, fork while other threads allocate, and
 * fork from a signal handler that interrupted malloc. */
#include "harness.h"

#include <pthread.h>
#include <sys/time.h>
#include <time.h>

enum { THREADS = 4, SLOTS = 256, OPS = 40000 };

struct worker {
    int id;
    long bad; /* content mismatches seen */
    long ops;
};

static void *churn(void *arg)
{
    struct worker *w = arg;
    char *p[SLOTS] = {0};
    size_t len[SLOTS] = {0};
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(w->id + 1);
    for (int op = 0; op < OPS; op++) {
        int i = (int)(harness_rand(&seed) % SLOTS);
        uint64_t r = harness_rand(&seed);
        unsigned tag = (unsigned)(w->id * SLOTS + i);
        size_t n = (size_t)(r % ((r & 0xF0) == 0 ? 200000 : 1500));
        if (p[i] && !has_pattern(p[i], len[i], tag))
            w->bad++;
        if ((r >> 62) == 0) {
            size_t keep = len[i] < n ? len[i] : n;
            char *q = realloc(p[i], n + 1);
            if (!q) {
                w->bad++;
                continue;
            }
            if (!has_pattern(q, keep, tag))
                w->bad++;
            p[i] = q;
        } else {
            free(p[i]);
            p[i] = (r >> 61 & 1) ? calloc(1, n + 1) : malloc(n + 1);
            if (!p[i]) {
                w->bad++;
                continue;
            }
        }
        len[i] = n + 1;
        fill_pattern(p[i], len[i], tag);
        w->ops++;
    }
    for (int i = 0; i < SLOTS; i++) {
        if (p[i] && !has_pattern(p[i], len[i], (unsigned)(w->id * SLOTS + i)))
            w->bad++;
        free(p[i]);
    }
    return NULL;
}

TEST(threads_random_malloc_free_realloc)
{
    struct memshim_stats a = stats_now();
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.id = i};
        REQUIRE(pthread_create(&t[i], NULL, churn, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECKF(w[i].bad == 0, "thread %d: %ld bad results", i, w[i].bad);
        CHECKF(w[i].ops > OPS / 2, "thread %d did %ld ops", i, w[i].ops);
    }
    CHECK(heap_problems() == 0);
    struct memshim_stats b = stats_now();
    /* pthread_create may keep a few blocks (thread stacks' TLS) cached. */
    CHECKF(b.live_allocations <= a.live_allocations + 2 * THREADS, "live %llu -> %llu",
           (unsigned long long)a.live_allocations, (unsigned long long)b.live_allocations);
}

/* Producer/consumer: blocks allocated in one thread, freed in another. */
#define RING 1024
static struct {
    char *slot[RING];
    size_t len[RING];
    unsigned head, tail;
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    long bad;
} q = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};

static void *producer(void *arg)
{
    uint64_t seed = (uintptr_t)arg;
    for (int k = 0; k < 50000; k++) {
        size_t n = (size_t)(harness_rand(&seed) % 3000) + 1;
        char *p = malloc(n);
        if (!p) {
            __atomic_fetch_add(&q.bad, 1, __ATOMIC_RELAXED);
            continue;
        }
        fill_pattern(p, n, (unsigned)n);
        pthread_mutex_lock(&q.m);
        while (q.head - q.tail == RING)
            pthread_cond_wait(&q.c, &q.m);
        q.slot[q.head % RING] = p;
        q.len[q.head % RING] = n;
        q.head++;
        pthread_cond_broadcast(&q.c);
        pthread_mutex_unlock(&q.m);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&q.m);
        while (q.head == q.tail && !q.done)
            pthread_cond_wait(&q.c, &q.m);
        if (q.head == q.tail && q.done) {
            pthread_mutex_unlock(&q.m);
            return NULL;
        }
        char *p = q.slot[q.tail % RING];
        size_t n = q.len[q.tail % RING];
        q.tail++;
        pthread_cond_broadcast(&q.c);
        pthread_mutex_unlock(&q.m);
        if (!has_pattern(p, n, (unsigned)n))
            __atomic_fetch_add(&q.bad, 1, __ATOMIC_RELAXED);
        free(p);
    }
}

TEST(threads_free_what_others_allocated)
{
    pthread_t prod[2], cons[2];
    for (int i = 0; i < 2; i++) {
        REQUIRE(pthread_create(&prod[i], NULL, producer, (void *)(uintptr_t)(i + 7)) == 0);
        REQUIRE(pthread_create(&cons[i], NULL, consumer, NULL) == 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(prod[i], NULL);
    pthread_mutex_lock(&q.m);
    q.done = true;
    pthread_cond_broadcast(&q.c);
    pthread_mutex_unlock(&q.m);
    for (int i = 0; i < 2; i++)
        pthread_join(cons[i], NULL);
    CHECK(q.bad == 0);
    CHECK(q.head == 100000 && q.tail == 100000);
    CHECK(heap_problems() == 0);
}

/* ---- fork ------------------------------------------------------------ */

static volatile bool stop_churn;

static void *busy_allocator(void *arg)
{
    uint64_t seed = (uintptr_t)arg;
    void *p[32] = {0};
    while (!stop_churn) {
        int i = (int)(harness_rand(&seed) % 32);
        free(p[i]);
        p[i] = malloc((size_t)(harness_rand(&seed) % 5000));
    }
    for (int i = 0; i < 32; i++)
        free(p[i]);
    return NULL;
}

/* The child allocates, checks the heap, exits 0. */
static int child_work(void)
{
    void *p[100];
    for (int i = 0; i < 100; i++) {
        p[i] = malloc((size_t)i * 50 + 1);
        if (!p[i])
            return 1;
        memset(p[i], i, (size_t)i * 50 + 1);
    }
    for (int i = 0; i < 100; i++)
        free(p[i]);
    char *s = strdup("child");
    if (!s || strcmp(s, "child") != 0)
        return 2;
    free(s);
    return heap_problems() == 0 ? 0 : 4;
}

/* Waits up to `secs` for pid; kills it on timeout. Returns the wait status or -1. */
static int wait_for(pid_t pid, int secs)
{
    int st;
    for (int i = 0; i < secs * 100; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

TEST(fork_while_threads_allocate)
{
    pthread_t t[3];
    stop_churn = false;
    for (int i = 0; i < 3; i++)
        REQUIRE(pthread_create(&t[i], NULL, busy_allocator, (void *)(uintptr_t)(i + 11)) == 0);
    int ok = 0;
    const int rounds = 40;
    for (int k = 0; k < rounds; k++) {
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0)
            _exit(child_work());
        int st = wait_for(pid, 10);
        if (st == -1)
            CHECKF(false, "round %d: child hung (deadlock after fork?)", k);
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            CHECKF(false, "round %d: child status %#x", k, st);
        else
            ok++;
        /* The parent keeps allocating too. */
        free(malloc((size_t)k * 100));
    }
    stop_churn = true;
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    CHECKF(ok == rounds, "%d of %d children exited 0", ok, rounds);
    CHECK(heap_problems() == 0);
}

/* glibc's tst-mallocfork2: fork from a signal handler that may interrupt
 * malloc or free in the same thread; neither fork nor the child may hang. */
static volatile sig_atomic_t forks_done, forks_failed;

static void fork_in_handler(int sig)
{
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid < 0) {
        forks_failed++;
    } else {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            forks_failed++;
    }
    forks_done++;
    errno = saved;
}

TEST(fork_from_signal_handler_during_malloc)
{
    alarm(30); /* a deadlock here should not cost the harness's full minute */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fork_in_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    /* SIGPROF, not SIGALRM: the harness's own timeout uses alarm(). */
    REQUIRE(sigaction(SIGPROF, &sa, NULL) == 0);
    struct itimerval it = {{0, 2000}, {0, 2000}}; /* every 2 ms of CPU time */
    REQUIRE(setitimer(ITIMER_PROF, &it, NULL) == 0);
    uint64_t seed = 5;
    void *p[64] = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (int k = 0; k < 1000; k++) {
            int i = (int)(harness_rand(&seed) % 64);
            free(p[i]);
            p[i] = malloc((size_t)(harness_rand(&seed) % 4000));
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while (forks_done < 200 && t1.tv_sec - t0.tv_sec < 15);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    signal(SIGPROF, SIG_DFL);
    for (int i = 0; i < 64; i++)
        free(p[i]);
    CHECKF(forks_done >= 50, "only %d forks in 15 s", (int)forks_done);
    CHECK(forks_failed == 0);
    CHECK(heap_problems() == 0);
}
