/* Boot-time set-up shared by the demo kernel's variants. */
#ifndef DEMO_START_H
#define DEMO_START_H

#include <stdint.h>

#include "selftest.h"

/* Starts the console, installs the demo's panic handler, prints the boot
   memory map, calls memshim_init_multiboot and fills *env for
   selftest_run. `variant` is appended to the banner ("" or " (newlib)"). */
void demo_start(const char *variant, uint32_t magic, const void *info, struct selftest_env *env);

#endif
