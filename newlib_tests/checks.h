/* The newlib proofs shared by the host program (newlib_tests/host_main.c)
 * and the newlib kernel (kernel_demo/newlib_main.c): newlib's own internal
 * allocations reach memshim, and failures set errno through newlib's
 * reentrancy structure. Output goes through newlib's printf. */
#ifndef NEWLIB_CHECKS_H
#define NEWLIB_CHECKS_H

struct nl_tally {
    int passed;
    int failed;
};

/* Records one check and prints "ok"/"FAIL" with its name. */
void nl_check(struct nl_tally *t, int ok, const char *name, const char *file, int line);
#define NL_CHECK(t, cond, name) nl_check((t), (cond) != 0, (name), __FILE__, __LINE__)

/* Runs every shared check. Must run before anything else uses stdout or
 * %f: the first printf and the first %f are the allocations it measures. */
void nl_run_checks(struct nl_tally *t);

/* Prints the closing "N passed, N failed" line and flushes stdout. */
void nl_summary(const struct nl_tally *t);

#endif
