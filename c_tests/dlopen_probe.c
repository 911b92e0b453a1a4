/* libmemshim.so loaded with dlopen(RTLD_LOCAL) beside glibc's malloc: every
 * call through memshim's entry points must stay inside memshim, even the
 * ones that call another entry point (realloc(p, 0) frees, reallocarray
 * reallocs, the newlib _r forms forward). Before the library bound its own
 * calls, realloc(p, 0) handed memshim's block to glibc's free (abort).
 * Exit 0 when every check holds; prints what failed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "memshim.h"

static int failed;
#define CHECK(c)                                                         \
    do {                                                                 \
        if (!(c)) {                                                      \
            fprintf(stderr, "dlopen_probe: %s:%d: %s\n", __FILE__, __LINE__, #c); \
            failed++;                                                    \
        }                                                                \
    } while (0)

int main(int argc, char **argv)
{
    const char *so = argc > 1 ? argv[1] : "target/release/libmemshim.so";
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen_probe: %s\n", dlerror());
        return 2;
    }
    void *(*m)(size_t) = (void *(*)(size_t))dlsym(h, "malloc");
    void (*f)(void *) = (void (*)(void *))dlsym(h, "free");
    void *(*r)(void *, size_t) = (void *(*)(void *, size_t))dlsym(h, "realloc");
    void *(*ra)(void *, size_t, size_t) = (void *(*)(void *, size_t, size_t))dlsym(h, "reallocarray");
    void *(*mr)(void *, size_t) = (void *(*)(void *, size_t))dlsym(h, "_malloc_r");
    void (*fr)(void *, void *) = (void (*)(void *, void *))dlsym(h, "_free_r");
    void *(*rr)(void *, void *, size_t) = (void *(*)(void *, void *, size_t))dlsym(h, "_realloc_r");
    void (*stats)(struct memshim_stats *) = (void (*)(struct memshim_stats *))dlsym(h, "memshim_get_stats");
    if (!m || !f || !r || !ra || !mr || !fr || !rr || !stats) {
        fprintf(stderr, "dlopen_probe: a symbol is missing\n");
        return 2;
    }
    struct memshim_stats before, after;
    stats(&before);
    /* A glibc block and a memshim block side by side: neither reaches the
     * other's free. */
    char *g = malloc(100);
    CHECK(r(m(100), 0) == NULL);
    CHECK(r(m(20000), 0) == NULL);
    char *p = ra(m(10), 3, 1000);
    CHECK(p != NULL);
    if (p)
        memset(p, 7, 3000);
    p = r(p, 100000);
    CHECK(p != NULL && p[2999] == 7);
    CHECK(r(p, 0) == NULL);
    void *q = mr(NULL, 64);
    q = rr(NULL, q, 4096);
    CHECK(q != NULL);
    fr(NULL, q);
    CHECK(rr(NULL, mr(NULL, 32), 0) == NULL);
    stats(&after);
    CHECK(after.live_allocations == before.live_allocations);
    CHECK(after.total_allocations > before.total_allocations);
    free(g);
    return failed ? 1 : 0;
}
