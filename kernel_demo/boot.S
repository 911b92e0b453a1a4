/*
 * Boot path of the memshim demo kernel: Multiboot 1 and Multiboot 2 headers,
 * a 32-bit entry that checks the boot magic, identity-mapped page tables
 * (2 MiB pages), long mode, SSE enabled, a minimal exception IDT, then
 * kmain(magic, info). Shared by every variant of the demo (plain, newlib).
 * The other CPUs (cpu_entry.S) reuse the page tables, the GDT and the IDT.
 *
 * Boot loaders enter in 32-bit protected mode, paging off, with
 * EAX = 0x2BADB002 (Multiboot 1) or 0x36D76289 (Multiboot 2) and
 * EBX = the physical address of the boot information.
 */

/* The identity map covers physical 0 .. KERNEL_MAP_GIB GiB. This is the
   phys_limit kmain passes to memshim: RAM above it is left alone. */
#ifndef KERNEL_MAP_GIB
#define KERNEL_MAP_GIB 16
#endif

#define MB1_HEADER_MAGIC 0x1BADB002
/* bit 0: page-aligned modules; bit 1: memory map; bit 16: the address
   fields below, so QEMU's -kernel loader (which refuses 64-bit ELF images)
   loads this ELF file as a flat image. */
#define MB1_HEADER_FLAGS 0x00010003
#define MB1_BOOT_MAGIC 0x2BADB002
#define MB2_HEADER_MAGIC 0xE85250D6
#define MB2_BOOT_MAGIC 0x36D76289

#define CR0_PE (1 << 0)
#define CR0_MP (1 << 1)
#define CR0_EM (1 << 2)
#define CR0_TS (1 << 3)
#define CR0_NE (1 << 5)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)
#define CR4_OSXMMEXCPT (1 << 10)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define PTE_PRESENT_RW 0x03
#define PTE_HUGE 0x80

#define COM1 0x3F8
#define DEBUG_EXIT_PORT 0xF4
#define DEBUG_EXIT_FAIL 0x11 /* QEMU exits with status (0x11 << 1) | 1 = 35 */

    .section .multiboot, "a"
    .balign 4
mb1_header:
    .long MB1_HEADER_MAGIC
    .long MB1_HEADER_FLAGS
    .long 0x100000000 - (MB1_HEADER_MAGIC + MB1_HEADER_FLAGS)
    .long mb1_header      /* header_addr */
    .long __kernel_start  /* load_addr */
    .long __load_end      /* load_end_addr */
    .long __bss_end       /* bss_end_addr */
    .long _start          /* entry_addr */

    .balign 8
mb2_header:
    .long MB2_HEADER_MAGIC
    .long 0 /* i386 protected mode */
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (MB2_HEADER_MAGIC + (mb2_header_end - mb2_header))
    /* information request: the memory map (tag 6) is required */
    .balign 8
    .short 1, 0
    .long 12
    .long 6
    .balign 8
    .short 0, 0 /* end tag */
    .long 8
mb2_header_end:

    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    cli
    cld
    /* .bss holds the stack and page tables; clear it before using either.
       EBP and EBX (magic, info) survive rep stosl. */
    mov %eax, %ebp
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    shr $2, %ecx
    xor %eax, %eax
    rep stosl
    mov $boot_stack_top, %esp
    mov %ebp, boot_magic
    mov %ebx, boot_info

    mov $msg_bad_magic, %esi
    cmp $MB1_BOOT_MAGIC, %ebp
    je 1f
    cmp $MB2_BOOT_MAGIC, %ebp
    jne fail32
1:
    mov $msg_no_long_mode, %esi
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb fail32
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz fail32
    mov $msg_no_sse, %esi
    mov $1, %eax
    cpuid
    and $((1 << 24) | (1 << 25)), %edx /* FXSR, SSE */
    cmp $((1 << 24) | (1 << 25)), %edx
    jne fail32

    call build_page_tables

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    /* EM clear and MP set: SSE instructions run (the newlib variant's
       printf("%f") needs them); the C code here is compiled without SSE. */
    mov %cr0, %eax
    and $~(CR0_EM | CR0_TS), %eax
    or $(CR0_PE | CR0_MP | CR0_NE | CR0_PG), %eax
    mov %eax, %cr0
    lgdt gdt_pointer
    ljmp $0x08, $long_mode_entry

/* PML4[0] -> PDPT; PDPT[i] -> PD i; every PD entry a 2 MiB page. */
build_page_tables:
    mov $(boot_pdpt + PTE_PRESENT_RW), %eax
    mov %eax, boot_pml4
    mov $(boot_pd + PTE_PRESENT_RW), %eax
    xor %ecx, %ecx
