/* The demo's self-test of memshim's C API, one line per check. Kernel
   variants (plain, newlib) call it after memshim_init_multiboot. */
#ifndef DEMO_SELFTEST_H
#define DEMO_SELFTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "console.h"

/* A check: true when it passed. Either way it may leave a reason or a
   detail in selftest_why, printed on its line. */
struct selftest_check {
    const char *name;
    bool (*run)(void);
};

extern char selftest_why[200];
#define SELFTEST_FAIL(...) (ksnprintf(selftest_why, sizeof selftest_why, __VA_ARGS__), false)
#define SELFTEST_DETAIL(...) ksnprintf(selftest_why, sizeof selftest_why, __VA_ARGS__)

struct selftest_env {
    int init_rc;           /* what memshim_init_multiboot returned */
    uint64_t phys_limit;   /* the limit given to memshim */
    uint64_t ram_top;      /* end of the highest available RAM (boot map) */
    uint64_t usable_bytes; /* available RAM in the boot map */
    /* With several CPUs: checks that take the single-CPU "cycles per
       operation" check's place (they register the CPUs with memshim,
       which must happen before the re-entry check). */
    const struct selftest_check *cpu_checks;
    unsigned cpu_check_count;
};

/* Runs every check; returns how many failed. */
unsigned selftest_run(const struct selftest_env *env);

/* The "cycles per operation" measurements, on the calling CPU: cycles
   (rdtsc) per malloc+free pair of `n` bytes over `reps` pairs, and per
   operation of a random small-heavy workload of `ops` operations over the
   512 slots of `ws` (all NULL before and after), drawing from *rng. */
uint64_t selftest_pair_cycles(size_t n, unsigned reps);
uint64_t selftest_random_cycles(unsigned ops, uint64_t *rng, void *ws[512]);

/* memshim's panic handler for the demo. A report the self-test provoked is
   recorded and the handler returns (memshim then leaves the heap as it
   was); any other report prints the message and fails the run. */
void selftest_panic_handler(const char *msg, size_t len, void *ctx);

/* Prints memshim's counters on one line. */
void selftest_print_stats(const char *when);

#endif
