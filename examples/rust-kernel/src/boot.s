# Multiboot 1 header (with the address fields QEMU's -kernel needs for an
# ELF64 file), 32-bit entry, 1 GiB identity-mapped with 2 MiB pages, long
# mode, then kmain(magic, info). No IDT: a fault is a triple fault (QEMU
# `-d int` shows it).
    .section .multiboot, "a"
    .balign 4
mb1_header:
    .long 0x1BADB002
    .long 0x00010003
    .long -(0x1BADB002 + 0x00010003)
    .long mb1_header
    .long kernel_start
    .long load_end
    .long bss_end
    .long _start

    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    cli
    mov %eax, %edi
    mov %ebx, %esi
    mov $boot_stack_top, %esp
    mov $(boot_pdpt + 3), %eax
    mov %eax, boot_pml4
    mov $(boot_pd + 3), %eax
    mov %eax, boot_pdpt
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(, %ecx, 8)
    inc %ecx
    cmp $512, %ecx
    jb 1b
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax
    mov %eax, %cr4
    mov $0xC0000080, %ecx
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax
    mov %eax, %cr0
    lgdt boot_gdt_pointer
    ljmp $0x08, $2f
    .code64
2:  mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %edi, %edi
    mov %esi, %esi
    call kmain
3:  hlt
    jmp 3b

    .section .rodata.boot, "a"
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_pointer:
    .short boot_gdt_pointer - boot_gdt - 1
    .quad boot_gdt

    .section .bss.boot, "aw", @nobits
    .balign 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096
    .balign 16
    .skip 64 * 1024
boot_stack_top:
