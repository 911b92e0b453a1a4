/* The demo's self-test of memshim's C API, one line per check. Kernel
   variants (plain, newlib) call it after memshim_init_multiboot. */
#ifndef DEMO_SELFTEST_H
#define DEMO_SELFTEST_H

#include <stddef.h>
#include <stdint.h>

struct selftest_env {
    int init_rc;           /* what memshim_init_multiboot returned */
    uint64_t phys_limit;   /* the limit given to memshim */
    uint64_t ram_top;      /* end of the highest available RAM (boot map) */
    uint64_t usable_bytes; /* available RAM in the boot map */
};

/* Runs every check; returns how many failed. */
unsigned selftest_run(const struct selftest_env *env);

/* memshim's panic handler for the demo. A report the self-test provoked is
   recorded and the handler returns (memshim then leaves the heap as it
   was); any other report prints the message and fails the run. */
void selftest_panic_handler(const char *msg, size_t len, void *ctx);

/* Prints memshim's counters on one line. */
void selftest_print_stats(const char *when);

#endif
