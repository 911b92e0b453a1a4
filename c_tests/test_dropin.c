/* Drop-in on the host: glibc's own internal allocations (strdup, stdio
 * buffers, getline, asprintf, qsort's scratch) come from memshim, and blocks
 * glibc made go back to memshim. run.sh builds this (like every test) both
 * as a dynamic executable and -static, with the archive ahead of libc. */
#include "harness.h"

#include <malloc.h>

static struct memshim_stats base;

static void start(void)
{
    base = stats_now();
}

static long live_delta(void)
{
    return (long)(stats_now().live_allocations - base.live_allocations);
}

static long allocs_delta(void)
{
    return (long)(stats_now().total_allocations - base.total_allocations);
}

TEST(strdup_comes_from_memshim)
{
    MEMSHIM_ONLY();
    start();
    char *s = strdup("hello, memshim");
    REQUIRE(s != NULL);
    CHECKF(live_delta() == 1 && allocs_delta() == 1, "strdup: live %+ld, allocs %+ld",
           live_delta(), allocs_delta());
    CHECK(aligned_to(s, 16));
    CHECK(malloc_usable_size(s) >= 15);
    char *t = strndup("abcdefgh", 3);
    REQUIRE(t != NULL);
    CHECK(live_delta() == 2);
    free(s);
    free(t);
    CHECK(live_delta() == 0);
    CHECK(memshim_check() == 0);
}

static char *temp_file(const char *content)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/memshim-dropin-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fputs(content, f);
    fclose(f);
    return path;
}

TEST(stdio_buffers_come_from_memshim)
{
    MEMSHIM_ONLY();
    char *path = temp_file("line one\nline two is longer\n");
    REQUIRE(path != NULL);
    start();
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    long after_open = live_delta();
    CHECKF(after_open >= 1, "fopen: live %+ld (the FILE)", after_open);
    char buf[64];
    REQUIRE(fgets(buf, sizeof buf, f) != NULL);
    CHECKF(live_delta() > after_open, "first read: live %+ld (the buffer)", live_delta());
    fclose(f);
    CHECKF(live_delta() == 0, "after fclose: live %+ld", live_delta());
    CHECK(allocs_delta() >= 2);
    CHECK(memshim_check() == 0);
    unlink(path);
}

TEST(getline_buffer_freed_by_memshim)
{
    MEMSHIM_ONLY();
    char *path = temp_file("short\nthis line is quite a lot longer than the first one, to grow it\n");
    REQUIRE(path != NULL);
    start();
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0;
    while (getline(&line, &cap, f) > 0)
        lines++;
    CHECK(lines == 2);
    REQUIRE(line != NULL);
    CHECK(malloc_usable_size(line) >= cap);
    CHECK(allocs_delta() >= 3); /* FILE, stdio buffer, line */
    long live = live_delta();
    free(line);
    CHECK(live_delta() == live - 1);
    fclose(f);
    CHECK(live_delta() == 0);
    CHECK(memshim_check() == 0);
    unlink(path);
}

