/*
 * The way up for the other CPUs (application processors, APs), and the
 * entry stubs of the interrupts the demo uses with several CPUs.
 *
 * An AP leaves its wait-for-SIPI state in 16-bit real mode at CS:IP =
 * (vector << 8):0, i.e. at physical vector * 4 KiB. smp.c copies
 * ap_trampoline .. ap_trampoline_end to TRAMPOLINE_BASE (0x8000, SIPI vector
 * 0x08) before it sends the SIPIs: a page below 1 MiB, where memshim never
 * hands out frames (its frame manager keeps everything below 1 MiB out of
 * use), in the conventional memory the BIOS leaves free. The code there runs
 * before paging, so every address it uses is physical: its own data through
 * CS-relative offsets, the kernel's page tables, GDT and 64-bit entry
 * through their (identity-mapped, below 4 GiB) link addresses.
 *
 * Real mode -> 32-bit protected mode (GDT selector 0x18) -> PAE, the BSP's
 * page tables, EFER.LME, paging -> long mode (selector 0x08) at ap_long_mode,
 * which loads the shared IDT and the stack smp.c allocated for this CPU, and
 * calls ap_main(). One AP comes up at a time, so ap_boot_stack serves all.
 */

#define TRAMPOLINE_BASE 0x8000
/* The physical address of a trampoline label once copied. */
#define TR(label) (TRAMPOLINE_BASE + ((label) - ap_trampoline))

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

    .section .rodata.ap_trampoline, "a"
    .globl ap_trampoline, ap_trampoline_end
    .code16
ap_trampoline:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (tr_gdt_pointer - ap_trampoline)
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $0x18, $TR(ap_protected_mode)

    .code32
ap_protected_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    /* The same control bits as the BSP (boot.S). */
    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    and $~(CR0_EM | CR0_TS), %eax
    or $(CR0_MP | CR0_NE | CR0_PG), %eax
    mov %eax, %cr0
    ljmp $0x08, $ap_long_mode

    .balign 8
tr_gdt_pointer:
    .short BOOT_GDT_LIMIT
    .long boot_gdt
ap_trampoline_end:

    .text
    .code64
ap_long_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    lidt idt_pointer(%rip)
    mov ap_boot_stack(%rip), %rsp
    fninit
    xor %ebp, %ebp
    call ap_main
1:  cli
    hlt
    jmp 1b

/*
 * Interrupt entries: save what the C calling convention lets a callee
 * clobber, clear DF (the interrupted code may be in a backward `rep movs`;
 * the C code and memshim assume DF = 0), call the handler, return. In long
 * mode the CPU aligns RSP to 16 before it pushes the 5-word frame, so after
 * 9 more pushes RSP is 16-byte aligned at the call. No SSE state to save:
 * the demo's C code and memshim are built without SSE.
 */
    .macro irq_entry name, handler
    .globl \name
\name:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    cld
    mov 72(%rsp), %rdi /* the interrupted RIP */
    call \handler
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq
    .endm

    irq_entry isr_timer, timer_interrupt
    irq_entry isr_wakeup, wakeup_interrupt

/* The local APIC's spurious vector: no handler, no EOI. */
    .globl isr_spurious
isr_spurious:
    iretq

    .section .note.GNU-stack, "", @progbits
