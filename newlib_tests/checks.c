/* newlib's internal allocations reach memshim: each check takes memshim's
 * counters before and after one newlib call that allocates inside newlib
 * (stdout's buffer, strdup, %f's big integers, asprintf, memory streams)
 * and checks both the counters and that the pointer newlib keeps is a
 * memshim block. A libc.a whose own malloc won the link leaves the counters
 * still, so these fail. errno checks read newlib's reentrancy structure. */
#define _GNU_SOURCE /* asprintf */
#include "checks.h"

#include <errno.h>
#include <malloc.h>
#include <reent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memshim.h"

/* Far more than any machine has; 2^62 still leaves room for header rounding. */
#define HUGE_SIZE opaque((size_t)1 << 62)

/* Hides a size from the compiler, which would otherwise reject the
 * deliberately impossible requests at compile time. */
static size_t opaque(size_t v)
{
    volatile size_t hidden = v;
    return hidden;
}

struct span {
    struct memshim_stats before, after;
};

static void span_begin(struct span *s) { memshim_get_stats(&s->before); }
static void span_end(struct span *s) { memshim_get_stats(&s->after); }

static long long d_allocs(const struct span *s)
{
    return (long long)(s->after.total_allocations - s->before.total_allocations);
}
static long long d_frees(const struct span *s)
{
    return (long long)(s->after.total_frees - s->before.total_frees);
}
static long long d_live(const struct span *s)
{
    return (long long)(s->after.live_allocations - s->before.live_allocations);
}
static long long d_bytes(const struct span *s)
{
    return (long long)(s->after.heap_bytes_in_use - s->before.heap_bytes_in_use);
}

static void span_print(const char *what, const struct span *s)
{
    printf("  memshim stats around %s: total_allocations %llu -> %llu, total_frees %llu -> %llu, "
           "live_allocations %llu -> %llu, heap_bytes_in_use %llu -> %llu\n",
           what, (unsigned long long)s->before.total_allocations,
           (unsigned long long)s->after.total_allocations, (unsigned long long)s->before.total_frees,
           (unsigned long long)s->after.total_frees, (unsigned long long)s->before.live_allocations,
           (unsigned long long)s->after.live_allocations, (unsigned long long)s->before.heap_bytes_in_use,
           (unsigned long long)s->after.heap_bytes_in_use);
}

void nl_check(struct nl_tally *t, int ok, const char *name, const char *file, int line)
{
    if (ok) {
        t->passed++;
        printf("  ok   - %s\n", name);
    } else {
        t->failed++;
        printf("  FAIL - %s (%s:%d)\n", name, file, line);
    }
}

/* The first printf makes stdout's buffer with _malloc_r (stdio/makebuf.c). */
static void check_stdout_buffer(struct nl_tally *t)
{
    struct span s;
    int unbuffered = stdout->_bf._base == NULL;
    span_begin(&s);
    printf("newlib: first printf; it makes stdout's buffer\n");
    span_end(&s);
    span_print("the first printf", &s);
    NL_CHECK(t, unbuffered, "stdout had no buffer before the first printf");
    NL_CHECK(t, d_allocs(&s) >= 1 && d_live(&s) >= 1, "the first printf allocated stdout's buffer from memshim");
    NL_CHECK(t, stdout->_bf._base != NULL && d_bytes(&s) >= stdout->_bf._size,
             "heap_bytes_in_use grew by at least the buffer's size");
    /* Only a malloc'd buffer (__SMBF) is asked about: memshim reports any
     * other pointer as a fault. */
    NL_CHECK(t, (stdout->_flags & __SMBF) && malloc_usable_size(stdout->_bf._base) >= (size_t)stdout->_bf._size,
             "stdout's buffer was malloc'd and is a live memshim block (malloc_usable_size)");
}

