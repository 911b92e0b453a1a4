/* The demo's checks with several CPUs at once. */
#ifndef DEMO_SMPTEST_H
#define DEMO_SMPTEST_H

#include "selftest.h"

/* Calibrates the clocks, looks for the CPUs (ACPI MADT) and prints what it
   found. With more than one, points env->cpu_checks at the checks that
   start them and run memshim on all of them at once (they take the
   single-CPU "cycles per operation" check's place in selftest_run). */
void smptest_prepare(struct selftest_env *env);

#endif
