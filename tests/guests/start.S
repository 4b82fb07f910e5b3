/* SPDX-License-Identifier: Apache-2.0 */
/* Entry from the VMM: 64-bit mode, paging with the VMM's identity map,
   %rsi = boot_params.  main() returns an exit code; the guest then reboots
   through the i8042 (the VMM exits 0) or, for a non-zero code, triple
   faults on purpose (the VMM exits non-zero). */
        .section .text.start, "ax"
        .code64
        .global _start
_start:
        lea stack_top(%rip), %rsp
        mov %rsi, %rdi
        call main
        test %eax, %eax
        jnz guest_triple_fault
        .global guest_reboot
guest_reboot:
        mov $0xfe, %al
        out %al, $0x64
        /* no i8042 (QEMU microvm): a triple fault, which -no-reboot ends */

        .global guest_triple_fault
guest_triple_fault:
        lidt null_idt(%rip)
        ud2
        jmp guest_triple_fault

        .section .rodata
        .align 8
null_idt:
        .word 0
        .quad 0

/* PVH entry (QEMU): 32-bit protected mode, paging off.  Identity-map
   4 GiB with 2 MiB pages, enter long mode, continue at _start with no
   boot_params (%rsi = 0). */
        .section .note.pvh, "a"
        .align 4
        .long 4, 4, 18          /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .long pvh_start32

        .text
        .code32
pvh_start32:
        mov $pvh_pd, %edi
        xor %eax, %eax
        mov $0x83, %edx         /* present, writable, 2 MiB */
1:      mov %edx, (%edi)
        movl $0, 4(%edi)
        mov %eax, %ecx
        shr $11, %ecx
        add %ecx, 4(%edi)       /* bits 32+ of the frame, for entries >= 4 GiB: none here */
        add $0x200000, %edx
        add $8, %edi
        inc %eax
        cmp $2048, %eax
        jne 1b
        mov $pvh_pdpt, %edi
        mov $pvh_pd + 3, %eax
        mov $4, %ecx
2:      mov %eax, (%edi)
        movl $0, 4(%edi)
        add $4096, %eax
        add $8, %edi
        loop 2b
        movl $pvh_pdpt + 3, pvh_pml4
        mov $pvh_pml4, %eax
        mov %eax, %cr3
        mov %cr4, %eax
        or $0x20, %eax
        mov %eax, %cr4
        mov $0xC0000080, %ecx
        rdmsr
        or $0x100, %eax
        wrmsr
        lgdt pvh_gdtr
        mov %cr0, %eax
        or $0x80000001, %eax
        mov %eax, %cr0
        ljmp $0x10, $pvh_long
        .code64
pvh_long:
        mov $0x18, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        xor %esi, %esi
        jmp _start

        .section .rodata
        .align 8
pvh_gdt:
        .quad 0, 0, 0x00af9a000000ffff, 0x00cf92000000ffff
pvh_gdtr:
        .word 31
        .long pvh_gdt

        .bss
        .align 4096
pvh_pml4: .space 4096
pvh_pdpt: .space 4096
pvh_pd:   .space 4 * 4096

        .text
        .global isr_timer, isr_uart
        .text
/* Interrupt stubs: save caller-saved registers, call the C handler. */
.macro ISR name, handler
\name:
        push %rax; push %rcx; push %rdx; push %rsi; push %rdi
        push %r8; push %r9; push %r10; push %r11
        call \handler
        pop %r11; pop %r10; pop %r9; pop %r8
        pop %rdi; pop %rsi; pop %rdx; pop %rcx; pop %rax
        iretq
.endm
        ISR isr_timer, on_timer
        ISR isr_uart, on_uart

        .bss
        .align 16
        .space 16384
stack_top:
