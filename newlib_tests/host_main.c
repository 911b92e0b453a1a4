/* A plain Linux process built on newlib's libc.a and memshim's freestanding
 * archive, with no glibc: our own _start and a few raw system calls. It is
 * a newlib user-space program as a hobby OS would run it (ring 3, so
 * memshim must never execute cli): memory comes from memshim_set_page_hooks
 * over mmap, locking from memshim_set_lock_hooks. It runs the shared newlib
 * checks, then checks that both hooks were used. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "checks.h"
#include "memshim.h"

/* The OS layer reports errors in the system errno (newlib_tests/nosys.c),
 * which newlib's _r wrappers copy into the caller's struct _reent. */
#undef errno
extern int errno;

enum { SYS_write = 1, SYS_mmap = 9, SYS_munmap = 11, SYS_exit_group = 231 };
enum { PAGE = 4096 };

static long sys3(long nr, long a, long b, long c)
{
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return ret;
}

static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

/* ---- the OS layer newlib calls (the rest fail in nosys.c) ---- */

_READ_WRITE_RETURN_TYPE write(int fd, const void *buf, size_t len)
{
    long r = sys3(SYS_write, fd, (long)buf, (long)len);
    if (r < 0) {
        errno = (int)-r;
        return -1;
    }
    return (_READ_WRITE_RETURN_TYPE)r;
}

void _exit(int code)
{
    for (;;)
        sys3(SYS_exit_group, code, 0, 0);
}

/* ---- memshim's hooks: what a user-space newlib program installs ---- */

struct hook_counts {
    unsigned long page_allocs, page_frees, locks, unlocks;
    int held;
};
static struct hook_counts hooks;

/* Called with memshim's lock held: must not allocate. */
static void *alloc_pages(size_t pages, void *ctx)
{
    struct hook_counts *h = ctx;
    if (pages == 0 || pages > SIZE_MAX / PAGE)
        return NULL;
    long p = sys6(SYS_mmap, 0, (long)(pages * PAGE), 3 /* RW */, 0x22 /* PRIVATE|ANON */, -1, 0);
    if (p < 0 && p > -4096)
        return NULL;
    h->page_allocs++;
    return (void *)p;
}

static void free_pages(void *p, size_t pages, void *ctx)
{
    struct hook_counts *h = ctx;
    h->page_frees++;
    sys3(SYS_munmap, (long)p, (long)(pages * PAGE), 0);
}

/* A user-space lock: an atomic flag, no cli (ring 3 may not disable
 * interrupts). A threaded program would use its futex or pthread mutex. */
static void lock(void *ctx)
{
    struct hook_counts *h = ctx;
    while (__atomic_exchange_n(&h->held, 1, __ATOMIC_ACQUIRE))
        __builtin_ia32_pause();
    h->locks++;
}

static void unlock(void *ctx)
{
    struct hook_counts *h = ctx;
    h->unlocks++;
    __atomic_store_n(&h->held, 0, __ATOMIC_RELEASE);
}

static void on_panic(const char *msg, size_t len, void *ctx)
{
    (void)ctx;
    write(2, "memshim: ", 9);
    write(2, msg, len);
    write(2, "\n", 1);
    _exit(70);
}

/* More than the heap has free, so it must grow through the hook. */
static void check_page_hooks(struct nl_tally *t)
{
    struct memshim_stats a, b;
    unsigned long before = hooks.page_allocs;
    memshim_get_stats(&a);
    size_t big = (size_t)a.heap_bytes_free + (1u << 20);
    char *p = malloc(big);
    memshim_get_stats(&b);
    if (p != NULL) {
        p[0] = 1;
        p[big - 1] = 2;
    }
    printf("  page hooks: malloc(%zu) -> %lu mmap calls, heap_bytes_mapped %llu -> %llu\n", big,
           hooks.page_allocs - before, (unsigned long long)a.heap_bytes_mapped,
           (unsigned long long)b.heap_bytes_mapped);
    NL_CHECK(t, p != NULL && hooks.page_allocs > before && b.heap_bytes_mapped >= a.heap_bytes_mapped + big,
             "a malloc larger than the heap's free space grew it through the page hook (mmap)");
    unsigned long frees = hooks.page_frees;
    free(p);
    printf("  page hooks: its free -> %lu munmap calls\n", hooks.page_frees - frees);
}

static void check_lock_hooks(struct nl_tally *t)
{
    printf("  lock hooks: %lu locks, %lu unlocks\n", hooks.locks, hooks.unlocks);
    NL_CHECK(t, hooks.locks > 0 && hooks.locks == hooks.unlocks && !hooks.held,
             "every memshim call took and released the user-space lock hook");
}

static int host_main(void)
{
    memshim_set_panic_handler(on_panic, NULL);
    memshim_set_lock_hooks(lock, unlock, &hooks);
    memshim_set_page_hooks(alloc_pages, free_pages, &hooks);

    struct nl_tally t = {0, 0};
    nl_run_checks(&t);
    check_page_hooks(&t);
    check_lock_hooks(&t);
    nl_summary(&t);
    return t.failed == 0 ? 0 : 1;
}

/* Linux starts us with argc at the stack pointer; nothing here needs it. */
__attribute__((noreturn, used)) static void start_c(void)
{
    exit(host_main());
}

__asm__(".globl _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  and $-16, %rsp\n"
        "  call start_c\n"
        "  hlt\n");
