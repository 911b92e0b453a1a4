#include "bootinfo.h"

#include <stddef.h>

#include "console.h"

#define MB1_BOOT_MAGIC 0x2BADB002u
#define MB2_BOOT_MAGIC 0x36D76289u
#define MB1_FLAG_MMAP (1u << 6)
#define MB1_FLAG_LOADER_NAME (1u << 9)
#define MB2_TAG_END 0
#define MB2_TAG_LOADER_NAME 2
#define MB2_TAG_MMAP 6
/* Bounds for walking untrusted boot data (the real parser is memshim's). */
#define MAX_INFO_BYTES (1u << 20)

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static const char *type_name(uint32_t type)
{
    static const char *const names[] = {"?", "available", "reserved", "ACPI reclaimable",
                                        "ACPI NVS", "bad RAM"};
    return type < sizeof names / sizeof names[0] ? names[type] : "reserved";
}

static void region(struct boot_summary *out, uint64_t base, uint64_t len, uint32_t type)
{
    kprintf("  %016lx-%016lx %8lu KiB  %s\n", base, len ? base + len - 1 : base, len >> 10,
            type_name(type));
    out->regions++;
    if (type == 1 && len) {
        out->usable_bytes += len;
        if (base + len > out->ram_top)
            out->ram_top = base + len;
    }
}

static void read_mb1(const unsigned char *info, struct boot_summary *out)
{
    uint32_t flags = rd32(info);
    if (flags & MB1_FLAG_LOADER_NAME)
        out->loader = (const char *)(uintptr_t)rd32(info + 64);
    kprintf("boot: %s via %s, memory map:\n", out->protocol, out->loader);
    if (!(flags & MB1_FLAG_MMAP)) {
        kprintf("  (no memory map)\n");
        return;
    }
    uint32_t len = rd32(info + 44);
    const unsigned char *entry = (const unsigned char *)(uintptr_t)rd32(info + 48);
    if (len > MAX_INFO_BYTES)
        len = MAX_INFO_BYTES;
    /* Each entry: size (excluding itself), base, length, type. */
    for (uint32_t off = 0; off + 24 <= len;) {
        uint32_t size = rd32(entry + off);
        if (size < 20)
            break;
        region(out, rd64(entry + off + 4), rd64(entry + off + 12), rd32(entry + off + 20));
        off += size + 4;
    }
}

static void read_mb2_mmap(const unsigned char *tag, uint32_t tag_size, struct boot_summary *out)
{
    uint32_t entry_size = rd32(tag + 8);
    if (entry_size < 24)
        return;
    for (uint32_t off = 16; off + 24 <= tag_size; off += entry_size)
        region(out, rd64(tag + off), rd64(tag + off + 8), rd32(tag + off + 16));
}

static void read_mb2(const unsigned char *info, struct boot_summary *out)
{
    uint32_t total = rd32(info);
    if (total > MAX_INFO_BYTES)
        total = MAX_INFO_BYTES;
    const unsigned char *mmap = NULL;
    uint32_t mmap_size = 0;
    for (uint32_t off = 8; off + 8 <= total;) {
        uint32_t type = rd32(info + off), size = rd32(info + off + 4);
        if (type == MB2_TAG_END || size < 8 || size > total - off)
            break;
        if (type == MB2_TAG_LOADER_NAME)
            out->loader = (const char *)(info + off + 8);
        if (type == MB2_TAG_MMAP) {
            mmap = info + off;
            mmap_size = size;
        }
        off += (size + 7) & ~7u;
    }
    kprintf("boot: %s via %s, memory map:\n", out->protocol, out->loader);
    if (mmap)
        read_mb2_mmap(mmap, mmap_size, out);
    else
        kprintf("  (no memory map)\n");
}

void bootinfo_print(uint32_t magic, const void *info, struct boot_summary *out)
{
    *out = (struct boot_summary){NULL, "?", 0, 0, 0};
    if (magic == MB1_BOOT_MAGIC) {
        out->protocol = "Multiboot 1";
        read_mb1(info, out);
    } else if (magic == MB2_BOOT_MAGIC) {
        out->protocol = "Multiboot 2";
        read_mb2(info, out);
    } else {
        kprintf("boot: unknown boot magic 0x%x\n", magic);
    }
}