TEST(asprintf_comes_from_memshim)
{
    MEMSHIM_ONLY();
    start();
    char *s = NULL;
    int n = asprintf(&s, "%s-%d-%0200d", "x", 42, 7);
    REQUIRE(n > 0 && s != NULL);
    CHECK(live_delta() == 1);
    CHECK(malloc_usable_size(s) >= (size_t)n + 1);
    free(s);
    CHECK(live_delta() == 0);
    CHECK(memshim_check() == 0);
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

TEST(qsort_scratch_comes_from_memshim)
{
    MEMSHIM_ONLY();
    enum { N = 100000 };
    int *v = malloc(N * sizeof *v);
    REQUIRE(v != NULL);
    uint64_t seed = 3;
    for (int i = 0; i < N; i++)
        v[i] = (int)(harness_rand(&seed) % 1000000);
    start();
    qsort(v, N, sizeof *v, cmp_int);
    /* glibc 2.36's qsort takes a merge buffer from malloc above 1 KiB. */
    CHECKF(allocs_delta() >= 1, "qsort made %ld allocations", allocs_delta());
    CHECK(live_delta() == 0);
    for (int i = 1; i < N; i++)
        if (v[i - 1] > v[i]) {
            CHECKF(false, "not sorted at %d", i);
            break;
        }
    free(v);
    CHECK(memshim_check() == 0);
}

TEST(glibc_and_memshim_blocks_mix)
{
    /* realloc/free of blocks glibc made, glibc freeing blocks we made (fclose
     * of a stream with a user-provided buffer is not that; setvbuf is). */
    char *s = strdup("grow me");
    REQUIRE(s != NULL);
    char *t = realloc(s, 100000);
    REQUIRE(t != NULL);
    CHECK(strcmp(t, "grow me") == 0);
    free(t);
    char *path = temp_file("abc\n");
    REQUIRE(path != NULL);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    char *line = malloc(4); /* ours, grown by glibc's getline */
    size_t cap = 4;
    REQUIRE(line != NULL);
    CHECK(getline(&line, &cap, f) == 4);
    CHECK(strcmp(line, "abc\n") == 0);
    free(line);
    fclose(f);
    unlink(path);
    CHECK(heap_problems() == 0);
}

TEST(glibc_malloc_extras_link_and_report)
{
    /* With -static these would drag glibc's malloc.o in if memshim lacked them. */
    void *p = malloc(5000);
    REQUIRE(p != NULL);
    struct mallinfo2 mi = mallinfo2();
    CHECK(mi.uordblks >= 5000);
    CHECK(mallopt(M_TRIM_THRESHOLD, 64 << 20) == 1);
    malloc_trim(0);
    FILE *devnull = fopen("/dev/null", "w");
    REQUIRE(devnull != NULL);
    CHECK(malloc_info(0, devnull) == 0);
    fclose(devnull);
    free(p);
    void *v = valloc(100), *pv = pvalloc(100);
    CHECK(v && pv);
    free(v);
    free(pv);
    CHECK(heap_problems() == 0);
}

TEST(memshim_is_the_allocator)
{
    MEMSHIM_ONLY();
    /* The malloc this program calls is the one memshim counts. */
    start();
    void *p = malloc(77);
    CHECK(live_delta() == 1);
    free(p);
    CHECK(live_delta() == 0);
    /* and glibc's own calls go there too (setenv copies into malloc'd memory) */
    start();
    CHECK(setenv("MEMSHIM_DROPIN_TEST", "a fairly long value for the environment", 1) == 0);
    CHECKF(allocs_delta() >= 1, "setenv made %ld allocations", allocs_delta());
    CHECK(memshim_check() == 0);
}

/* mallopt: the parameters glibc documents are accepted (1) where they mean
   something here or are harmless no-ops; the rest are refused (0). Programs
   that treat a 0 from mallopt(M_ARENA_MAX, 1) as fatal run on memshim. */
TEST(mallopt_accepts_what_glibc_documents)
{
    CHECK(mallopt(M_ARENA_MAX, 1) == 1);
    CHECK(mallopt(M_ARENA_TEST, 1) == 1);
    CHECK(mallopt(M_TOP_PAD, 64 << 10) == 1);
    CHECK(mallopt(M_MXFAST, 64) == 1);
    CHECK(mallopt(M_CHECK_ACTION, 3) == 1);
    CHECK(mallopt(M_PERTURB, 0) == 1);
    CHECK(mallopt(M_TRIM_THRESHOLD, 1 << 20) == 1);
    CHECK(mallopt(M_MMAP_MAX, 65536) == 1);
    /* -1 is "never" for the sizes, as in glibc; large values are sizes. */
    CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 1);
    CHECK(mallopt(M_MMAP_THRESHOLD, -1) == 1);
    CHECK(mallopt(M_MMAP_THRESHOLD, 64 << 20) == 1);
    CHECK(mallopt(M_TOP_PAD, -1) == 1);
    CHECK(mallopt(M_MMAP_MAX, -1) == 1);
#ifndef HARNESS_REFERENCE
    /* glibc accepts these too (it returns 1 for unknown parameters). */
    CHECK(mallopt(M_MXFAST, 1000) == 0);
    CHECK(mallopt(M_PERTURB, 0x55) == 0);
    CHECK(mallopt(12345, 1) == 0);
#endif
    /* Back to the defaults' behaviour for the tests after this one. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

/* M_MMAP_THRESHOLD has its glibc meaning: a block at least this large gets
   memory of its own, given back as soon as it is freed; below it, blocks
   share spans, and a span they leave empty is kept for reuse. (Blocks that
   fit in memory never given back anyway, the static arena, stay there.) */
TEST(mallopt_mmap_threshold_gives_big_blocks_their_own_memory)
{
    MEMSHIM_ONLY();
    memshim_trim();
    struct memshim_stats a = stats_now();
    REQUIRE(mallopt(M_MMAP_THRESHOLD, 256 << 10) == 1);
    void *p = malloc(2 << 20);
    REQUIRE(p != NULL);
    memset(p, 1, 2 << 20);
    CHECK(stats_now().heap_spans == a.heap_spans + 1);
    free(p);
    struct memshim_stats b = stats_now();
    CHECKF(b.heap_spans == a.heap_spans && b.heap_bytes_mapped == a.heap_bytes_mapped,
           "own span not given back: spans %llu -> %llu", (unsigned long long)a.heap_spans,
           (unsigned long long)b.heap_spans);
    /* Above the threshold's cap (32 MiB) it is refused; at it, 2 MiB shares. */
    REQUIRE(mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1);
    void *q = malloc(2 << 20);
    REQUIRE(q != NULL);
    free(q);
    CHECKF(stats_now().heap_bytes_mapped > a.heap_bytes_mapped,
           "a shared span was given back at once: no reuse");
    memshim_trim();
    CHECK(stats_now().heap_bytes_mapped == a.heap_bytes_mapped);
    REQUIRE(mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1);
}

/* malloc_stats writes through the stderr stream (as glibc does), so a
   program that points stderr elsewhere gets it there, in order with its
   own output. */
TEST(malloc_stats_goes_through_the_stderr_stream)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    REQUIRE(m != NULL);
    FILE *saved = stderr;
    stderr = m;
    fputs("before\n", stderr);
    malloc_stats();
    fputs("after\n", stderr);
    stderr = saved;
    fclose(m);
    REQUIRE(text != NULL);
    char *b = strstr(text, "before"), *a = strstr(text, "after");
    CHECKF(b && a && a > b + 7, "stderr stream got: %.200s", text);
#ifndef HARNESS_REFERENCE
    CHECKF(b && a && strstr(b, "heap:") && strstr(b, "heap:") < a, "no summary between: %.200s",
           text);
#endif
    free(text);
}