static void check_strdup(struct nl_tally *t)
{
    static const char text[] = "newlib strdup calls _malloc_r";
    struct span s;
    span_begin(&s);
    char *copy = strdup(text);
    span_end(&s);
    span_print("strdup", &s);
    NL_CHECK(t, copy != NULL && strcmp(copy, text) == 0, "strdup copied the string");
    NL_CHECK(t, d_allocs(&s) == 1 && d_live(&s) == 1, "strdup allocated exactly one memshim block");
    NL_CHECK(t, copy != NULL && malloc_usable_size(copy) >= sizeof text, "strdup's block is a memshim block");
    span_begin(&s);
    free(copy);
    span_end(&s);
    NL_CHECK(t, d_frees(&s) == 1 && d_live(&s) == -1, "free of strdup's block went to memshim");
}

/* The first %f makes mprec's Bigint freelist and Bigints with _calloc_r. */
static void check_float_format(struct nl_tally *t)
{
    char buf[64];
    struct span s;
    span_begin(&s);
    int n = snprintf(buf, sizeof buf, "%.3f|%e", 3.14159, 12345.678);
    span_end(&s);
    span_print("the first %f", &s);
    NL_CHECK(t, n > 0 && strcmp(buf, "3.142|1.234568e+04") == 0, "snprintf %f and %e format correctly");
    NL_CHECK(t, d_allocs(&s) >= 1 && d_live(&s) >= 1, "the first %f allocated from memshim (mprec's _calloc_r)");
    printf("  printf %%f through stdout: %f\n", 2.5);
}

static void check_asprintf(struct nl_tally *t)
{
    char *out = NULL;
    struct span s;
    span_begin(&s);
    int n = asprintf(&out, "%s-%d", "asprintf", 42);
    span_end(&s);
    span_print("asprintf", &s);
    NL_CHECK(t, n == 11 && out != NULL && strcmp(out, "asprintf-42") == 0, "asprintf formatted");
    NL_CHECK(t, d_allocs(&s) >= 1 && d_live(&s) == 1, "asprintf's result is one memshim block");
    span_begin(&s);
    free(out);
    span_end(&s);
    NL_CHECK(t, d_frees(&s) == 1 && d_live(&s) == -1, "asprintf's block freed with plain free");
}

/* fmemopen allocates its cookie with _malloc_r, setvbuf its buffer with
 * plain malloc, and fclose frees both with _free_r: one heap for both families. */
static void check_fmemopen(struct nl_tally *t)
{
    char text[32] = {0};
    struct span s;
    span_begin(&s);
    FILE *f = fmemopen(text, sizeof text, "w");
    span_end(&s);
    NL_CHECK(t, f != NULL && d_allocs(&s) >= 1, "fmemopen allocated its FILE state from memshim");
    if (f == NULL)
        return;
    span_begin(&s);
    int vb = setvbuf(f, NULL, _IOFBF, 256);
    span_end(&s);
    NL_CHECK(t, vb == 0 && d_allocs(&s) == 1 && d_live(&s) == 1, "setvbuf's buffer (plain malloc) came from memshim");
    fprintf(f, "%d-%s", 7, "fmem");
    span_begin(&s);
    int closed = fclose(f);
    span_end(&s);
    span_print("fclose of a memory stream", &s);
    NL_CHECK(t, closed == 0 && strcmp(text, "7-fmem") == 0, "fmemopen stream wrote its text");
    NL_CHECK(t, d_frees(&s) == 2 && d_live(&s) == -2, "fclose freed buffer and cookie through memshim (_free_r)");
}

