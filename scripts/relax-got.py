#!/usr/bin/env python3
"""Resolves every GOT-relative relocation of a relocatable ELF object in place.

    scripts/relax-got.py OBJECT.o

memshim's own code is compiled for the static relocation model, but the
prebuilt `core` of x86_64-unknown-none is position-independent and reaches
some functions through the GOT (R_X86_64_GOTPCREL). A kernel linked with
such an object gets a linker-made .got, which a linker script that does not
place it leaves outside the loaded image: the first call through it jumps
to nowhere. This script does what the linker's own relaxation does, once,
for every such relocation against a symbol the object defines:

    call *S@GOTPCREL(%rip)   ff 15 <disp32>  ->  nop; call S   90 e8 <rel32>
    jmp  *S@GOTPCREL(%rip)   ff 25 <disp32>  ->  nop; jmp S    90 e9 <rel32>
    mov  S@GOTPCREL(%rip),%r REX 8b <modrm>  ->  lea S(%rip),%r REX 8d <modrm>

Offset and addend stay; the type becomes R_X86_64_PC32. Anything else (an
undefined symbol, another instruction) is an error, so the object leaves
with no GOT relocation at all or the build fails.
"""
import struct
import sys

R_X86_64_PC32 = 2
R_X86_64_GOTPCREL = 9
R_X86_64_GOTPCRELX = 41
R_X86_64_REX_GOTPCRELX = 42
GOT_TYPES = (R_X86_64_GOTPCREL, R_X86_64_GOTPCRELX, R_X86_64_REX_GOTPCRELX)
SHT_SYMTAB, SHT_RELA = 2, 4


def main(path):
    with open(path, "rb") as f:
        elf = bytearray(f.read())
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1 or struct.unpack_from("<H", elf, 16)[0] != 1:
        sys.exit(f"relax-got: {path}: not a little-endian ELF64 relocatable object")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", elf, shoff + i * shentsize) for i in range(shnum)]
    # (name, type, flags, addr, offset, size, link, info, addralign, entsize)
    relaxed = 0
    for rela in sections:
        if rela[1] != SHT_RELA:
            continue
        symtab, target = sections[rela[6]], sections[rela[7]]
        if symtab[1] != SHT_SYMTAB:
            sys.exit("relax-got: a relocation section without a symbol table")
        for at in range(rela[4], rela[4] + rela[5], 24):
            r_offset, r_info, _ = struct.unpack_from("<QQq", elf, at)
            sym, rtype = r_info >> 32, r_info & 0xFFFFFFFF
            if rtype not in GOT_TYPES:
                continue
            shndx, = struct.unpack_from("<H", elf, symtab[4] + sym * 24 + 6)
            if shndx == 0:
                sys.exit(f"relax-got: GOT relocation against undefined symbol #{sym} at {r_offset:#x}")
            if r_offset < 2 or r_offset + 4 > target[5]:
                sys.exit(f"relax-got: GOT relocation outside its section at {r_offset:#x}")
            op = target[4] + r_offset - 2  # the opcode and ModRM (or REX and opcode) before disp32
            if elf[op] == 0xFF and elf[op + 1] in (0x15, 0x25):  # call/jmp *disp32(%rip)
                elf[op : op + 2] = bytes([0x90, 0xE8 if elf[op + 1] == 0x15 else 0xE9])
            elif elf[op] == 0x8B and (elf[op + 1] & 0xC7) == 0x05 and r_offset >= 3 and elf[op - 1] & 0xF0 == 0x40:
                elf[op] = 0x8D  # REX mov disp32(%rip),%reg -> lea
            else:
                sys.exit(f"relax-got: unknown instruction {elf[op - 1:op + 2].hex()} at {r_offset:#x}")
            struct.pack_into("<Q", elf, at + 8, (sym << 32) | R_X86_64_PC32)
            relaxed += 1
    with open(path, "wb") as f:
        f.write(elf)
    print(f"relax-got: {path}: {relaxed} GOT relocations resolved to direct ones")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
