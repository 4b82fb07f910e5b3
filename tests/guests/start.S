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
1:      hlt
        jmp 1b

        .global guest_triple_fault
guest_triple_fault:
        lidt null_idt(%rip)
        int3
        jmp guest_triple_fault

        .section .rodata
        .align 8
null_idt:
        .word 0
        .quad 0

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
