/* Finding the CPUs: the ACPI MADT (the table QEMU's firmware provides). */
#ifndef DEMO_ACPI_H
#define DEMO_ACPI_H

#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 16

struct acpi_cpus {
    unsigned count;                  /* enabled CPUs, at most ACPI_MAX_CPUS */
    unsigned skipped;                /* enabled CPUs beyond that */
    uint8_t apic_id[ACPI_MAX_CPUS];  /* in MADT order */
    uint64_t lapic_base;             /* physical address of the local APICs */
    uint64_t madt;                   /* physical address of the table */
};

/* Looks for the RSDP (EBDA, then the BIOS area 0xe0000-0xfffff), follows
   the XSDT or RSDT to the MADT and reads its processor entries. The tables
   are firmware data: checksums and lengths are checked, nothing past a
   table's end is read, and every table must lie below `mapped_limit`.
   Returns 0, or -1 with the reason in `why`. */
int acpi_find_cpus(struct acpi_cpus *out, uint64_t mapped_limit, char *why, size_t len);

#endif
