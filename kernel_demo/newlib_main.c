/* The newlib variant of the demo kernel (`make demo-newlib`): the same boot
   code, console and self-test as kmain.c, plus newlib's libc.a for printf,
   snprintf, strdup, qsort and stdio over COM1. memshim provides newlib's
   allocator; the shared newlib checks (newlib_tests/checks.c) prove that
   newlib's own allocations reach it, then the demo's self-test runs.
   Built with newlib's headers and SSE allowed (boot.S enables SSE; %f
   passes doubles in SSE registers). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <memshim.h>

#include "checks.h"
#include "console.h"
#include "platform.h"
#include "selftest.h"
#include "start.h"

/* The OS layer reports errors in the system errno (newlib_tests/nosys.c),
   which newlib's _r wrappers copy into the caller's struct _reent. */
#undef errno
extern int errno;

_Noreturn void kmain(uint32_t magic, const void *info);

/* ---- newlib's OS layer: the console for stdout and stderr; the rest
   fails in newlib_tests/nosys.c ---- */

_READ_WRITE_RETURN_TYPE write(int fd, const void *buf, size_t len)
{
    if (fd != STDOUT_FILENO && fd != STDERR_FILENO) {
        errno = EBADF;
        return -1;
    }
    console_write(buf, len);
    return (_READ_WRITE_RETURN_TYPE)len;
}

void _exit(int code)
{
    qemu_exit(code == 0);
}

_Noreturn void kmain(uint32_t magic, const void *info)
{
    struct selftest_env env;
    demo_start(" (newlib)", magic, info, &env);

    /* newlib's first printf comes here, with the heap ready. */
    struct nl_tally t = {0, 0};
    nl_run_checks(&t);
    fflush(stdout);

    unsigned failed = selftest_run(&env);
    NL_CHECK(&t, failed == 0, "the demo's self-test passed under newlib");
    nl_summary(&t);
    kprintf("memshim demo: %s\n", t.failed ? "FAIL" : "PASS");
    qemu_exit(t.failed == 0);
}
