#!/usr/bin/env python3
"""Writes the seed inputs in fuzz/seeds/<target>/ (run from anywhere).

Each seed is a well-formed case in the target's input layout (see the
decode functions in fuzz_targets/*.rs), so the fuzzer starts from boot
information that initialises the frame manager and from heap action
sequences that reach every action.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def mb_prefix(mode, limit_byte=0, ks=0x100000, klen=0x80000, struct_seed=0, image_page=0):
    return struct.pack("<BBIIIH", mode, limit_byte, ks, klen, struct_seed, image_page)


def mb1(image_base, in_ram):
    mmap = b"".join(struct.pack("<IQQI", 20, b, l, t) for b, l, t in [
        (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2),
        (0x100000, 0x300000, 1), (0x100000000, 0x10000000, 1)])
    image = bytearray(0xA00)
    image[0x100:0x100 + len(mmap)] = mmap
    image[0x400:0x410] = struct.pack("<IIII", 0x200000 + image_base, 0x210000 + image_base, image_base + 0x900, 0)
    image[0x800:0x80E] = b"root=/dev/sda\0"
    image[0x900:0x907] = b"initrd\0"
    flags = 1 | 4 | 8 | 64
    head = struct.pack("<IIIIIIIIIIIII", flags, 639, 3 * 1024, 0, image_base + 0x800, 1,
                       image_base + 0x400, 0, 0, 0, 0, len(mmap), image_base + 0x100)
    mode = 0 | (8 if in_ram else 0)
    return mb_prefix(mode, struct_seed=0x1000, image_page=image_base // 4096) + head + bytes(image)


def tag(ty, body):
    t = struct.pack("<II", ty, 8 + len(body)) + body
    return t + b"\0" * (-len(t) % 8)


def mb2(in_ram):
    entries = b"".join(struct.pack("<QQII", b, l, t, 0) for b, l, t in [
        (0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0x100000, 0x300000, 1), (0x100000000, 0x8000000, 1)])
    tags = (tag(1, b"console=ttyS0\0") + tag(3, struct.pack("<II", 0x200000, 0x220000) + b"mod\0")
            + tag(4, struct.pack("<II", 639, 3 * 1024)) + tag(6, struct.pack("<II", 24, 0) + entries)
            + tag(0, b""))
    body = struct.pack("<II", 8 + len(tags), 0) + tags
    mode = 3 | (8 if in_ram else 0)
    return mb_prefix(mode, struct_seed=0x180000) + body


def ranges():
    rs = [(0x100000, 0x300000), (0x80000000, 0x1000000), (0x200000, 0x10000)]
    return mb_prefix(6, ks=0x300000, klen=0x10000) + b"".join(struct.pack("<QQ", b, l) for b, l in rs)


write("multiboot", "mb1_low", mb1(0, False))
write("multiboot", "mb1_ram_high", mb1(0x200000, True))
write("multiboot", "mb2", mb2(False))
write("multiboot", "mb2_ram", mb2(True))
write("multiboot", "ranges", ranges())

# heap_actions: config byte (budget, kind), then actions (opcode % 16, operands).
acts = bytearray([0x41])                      # 2 MiB budget, Mmap spans
acts += bytes([13]) + struct.pack("<II", 64, 200000)   # add a region
for i in range(12):
    acts += bytes([i % 4, 0x40 | i, i % 8])   # allocs of various sizes/alignments
acts += bytes([4, 3, 0x90, 0x10, 5, 1, 0x05])  # reallocs grow / shrink
acts += bytes([6, 2, 9, 1, 10, 0, 1, 11, 1, 0x10, 0, 0, 12, 0, 1, 12, 1, 2])
acts += bytes([14, 1, 15, 0x21, 0, 0xc0, 0x00, 0x10, 7, 5, 8, 6])
write("heap_actions", "mixed", bytes(acts))
