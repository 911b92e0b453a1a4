#include "console.h"

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"
#include "smp.h"

#define COM1 0x3f8
#define LSR_THR_EMPTY 0x20

void console_init(void)
{
    outb(COM1 + 1, 0x00); /* no interrupts: the kernel polls */
    outb(COM1 + 3, 0x80); /* DLAB on: set the divisor */
    outb(COM1 + 0, 0x01); /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03); /* 8N1 */
    outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
    outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void serial_putc(char c)
{
    while (!(inb(COM1 + 5) & LSR_THR_EMPTY))
        ;
    outb(COM1, (uint8_t)c);
}

static void serial_write(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        serial_putc(text[i]);
}

/* The CPU printing (its number + 1), or 0; and how deep its calls nest. */
static volatile uint32_t printer;
static unsigned depth;

static void console_lock(void)
{
    uint32_t me = this_cpu()->number + 1;
    if (__atomic_load_n(&printer, __ATOMIC_RELAXED) != me) {
        uint32_t free_ = 0;
        while (!__atomic_compare_exchange_n(&printer, &free_, me, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
            free_ = 0;
            cpu_relax();
        }
    }
    depth++;
}

static void console_unlock(void)
{
    if (--depth == 0)
        __atomic_store_n(&printer, 0, __ATOMIC_RELEASE);
}

void console_write(const char *text, size_t len)
{
    console_lock();
    serial_write(text, len);
    console_unlock();
}

/* Where formatted text goes: a buffer (snprintf) or the console. */
struct sink {
    char *buf;
    size_t size;
    size_t len;
};

static void emit(struct sink *s, const char *text, size_t n)
{
    if (!s->buf) {
        serial_write(text, n);
    } else {
        for (size_t i = 0; i < n; i++)
            if (s->len + i + 1 < s->size)
                s->buf[s->len + i] = text[i];
    }
    s->len += n;
}

static void pad(struct sink *s, char c, int n)
{
    for (; n > 0; n--)
        emit(s, &c, 1);
}

struct spec {
    bool left, zero;
    int width;
};

static void emit_padded(struct sink *s, const struct spec *sp, const char *text, size_t n)
{
    int fill = sp->width > (int)n ? sp->width - (int)n : 0;
    if (!sp->left)
        pad(s, sp->zero ? '0' : ' ', fill);
    emit(s, text, n);
    if (sp->left)
        pad(s, ' ', fill);
}

static void emit_number(struct sink *s, const struct spec *sp, unsigned long long v, unsigned base,
                        bool negative, const char *prefix)
{
    char digits[24 + 2];
    size_t i = sizeof digits;
    do {
        digits[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative)
        digits[--i] = '-';
    for (size_t p = 0; prefix[p]; p++)
        emit(s, &prefix[p], 1);
    emit_padded(s, sp, digits + i, sizeof digits - i);
}

static size_t cstrlen(const char *p)
{
    size_t n = 0;
    while (p[n])
        n++;
    return n;
}

static void vformat(struct sink *s, const char *fmt, va_list ap)
{
    while (*fmt) {
        if (*fmt != '%') {
            const char *start = fmt;
            while (*fmt && *fmt != '%')
                fmt++;
            emit(s, start, (size_t)(fmt - start));
            continue;
        }
        fmt++;
        struct spec sp = {false, false, 0};
        for (;; fmt++) {
            if (*fmt == '-')
                sp.left = true;
            else if (*fmt == '0')
                sp.zero = true;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            sp.width = sp.width * 10 + (*fmt++ - '0');
        int precision = -1;
        if (fmt[0] == '.' && fmt[1] == '*') {
            precision = va_arg(ap, int);
            fmt += 2;
        }
        int longs = 0;
        bool size_t_arg = false;
        for (;; fmt++) {
            if (*fmt == 'l')
                longs++;
            else if (*fmt == 'z')
                size_t_arg = true;
            else
                break;
        }
        char conv = *fmt ? *fmt++ : '%';
        switch (conv) {
        case 'd':
        case 'i': {
            long long v = size_t_arg ? (long long)va_arg(ap, long)
                          : longs    ? va_arg(ap, long long)
                                     : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
            emit_number(s, &sp, mag, 10, v < 0, "");
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = size_t_arg ? va_arg(ap, size_t)
                                   : longs    ? va_arg(ap, unsigned long long)
                                              : va_arg(ap, unsigned int);
            emit_number(s, &sp, v, conv == 'x' ? 16 : 10, false, "");
            break;
        }
        case 'p':
            emit_number(s, &sp, (uintptr_t)va_arg(ap, void *), 16, false, "0x");
            break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            size_t n = cstrlen(str);
            if (precision >= 0 && (size_t)precision < n)
                n = (size_t)precision;
            emit_padded(s, &sp, str, n);
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            emit_padded(s, &sp, &c, 1);
            break;
        }
        default:
            emit(s, &conv, 1);
        }
    }
}

void kprintf(const char *fmt, ...)
{
    struct sink s = {0, 0, 0};
    va_list ap;
    va_start(ap, fmt);
    console_lock();
    vformat(&s, fmt, ap);
    console_unlock();
    va_end(ap);
}

size_t kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = {buf, size, 0};
    vformat(&s, fmt, ap);
    if (size)
        buf[s.len < size ? s.len : size - 1] = '\0';
    return s.len;
}

size_t ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = kvsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
