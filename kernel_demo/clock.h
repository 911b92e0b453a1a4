/* Time for the demo: the TSC, calibrated once against the PIT. */
#ifndef DEMO_CLOCK_H
#define DEMO_CLOCK_H

#include <stdint.h>

/* Measures the TSC against 10 ms of PIT channel 2 (BSP, interrupts off).
   Returns TSC ticks per microsecond (also kept for the functions below). */
uint64_t clock_init(void);

/* TSC ticks per microsecond (1000 before clock_init). */
uint64_t clock_tsc_per_us(void);

/* Busy-waits at least `us` microseconds. */
void clock_delay_us(uint64_t us);

/* TSC ticks to microseconds. */
uint64_t clock_us(uint64_t ticks);

#endif
