/* Reads (and prints) what the boot loader handed over: its name and the
   memory map, from Multiboot 1 or Multiboot 2 boot information. The
   kernel only reports it; memshim_init_multiboot parses it for real. */
#ifndef DEMO_BOOTINFO_H
#define DEMO_BOOTINFO_H

#include <stdint.h>

struct boot_summary {
    const char *protocol;  /* "Multiboot 1", "Multiboot 2" or NULL (bad magic) */
    const char *loader;    /* the boot loader's name, or "?" */
    unsigned regions;      /* memory map entries */
    uint64_t usable_bytes; /* sum of the available regions */
    uint64_t ram_top;      /* end of the highest available region */
};

/* Prints the loader and one line per memory map entry; fills *out. */
void bootinfo_print(uint32_t magic, const void *info, struct boot_summary *out);

#endif