1:  mov %eax, boot_pdpt(, %ecx, 8)
    add $4096, %eax
    inc %ecx
    cmp $KERNEL_MAP_GIB, %ecx
    jb 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $(PTE_PRESENT_RW | PTE_HUGE), %eax
    mov %eax, boot_pd(, %ecx, 8)
    mov %ecx, %edx
    shr $11, %edx /* bits 32+ of the page address */
    mov %edx, boot_pd + 4(, %ecx, 8)
    inc %ecx
    cmp $(KERNEL_MAP_GIB * 512), %ecx
    jb 2b
    ret

/* Print the NUL-terminated message at ESI on COM1 and make QEMU exit with
   failure; halt forever elsewhere. */
fail32:
    mov $COM1, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  mov $DEBUG_EXIT_PORT, %dx
    mov $DEBUG_EXIT_FAIL, %eax
    out %eax, %dx
3:  hlt
    jmp 3b

    .code64
long_mode_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    fninit
    call install_idt
    /* 32-bit moves zero the upper halves, which the mode switch left undefined. */
    mov boot_magic(%rip), %edi
    mov boot_info(%rip), %esi
    call kmain
    /* kmain does not return; if it does, that is a failure. */
    mov $DEBUG_EXIT_PORT, %dx
    mov $DEBUG_EXIT_FAIL, %eax
    out %eax, %dx
1:  hlt
    jmp 1b

/* Every CPU exception goes to boot_exception(vector, error, rip, cr2), which
   reports it and exits: a fault becomes a readable FAIL, not a triple fault. */
install_idt:
    lea isr_table(%rip), %rsi
    lea idt(%rip), %rdi
    xor %ecx, %ecx
1:  mov (%rsi, %rcx, 8), %rax
    mov %ax, (%rdi)          /* offset 15:0 */
    movw $0x08, 2(%rdi)      /* code selector */
    movw $0x8E00, 4(%rdi)    /* present, DPL 0, interrupt gate */
    shr $16, %rax
    mov %ax, 6(%rdi)         /* offset 31:16 */
    shr $16, %rax
    mov %eax, 8(%rdi)        /* offset 63:32 */
    movl $0, 12(%rdi)
    add $16, %rdi
    inc %ecx
    cmp $32, %ecx
    jb 1b
    lidt idt_pointer(%rip)
    ret

    .macro isr vec
isr_\vec:
    .if ((\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)) == 0
    pushq $0 /* no error code from the CPU: keep one frame layout */
    .endif
    pushq $\vec
    jmp isr_common
    .endm

    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    isr \v
    .endr

isr_common:
    mov (%rsp), %rdi    /* vector */
    mov 8(%rsp), %rsi   /* error code */
    mov 16(%rsp), %rdx  /* faulting RIP */
    mov %cr2, %rcx
    and $-16, %rsp
    call boot_exception
1:  hlt
    jmp 1b

    .section .rodata
    .balign 8
isr_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr_\v
    .endr

    .globl boot_gdt
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00CF92000000FFFF /* 0x10: data */
    .quad 0x00CF9A000000FFFF /* 0x18: 32-bit code, for the APs' way up (cpu_entry.S) */
boot_gdt_end:
gdt_pointer:
    .short boot_gdt_end - boot_gdt - 1
    .quad boot_gdt
    /* For the APs' trampoline (cpu_entry.S), which needs the limit as a constant. */
    .globl BOOT_GDT_LIMIT
    .set BOOT_GDT_LIMIT, boot_gdt_end - boot_gdt - 1
    .globl idt_pointer
idt_pointer:
    .short 256 * 16 - 1
    .quad idt

    .globl boot_mapped_limit
boot_mapped_limit:
    .quad KERNEL_MAP_GIB << 30

msg_bad_magic:
    .asciz "boot: not loaded by a Multiboot 1 or Multiboot 2 loader (bad magic in EAX)\n"
msg_no_long_mode:
    .asciz "boot: this CPU has no long mode\n"
msg_no_sse:
    .asciz "boot: this CPU has no SSE/FXSR\n"

    .section .bss
    .balign 4096
    .globl boot_pml4, boot_pd, idt
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * KERNEL_MAP_GIB
/* 256 gates: the exceptions here, the interrupts smp.c installs. */
idt:
    .skip 256 * 16
    .balign 16
boot_stack:
    .skip 64 * 1024
boot_stack_top:
boot_magic:
    .long 0
boot_info:
    .long 0

    .section .note.GNU-stack, "", @progbits
