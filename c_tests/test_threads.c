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

/* ---- fork against stdio: glibc's lock order (issue: fork took memshim's
   lock before glibc's stdio list lock, while getline held a FILE lock and
   waited in realloc for memshim's lock, and fflush(NULL) held the list lock
   and waited for that FILE: a three-way deadlock). ---- */

static volatile int stdio_stop;
static char *stdio_text;
static size_t stdio_len;

static void *stdio_forker(void *arg)
{
    long *forks = arg;
    while (!stdio_stop) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid > 0) {
            waitpid(pid, NULL, 0);
            ++*forks;
        }
    }
    return NULL;
}

static void *stdio_flusher(void *arg)
{
    (void)arg;
    while (!stdio_stop)
        fflush(NULL);
    return NULL;
}

/* getline over lines long enough (tens of KiB) that its realloc goes to
   memshim's heap under the lock, while it holds the FILE's lock. */
static void *stdio_reader(void *arg)
{
    (void)arg;
    while (!stdio_stop) {
        FILE *f = fmemopen(stdio_text, stdio_len, "r");
        if (!f)
            return (void *)1;
        char *line = NULL;
        size_t cap = 0;
        while (!stdio_stop && getline(&line, &cap, f) > 0) {
            free(line);
            line = NULL;
            cap = 0;
        }
        free(line);
        fclose(f);
    }
    return NULL;
}

static void fork_against_stdio(void *arg)
{
    (void)arg;
    alarm(15); /* a deadlock ends the child: the parent sees SIGALRM */
    stdio_len = 64 * 40000;
    stdio_text = malloc(stdio_len);
    for (size_t i = 0; i < stdio_len; i++)
        stdio_text[i] = (i % 40000 == 39999) ? '\n' : 'x';
    long forks = 0;
    pthread_t t[4];
    pthread_create(&t[0], NULL, stdio_forker, &forks);
    pthread_create(&t[1], NULL, stdio_flusher, NULL);
    pthread_create(&t[2], NULL, stdio_reader, NULL);
    pthread_create(&t[3], NULL, stdio_reader, NULL);
    struct timespec d = {3, 0};
    nanosleep(&d, NULL);
    stdio_stop = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    harness_note(0, (void *)(uintptr_t)(forks + 1));
}

TEST(fork_while_stdio_holds_its_locks_does_not_deadlock)
{
    struct harness_child c;
    harness_run_child(fork_against_stdio, NULL, &c);
    CHECKF(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0,
           "child %s (status %#x): deadlocked between fork, fflush(NULL) and getline?",
           WIFSIGNALED(c.status) ? "killed" : "failed", c.status);
    if (WIFEXITED(c.status))
        CHECKF(c.noted[0] > 10, "only %lu forks in 3 s", (unsigned long)c.noted[0] - 1);
}

/* ---- a fork nested in a fork (issue: a signal handler that forked while
   a fork was between memshim's prepare and parent handlers overwrote the
   one "taken" flag; the lock was never released). ---- */

static volatile int nested_armed;

static void nested_fork_handler(int sig)
{
    (void)sig;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static void raise_once(void)
{
    if (nested_armed) {
        nested_armed = 0;
        raise(SIGUSR1);
    }
}

/* Registered before main, before memshim's own handlers (memshim registers
   on first use): prepare handlers run in reverse order, so this one runs
   after memshim's, while memshim holds its lock for the fork. */
__attribute__((constructor)) static void register_raise_once(void)
{
    pthread_atfork(raise_once, NULL, NULL);
}

static void nested_fork(void *arg)
{
    (void)arg;
    signal(SIGUSR1, nested_fork_handler);
    nested_armed = 1;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    /* The lock was released by the outer fork's parent handler. */
    void *p = malloc(20000);
    free(p);
    harness_note(0, p);
}

TEST(nested_fork_from_a_signal_handler_releases_the_lock)
{
    struct harness_child c;
    harness_run_child(nested_fork, NULL, &c);
    CHECKF(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0 && c.noted[0] != 0,
           "child status %#x; stderr: %s", c.status, c.err);
}
