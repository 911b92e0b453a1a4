#include "acpi.h"

#include <stdbool.h>

#include "console.h"

#define SDT_HEADER_BYTES 36
#define MADT_ENTRIES_AT 44
#define MADT_LOCAL_APIC 0
#define MADT_LAPIC_OVERRIDE 5
#define LAPIC_ENABLED 1u
#define MAX_TABLE_BYTES (1u << 16)

/* Physical memory through the identity map. The empty asm hides the
   address from the compiler, which otherwise takes a constant below 4 KiB
   (the BIOS data area) for an offset from NULL. */
static const uint8_t *phys(uint64_t addr)
{
    __asm__("" : "+r"(addr));
    return (const uint8_t *)(uintptr_t)addr;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static bool sums_to_zero(const uint8_t *p, size_t n)
{
    uint8_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum == 0;
}

static bool same(const uint8_t *p, const char *sig, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)sig[i])
            return false;
    return true;
}

/* The RSDP on a 16-byte boundary in [from, to), or NULL. */
static const uint8_t *scan_rsdp(uint64_t from, uint64_t to)
{
    for (uint64_t a = from; a + 20 <= to; a += 16)
        if (same(phys(a), "RSD PTR ", 8) && sums_to_zero(phys(a), 20))
            return phys(a);
    return NULL;
}

/* A table at `addr` with signature `sig`, its checksum and length valid
   and wholly below `limit`; NULL otherwise. */
static const uint8_t *table(uint64_t addr, const char *sig, uint64_t limit)
{
    if (!addr || addr > limit || limit - addr < SDT_HEADER_BYTES)
        return NULL;
    const uint8_t *t = phys(addr);
    uint32_t length = rd32(t + 4);
    if (!same(t, sig, 4) || length < SDT_HEADER_BYTES || length > MAX_TABLE_BYTES ||
        length > limit - addr || !sums_to_zero(t, length))
        return NULL;
    return t;
}

static const uint8_t *find_madt(const uint8_t *rsdp, uint64_t limit)
{
    /* Revision 2+: the XSDT's 64-bit entries; else the RSDT's 32-bit ones. */
    const uint8_t *root = NULL;
    unsigned width = 4;
    if (rsdp[15] >= 2 && rd32(rsdp + 20) >= 36 && rd32(rsdp + 20) <= 64 &&
        sums_to_zero(rsdp, rd32(rsdp + 20))) {
        root = table(rd64(rsdp + 24), "XSDT", limit);
        width = 8;
    }
    if (!root) {
        root = table(rd32(rsdp + 16), "RSDT", limit);
        width = 4;
    }
    if (!root)
        return NULL;
    uint32_t length = rd32(root + 4);
    for (uint32_t off = SDT_HEADER_BYTES; off + width <= length; off += width) {
        uint64_t addr = width == 8 ? rd64(root + off) : rd32(root + off);
        const uint8_t *t = table(addr, "APIC", limit);
        if (t)
            return t;
    }
    return NULL;
}

int acpi_find_cpus(struct acpi_cpus *out, uint64_t mapped_limit, char *why, size_t len)
{
    *out = (struct acpi_cpus){0};
    /* The EBDA's segment is the BIOS data area's word at 0x40e. */
    uint64_t ebda = (uint64_t)(phys(0x40e)[0] | phys(0x40e)[1] << 8) << 4;
    const uint8_t *rsdp = NULL;
    if (ebda >= 0x80000 && ebda < 0xa0000)
        rsdp = scan_rsdp(ebda, ebda + 1024);
    if (!rsdp)
        rsdp = scan_rsdp(0xe0000, 0x100000);
    if (!rsdp) {
        ksnprintf(why, len, "no ACPI RSDP in the EBDA or at 0xe0000-0xfffff");
        return -1;
    }
    const uint8_t *madt = find_madt(rsdp, mapped_limit);
    if (!madt) {
        ksnprintf(why, len, "no valid MADT (\"APIC\") table from the RSDP at %p", (const void *)rsdp);
        return -1;
    }
    uint32_t length = rd32(madt + 4);
    if (length < MADT_ENTRIES_AT) {
        ksnprintf(why, len, "MADT of %u bytes is too short", length);
        return -1;
    }
    out->madt = (uint64_t)(uintptr_t)madt;
    out->lapic_base = rd32(madt + 36);
    for (uint32_t off = MADT_ENTRIES_AT; off + 2 <= length;) {
        uint8_t type = madt[off], size = madt[off + 1];
        if (size < 2 || size > length - off)
            break;
        if (type == MADT_LOCAL_APIC && size >= 8 && (rd32(madt + off + 4) & LAPIC_ENABLED)) {
            if (out->count < ACPI_MAX_CPUS)
                out->apic_id[out->count++] = madt[off + 3];
            else
                out->skipped++;
        } else if (type == MADT_LAPIC_OVERRIDE && size >= 12) {
            out->lapic_base = rd64(madt + off + 4);
        }
        off += size;
    }
    if (out->count == 0) {
        ksnprintf(why, len, "the MADT lists no enabled CPU");
        return -1;
    }
    if (out->lapic_base == 0 || out->lapic_base % 4096 || out->lapic_base >= mapped_limit) {
        ksnprintf(why, len, "local APIC address 0x%lx is not usable", out->lapic_base);
        return -1;
    }
    return 0;
}
