/*
 * A tiny test harness for memshim's C tests. One test program = one
 * c_tests/test_<area>.c that includes this header FIRST and defines tests:
 *
 *     #include "harness.h"
 *     TEST(malloc_aligns) { void *p = malloc(2); CHECK(((uintptr_t)p & 15) == 0); free(p); }
 *
 * `make test-c` builds every c_tests/test_*.c against the host archive (once
 * dynamically, once -static) and runs it. The runner (main is here) runs each
 * test in a forked child, so a crash, an abort or a hang (HARNESS_TIMEOUT
 * seconds, default 60) fails that test only and each test starts from the
 * same heap. It prints one line per test and, last, `N passed, N failed`.
 *
 *   ./test_x [substring]   run only tests whose name contains it
 *   HARNESS_NOFORK=1       run tests in-process (for a debugger)
 *
 * Built with -DHARNESS_REFERENCE (make test-c-ref) the tests run against
 * glibc's allocator instead, to check the tests themselves; memshim_*
 * symbols are then weak and MEMSHIM_ONLY() skips the test.
 *
 * Checks: CHECK(cond) and CHECKF(cond, fmt, ...) record a failure and go on;
 * REQUIRE(cond) records it and ends the test; SKIP("why") ends it as skipped.
 * Death tests: harness_run_child(fn, arg) runs fn in a child with stderr
 * captured; EXPECT_ABORT checks it died of SIGABRT with `memshim: `, one of
 * the given words, and an address in [lo, hi] in its stderr.
 */
#ifndef MEMSHIM_HARNESS_H
#define MEMSHIM_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MEMSHIM_DECLARE_NEWLIB_R 1
#include "memshim.h"

#ifdef HARNESS_REFERENCE
/* glibc has no memshim_*: weak references resolve to NULL. */
#pragma weak memshim_add_region
#pragma weak memshim_set_page_hooks
#pragma weak memshim_set_lock_hooks
#pragma weak memshim_set_panic_handler
#pragma weak memshim_get_stats
#pragma weak memshim_check
#pragma weak memshim_dump
#pragma weak memshim_strerror
#pragma weak memshim_init_multiboot
#pragma weak memshim_frames_init
#pragma weak memshim_frame_alloc
#pragma weak memshim_frame_alloc_contiguous
#pragma weak memshim_frame_free
#pragma weak memshim_frame_free_contiguous
#pragma weak memshim_frame_reserve
#pragma weak _malloc_r
#pragma weak _free_r
#pragma weak _calloc_r
#pragma weak _realloc_r
#pragma weak _memalign_r
#pragma weak _malloc_usable_size_r
static const bool harness_reference = true;
#else
static const bool harness_reference = false;
#endif

#define HARNESS_MAX_TESTS 256
#define HARNESS_SKIP_CODE 77

typedef void (*harness_fn)(void);
static struct { const char *name; harness_fn fn; } harness_tests[HARNESS_MAX_TESTS];
static int harness_ntests;
static int harness_fails;    /* failed checks in the current test */
static bool harness_skipped; /* the current test called SKIP */

static inline void harness_register(const char *name, harness_fn fn)
{
    if (harness_ntests == HARNESS_MAX_TESTS) {
        fprintf(stderr, "harness: more than %d tests\n", HARNESS_MAX_TESTS);
        abort();
    }
    harness_tests[harness_ntests].name = name;
    harness_tests[harness_ntests].fn = fn;
    harness_ntests++;
}

#define TEST(name)                                                            \
    static void name(void);                                                   \
    __attribute__((constructor)) static void harness_reg_##name(void)         \
    {                                                                         \
        harness_register(#name, name);                                        \
    }                                                                         \
    static void name(void)

__attribute__((format(printf, 3, 4))) static inline void
harness_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    printf("    %s:%d: ", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    __atomic_fetch_add(&harness_fails, 1, __ATOMIC_RELAXED);
}

#define CHECKF(cond, ...)                                                     \
    do {                                                                      \
        if (!(cond))                                                          \
            harness_fail(__FILE__, __LINE__, __VA_ARGS__);                    \
    } while (0)
#define CHECK(cond) CHECKF(cond, "CHECK(%s) failed", #cond)
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond)) {                                                        \
            harness_fail(__FILE__, __LINE__, "REQUIRE(%s) failed", #cond);    \
            return;                                                           \
        }                                                                     \
    } while (0)

/* Ends the current test (from its own body) as skipped. */
#define SKIP(why)                                                             \
    do {                                                                      \
        printf("    skipped: %s\n", why);                                     \
        harness_skipped = true;                                               \
        return;                                                               \
    } while (0)
#define MEMSHIM_ONLY()                                                        \
    do {                                                                      \
        if (harness_reference)                                                \
            SKIP("memshim-specific");                                         \
    } while (0)

static inline bool aligned_to(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

/* Fills / verifies a block with a pattern derived from a seed. */
static inline void fill_pattern(void *p, size_t n, unsigned seed)
{
    unsigned char *b = (unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 31u + i * 7u + (i >> 8));
}
static inline bool has_pattern(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed * 31u + i * 7u + (i >> 8)))
            return false;
    return true;
}

/* A small deterministic PRNG (xorshift64*), so failures reproduce. */
static inline uint64_t harness_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* ---- death tests ---------------------------------------------------- */

struct harness_child {
    int status;         /* from waitpid */
    char err[4096];     /* captured stderr (truncated) */
    uintptr_t noted[4]; /* addresses the child noted with harness_note() */
};

