/* The demo's console: COM1 and a small printf. Every byte the kernel prints
   goes through console_write, so a variant can send it elsewhere. One CPU
   at a time prints (a lock around each call); a CPU that is already
   printing — an exception or panic report in the middle of a line — goes
   ahead rather than wait for itself. */
#ifndef DEMO_CONSOLE_H
#define DEMO_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

void console_init(void);
void console_write(const char *text, size_t len);

/* printf subset: %d %i %u %x %p %s %c %%, the l/ll/z length modifiers,
   the '-' and '0' flags, a width, and %.*s. */
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same into buf (always NUL-terminated when size > 0); returns the
   length the full text would have. */
size_t ksnprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