/* open_memstream grows its buffer with _realloc_r; the caller frees it. */
static void check_open_memstream(struct nl_tally *t)
{
    char *out = NULL;
    size_t len = 0;
    struct span s;
    span_begin(&s);
    FILE *m = open_memstream(&out, &len);
    if (m != NULL) {
        for (int i = 0; i < 200; i++)
            fprintf(m, "%04d,", i);
        fclose(m);
    }
    NL_CHECK(t, m != NULL && out != NULL && len == 1000 && strncmp(out, "0000,0001,", 10) == 0 &&
                    strcmp(out + 995, "0199,") == 0,
             "open_memstream wrote 1000 bytes");
    NL_CHECK(t, out != NULL && malloc_usable_size(out) > len, "open_memstream's buffer (_realloc_r) is a memshim block");
    free(out);
    span_end(&s);
    span_print("open_memstream + free", &s);
    NL_CHECK(t, d_allocs(&s) >= 2 && d_live(&s) == 0, "open_memstream allocated from memshim and left nothing live");
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void check_qsort_and_formats(struct nl_tally *t)
{
    enum { N = 257 };
    int *v = malloc(N * sizeof *v);
    int sorted = v != NULL;
    if (v != NULL) {
        unsigned x = 12345;
        for (int i = 0; i < N; i++) {
            x = x * 1103515245u + 12345u;
            v[i] = (int)(x >> 8) % 1000;
        }
        qsort(v, N, sizeof *v, cmp_int);
        for (int i = 1; i < N; i++)
            sorted &= v[i - 1] <= v[i];
        free(v);
    }
    NL_CHECK(t, sorted, "qsort sorted a malloc'd array");

    char buf[96];
    snprintf(buf, sizeof buf, "%zu %lld %jd %hhd %#llx", (size_t)4096, -1234567890123LL, (intmax_t)-42,
             (signed char)-3, 0xfedcba9876543210ULL);
    NL_CHECK(t, strcmp(buf, "4096 -1234567890123 -42 -3 0xfedcba9876543210") == 0,
             "C99 and long long formats (%zu %lld %jd %hhd)");
}

/* newlib's convention: NULL and reent->_errno = ENOMEM; plain names set the
 * same field through __errno(). */
static void check_errno(struct nl_tally *t)
{
    struct _reent *r = _REENT;

    r->_errno = 0;
    void *p = _malloc_r(r, HUGE_SIZE);
    NL_CHECK(t, p == NULL && r->_errno == ENOMEM, "_malloc_r(_REENT, 2^62) -> NULL, _REENT->_errno == ENOMEM");

    errno = 0;
    p = malloc(HUGE_SIZE);
    NL_CHECK(t, p == NULL && errno == ENOMEM, "malloc(2^62) -> NULL, errno == ENOMEM");

    errno = 0;
    p = malloc(opaque(SIZE_MAX));
    NL_CHECK(t, p == NULL && errno == ENOMEM, "malloc(SIZE_MAX) -> NULL, errno == ENOMEM");

    r->_errno = 0;
    p = _calloc_r(r, opaque(SIZE_MAX / 2), 3);
    NL_CHECK(t, p == NULL && r->_errno == ENOMEM, "_calloc_r overflow -> NULL, _REENT->_errno == ENOMEM");

    errno = 0;
    p = calloc(opaque(SIZE_MAX / 2), 3);
    NL_CHECK(t, p == NULL && errno == ENOMEM, "calloc overflow -> NULL, errno == ENOMEM");

    char *keep = malloc(32);
    if (keep != NULL)
        strcpy(keep, "still here");
    r->_errno = 0;
    p = keep ? _realloc_r(r, keep, HUGE_SIZE) : NULL;
    NL_CHECK(t, keep != NULL && p == NULL && r->_errno == ENOMEM && strcmp(keep, "still here") == 0,
             "_realloc_r(p, 2^62) -> NULL, ENOMEM, old block intact");

    errno = 1234;
    free(keep);
    NL_CHECK(t, errno == 1234, "free leaves errno unchanged");
}

void nl_run_checks(struct nl_tally *t)
{
    check_stdout_buffer(t);
    check_strdup(t);
    check_float_format(t);
    check_asprintf(t);
    check_fmemopen(t);
    check_open_memstream(t);
    check_qsort_and_formats(t);
    check_errno(t);
    NL_CHECK(t, memshim_check() == 0, "memshim_check finds the heap healthy");
}

void nl_summary(const struct nl_tally *t)
{
    printf("%d passed, %d failed\n", t->passed, t->failed);
    fflush(stdout);
}