static uintptr_t *harness_shared_notes;

/* Called by a child before its fatal call: records an address for the parent. */
static inline void harness_note(int slot, const void *p)
{
    if (harness_shared_notes && slot >= 0 && slot < 4)
        harness_shared_notes[slot] = (uintptr_t)p;
}

/* Runs fn(arg) in a child with stderr captured; returns when it has ended
 * (killed after 20 s). The child exits 0 if fn returns. */
static inline void harness_run_child(void (*fn)(void *), void *arg, struct harness_child *out)
{
    int pfd[2];
    memset(out, 0, sizeof *out);
    if (!harness_shared_notes) {
        void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            perror("harness: mmap");
            abort();
        }
        harness_shared_notes = (uintptr_t *)m;
    }
    memset(harness_shared_notes, 0, 4 * sizeof(uintptr_t));
    if (pipe(pfd) != 0) {
        perror("harness: pipe");
        abort();
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        abort();
    }
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        close(pfd[1]);
        signal(SIGABRT, SIG_DFL);
        alarm(20);
        fn(arg);
        _exit(0);
    }
    close(pfd[1]);
    size_t got = 0;
    for (;;) {
        char tmp[512];
        ssize_t n = read(pfd[0], tmp, sizeof tmp);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t room = sizeof out->err - 1 - got;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(out->err + got, tmp, take);
        got += take;
    }
    out->err[got] = 0;
    close(pfd[0]);
    while (waitpid(pid, &out->status, 0) < 0 && errno == EINTR) {
    }
    memcpy(out->noted, harness_shared_notes, sizeof out->noted);
}

static inline bool harness_contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0)
            return true;
    return false;
}

/* True if text contains a 0x-prefixed hex number in [lo, hi]. */
static inline bool harness_names_address(const char *text, uintptr_t lo, uintptr_t hi)
{
    for (const char *s = text; (s = strstr(s, "0x")) != NULL; s += 2) {
        char *end;
        unsigned long long v = strtoull(s, &end, 16);
        if (end > s + 2 && v >= lo && v <= hi)
            return true;
    }
    return false;
}

/* `words` is a '|'-separated list; true if text contains any of them. */
static inline bool harness_names_any(const char *text, const char *words)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", words);
    for (char *w = strtok(buf, "|"); w; w = strtok(NULL, "|"))
        if (harness_contains_ci(text, w))
            return true;
    return false;
}

/* Checks a child died of SIGABRT and (against memshim) reported
 * `memshim: `, one of `words` and an address in [lo, hi] on stderr. */
#define EXPECT_ABORT(c, words, lo, hi)                                        \
    do {                                                                      \
        const struct harness_child *c_ = (c);                                 \
        CHECKF(WIFSIGNALED(c_->status) && WTERMSIG(c_->status) == SIGABRT,    \
               "child did not die of SIGABRT (status %#x); stderr: %s",       \
               c_->status, c_->err);                                          \
        if (!harness_reference) {                                             \
            CHECKF(strstr(c_->err, "memshim: ") != NULL,                      \
                   "no 'memshim: ' on stderr: %s", c_->err);                  \
            CHECKF(harness_names_any(c_->err, words),                         \
                   "stderr names none of '%s': %s", words, c_->err);          \
            CHECKF(harness_names_address(c_->err, (lo), (hi)),                \
                   "stderr names no address in [%#lx, %#lx]: %s",             \
                   (unsigned long)(lo), (unsigned long)(hi), c_->err);        \
        }                                                                     \
    } while (0)

/* ---- memshim helpers ------------------------------------------------- */

static inline struct memshim_stats stats_now(void)
{
    struct memshim_stats s;
    memset(&s, 0, sizeof s);
    if (!harness_reference)
        memshim_get_stats(&s);
    return s;
}

static inline size_t heap_problems(void)
{
    return harness_reference ? 0 : memshim_check();
}

/* ---- runner ---------------------------------------------------------- */

static int harness_run_one(int i, bool nofork)
{
    harness_fails = 0;
    harness_skipped = false;
    if (nofork) {
        harness_tests[i].fn();
        return harness_fails ? 1 : harness_skipped ? -1 : 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        return 1;
    }
    if (pid == 0) {
        const char *t = getenv("HARNESS_TIMEOUT");
        alarm(t ? (unsigned)atoi(t) : 60);
        harness_tests[i].fn();
        fflush(stdout);
        exit(harness_fails ? 1 : harness_skipped ? HARNESS_SKIP_CODE : 0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st) == HARNESS_SKIP_CODE ? -1 : WEXITSTATUS(st) != 0;
    printf("    killed by signal %d (%s)%s\n", WTERMSIG(st), strsignal(WTERMSIG(st)),
           WTERMSIG(st) == SIGALRM ? ": timed out" : "");
    return 1;
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    bool nofork = getenv("HARNESS_NOFORK") != NULL;
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("# %s (%s)\n", argv[0], harness_reference ? "reference: glibc malloc" : "memshim");
    for (int i = 0; i < harness_ntests; i++) {
        if (filter && !strstr(harness_tests[i].name, filter))
            continue;
        int r = harness_run_one(i, nofork);
        printf("%s %s\n", r < 0 ? "skip" : r ? "FAIL" : "ok  ", harness_tests[i].name);
        if (r < 0)
            skipped++;
        else if (r)
            failed++;
        else
            passed++;
    }
    if (skipped)
        printf("(%d skipped)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif /* MEMSHIM_HARNESS_H */
