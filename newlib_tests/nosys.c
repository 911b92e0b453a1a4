/* The OS functions newlib's libc.a calls that the host program and the
 * newlib kernel share: fstat/isatty (the standard streams are a terminal),
 * and the ones neither supports, which fail cleanly with ENOSYS. newlib's
 * reentrant wrappers (_read_r, ...) copy the global `errno` below into the
 * caller's struct _reent, as libgloss does. `sbrk` is here too, failing: a
 * newlib program usually has one, so its newlib malloc *could* link, and
 * the tests prove it does not. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#undef errno
extern int errno;
int errno;

static int nosys(void)
{
    errno = ENOSYS;
    return -1;
}

/* The standard streams are a terminal as far as newlib is concerned:
   stdout is line-buffered, so a crash loses no finished line and, in the
   kernel, its lines and kprintf's direct console lines stay in order. */
int fstat(int fd, struct stat *st)
{
    if (fd < 0 || fd > 2) {
        errno = EBADF;
        return -1;
    }
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFCHR;
    return 0;
}

int isatty(int fd)
{
    return fd >= 0 && fd <= 2;
}

_READ_WRITE_RETURN_TYPE read(int fd, void *buf, size_t len)
{
    (void)fd, (void)buf, (void)len;
    return nosys();
}

int close(int fd)
{
    (void)fd;
    return nosys();
}

off_t lseek(int fd, off_t off, int whence)
{
    (void)fd, (void)off, (void)whence;
    return nosys();
}

int open(const char *path, int flags, ...)
{
    (void)path, (void)flags;
    return nosys();
}

int kill(pid_t pid, int sig)
{
    (void)pid, (void)sig;
    return nosys();
}

pid_t getpid(void)
{
    return 1;
}

void *sbrk(ptrdiff_t incr)
{
    (void)incr;
    errno = ENOMEM;
    return (void *)-1;
}
