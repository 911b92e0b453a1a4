//! The few things memshim needs from its environment, per target.
//!
//! Host (Linux): a handful of libc functions, declared here rather than
//! through the `libc` crate so the archive's undefined symbols stay a short,
//! known list. Freestanding (`target_os = "none"`): privilege ring, interrupt
//! flag and halt, by inline assembly.

#[cfg(target_os = "linux")]
pub mod host {
    use core::ffi::{c_int, c_long, c_void};

    extern "C" {
        pub fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
        pub fn abort() -> !;
        pub fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: c_long,
        ) -> *mut c_void;
        pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
        pub fn __errno_location() -> *mut c_int;
        pub fn pthread_atfork(
            prepare: Option<unsafe extern "C" fn()>,
            parent: Option<unsafe extern "C" fn()>,
            child: Option<unsafe extern "C" fn()>,
        ) -> c_int;
        pub fn sched_yield() -> c_int;
    }

    pub const PROT_READ: c_int = 1;
    pub const PROT_WRITE: c_int = 2;
    pub const MAP_PRIVATE: c_int = 0x02;
    pub const MAP_ANONYMOUS: c_int = 0x20;
    pub const MAP_FAILED: *mut c_void = !0usize as *mut c_void;

    /// Sets the calling thread's `errno`.
    pub fn set_errno(value: c_int) {
        // SAFETY: __errno_location returns a valid pointer to the calling
        // thread's errno for the thread's whole lifetime.
        unsafe { *__errno_location() = value };
    }

    /// Reads the calling thread's `errno`.
    pub fn errno() -> c_int {
        // SAFETY: as in `set_errno`.
        unsafe { *__errno_location() }
    }
}

#[cfg(target_os = "none")]
pub mod bare {
    use core::arch::asm;

    /// True when running in ring 0 (read from CS), where `cli`/`hlt` are allowed.
    #[inline]
    pub fn ring0() -> bool {
        let cs: u16;
        // SAFETY: reading CS has no side effects and is allowed at every privilege level.
        unsafe { asm!("mov {0:x}, cs", out(reg) cs, options(nomem, nostack, preserves_flags)) };
        cs & 3 == 0
    }

    /// Saves RFLAGS.IF and disables interrupts; returns whether they were enabled.
    /// Only called in ring 0.
    #[inline]
    pub fn irq_save() -> bool {
        let flags: u64;
        // SAFETY: pushfq/pop reads RFLAGS; cli is legal in ring 0, which the caller checked.
        unsafe { asm!("pushfq", "pop {0}", "cli", out(reg) flags, options(nomem)) };
        flags & (1 << 9) != 0
    }

    /// Re-enables interrupts if `enabled` says they were on before `irq_save`.
    #[inline]
    pub fn irq_restore(enabled: bool) {
        if enabled {
            // SAFETY: ring 0 (caller checked); restores the state irq_save saw.
            unsafe { asm!("sti", options(nomem, nostack)) };
        }
    }

    /// Stops the CPU for good: interrupts off and `hlt` in ring 0, `ud2` elsewhere
    /// (ring 3 cannot halt; the trap makes the OS end the program).
    pub fn halt_forever() -> ! {
        if ring0() {
            loop {
                // SAFETY: ring 0; the CPU stops with interrupts off, which is the intent.
                unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
            }
        }
        // SAFETY: ud2 raises #UD by design; it never returns.
        unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
    }

    /// Sets `errno` through newlib's `__errno()` when the program links one
    /// (a weak reference: without newlib the address resolves to 0 and
    /// nothing is written).
    pub fn set_errno(value: i32) {
        let f: usize;
        // SAFETY: only loads the link-time address of a weak symbol.
        unsafe {
            asm!(".weak __errno", "movabs {0}, offset __errno", out(reg) f,
                 options(nomem, nostack, preserves_flags))
        };
        if f != 0 {
            // SAFETY: a non-zero address is newlib's `int *__errno(void)`, which
            // returns the current reentrancy structure's errno field.
            unsafe {
                let errno_fn: extern "C" fn() -> *mut i32 = core::mem::transmute(f);
                *errno_fn() = value;
            }
        }
    }
}

/// Sets errno where the platform has one (host libc; newlib when linked).
#[inline]
pub fn set_errno(value: i32) {
    #[cfg(target_os = "linux")]
    host::set_errno(value);
    #[cfg(target_os = "none")]
    bare::set_errno(value);
    #[cfg(not(any(target_os = "linux", target_os = "none")))]
    let _ = value;
}

/// `ENOMEM` and `EINVAL` have the same values in glibc and newlib.
pub const ENOMEM: i32 = 12;
/// See [`ENOMEM`].
pub const EINVAL: i32 = 22;
