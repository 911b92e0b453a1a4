/* Run under LD_PRELOAD=target/release/libmemshim.so (c_tests/preload.sh): an
 * ordinary program, built without memshim, that proves the interposition.
 * Exits 0 only if malloc & co. resolve to libmemshim.so and the blocks glibc
 * itself makes (strdup) are counted by memshim and sized by its
 * malloc_usable_size. Without the preload it must exit non-zero. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMSHIM_NO_STD_DECLS 1
#include "memshim.h" /* struct memshim_stats only; the functions come from dlsym */

static int from_memshim(const char *name, void *fn)
{
    Dl_info info;
    if (!dladdr(fn, &info) || !info.dli_fname || !strstr(info.dli_fname, "libmemshim")) {
        printf("%s comes from %s\n", name, info.dli_fname ? info.dli_fname : "?");
        return 0;
    }
    return 1;
}

int main(void)
{
    int ok = from_memshim("malloc", (void *)malloc) & from_memshim("free", (void *)free) &
             from_memshim("realloc", (void *)realloc) & from_memshim("calloc", (void *)calloc) &
             from_memshim("malloc_usable_size", (void *)malloc_usable_size) &
             from_memshim("posix_memalign", (void *)posix_memalign);
    void (*get_stats)(struct memshim_stats *) = (void (*)(struct memshim_stats *))dlsym(RTLD_DEFAULT, "memshim_get_stats");
    size_t (*check)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "memshim_check");
    if (!get_stats || !check) {
        printf("memshim_get_stats/memshim_check not found\n");
        return 1;
    }
    struct memshim_stats a, b;
    get_stats(&a);
    char *s = strdup("made by glibc's strdup");
    get_stats(&b);
    if (b.live_allocations != a.live_allocations + 1) {
        printf("strdup did not allocate from memshim (live %llu -> %llu)\n",
               (unsigned long long)a.live_allocations, (unsigned long long)b.live_allocations);
        ok = 0;
    }
    size_t u = malloc_usable_size(s);
    if (u < strlen(s) + 1 || ((uintptr_t)s & 15) != 0) {
        printf("malloc_usable_size(strdup result) = %zu\n", u);
        ok = 0;
    }
    free(s);
    if (check() != 0) {
        printf("memshim_check() != 0\n");
        ok = 0;
    }
    printf("preload probe: %s (usable size of a %zu-byte strdup: %zu)\n", ok ? "memshim interposed" : "NOT interposed",
           strlen("made by glibc's strdup") + 1, u);
    return ok ? 0 : 1;
}
