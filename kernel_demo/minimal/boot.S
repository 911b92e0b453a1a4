/*
 * The smallest boot path a newcomer writes for a kernel that links memshim:
 * a Multiboot 1 header with its address fields (QEMU's -kernel loader needs
 * them for a 64-bit ELF file), a 32-bit entry, 1 GiB identity-mapped with
 * 2 MiB pages, long mode, then kmain(magic, info). No IDT, on purpose: a
 * CPU exception here is a silent triple fault (QEMU -no-reboot exits 0);
 * run QEMU with `-d int` to see it.
 *
 * With -DHIGHER_HALF the kernel is linked at KERNEL_VMA + 1 MiB
 * (minimal-high.ld) and loaded at 1 MiB: the same 1 GiB is also mapped at
 * KERNEL_VMA, which is then the kernel's direct map (phys_offset).
 */
#ifdef HIGHER_HALF
#define KERNEL_VMA 0xffffffff80000000
#else
#define KERNEL_VMA 0
#endif
#define PHYS(sym) ((sym) - KERNEL_VMA)
#define MB1_HEADER_MAGIC 0x1BADB002
#define MB1_HEADER_FLAGS 0x00010003 /* page-aligned modules, memory map, address fields */

    .section .multiboot, "a"
    .balign 4
mb1_header:
    .long MB1_HEADER_MAGIC
    .long MB1_HEADER_FLAGS
    .long 0x100000000 - (MB1_HEADER_MAGIC + MB1_HEADER_FLAGS)
    .long PHYS(mb1_header)   /* header_addr (physical, like all four) */
    .long PHYS(kernel_start) /* load_addr: the script's first byte */
    .long PHYS(load_end)     /* load_end_addr: the end of .data */
    .long PHYS(bss_end)      /* bss_end_addr */
    .long PHYS(_start)       /* entry_addr */

    .text
    .code32
    .globl _start
_start:
    cli
    mov %eax, %edi      /* the Multiboot magic and info survive in EDI/ESI */
    mov %ebx, %esi
    mov $PHYS(stack_top), %esp

    /* PML4[0] -> PDPT[0] -> one page directory of 512 2 MiB pages: 1 GiB
       (higher half: also PML4[511] -> PDPT[510], the same 1 GiB). */
    mov $PHYS(pdpt + 3), %eax
    mov %eax, PHYS(pml4)
    mov $PHYS(pd + 3), %eax
    mov %eax, PHYS(pdpt)
#ifdef HIGHER_HALF
    mov %eax, PHYS(pdpt) + 510 * 8
    mov $PHYS(pdpt + 3), %eax
    mov %eax, PHYS(pml4) + 511 * 8
#endif
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax      /* present, writable, 2 MiB */
    mov %eax, PHYS(pd)(, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jb 1b

    mov $PHYS(pml4), %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax  /* PAE */
    mov %eax, %cr4
    mov $0xC0000080, %ecx
    rdmsr
    or $(1 << 8), %eax  /* EFER.LME */
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | 1), %eax
    mov %eax, %cr0
    lgdt PHYS(gdt_pointer)
    ljmp $0x08, $PHYS(1f)

    .code64
1:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %edi, %edi      /* zero-extend magic and info */
    mov %esi, %esi
    movabs $2f, %rax    /* on to the linked (virtual) addresses */
    jmp *%rax
2:  mov $stack_top, %rsp
    call kmain
3:  hlt
    jmp 3b

    .section .rodata
    .balign 8
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF /* 0x10: data */
gdt_pointer: /* loaded before paging: the physical address */
    .short gdt_pointer - gdt - 1
    .quad PHYS(gdt)

    /* Page tables and the stack in .bss: the loader zeroes it (up to bss_end). */
    .bss
    .balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd:   .skip 4096
    .balign 16
    .skip 64 * 1024
stack_top:

    .section .note.GNU-stack, "", @progbits
