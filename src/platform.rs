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
        pub fn pthread_key_create(
            key: *mut u32,
            destructor: Option<unsafe extern "C" fn(*mut c_void)>,
        ) -> c_int;
        pub fn pthread_setspecific(key: u32, value: *const c_void) -> c_int;
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

/// Which CPU the caller runs on, in a kernel that says how to find out
/// (`memshim_set_cpu_hook` / `memshim_set_cpu_gs`).
#[cfg(target_os = "none")]
pub mod cpu {
    use core::ffi::c_void;
    use core::ptr;
    use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU8, AtomicUsize, Ordering::*};

    /// Most CPUs with caches of their own.
    pub const MAX_CPUS: usize = 256;

    /// `unsigned cpu_id(void *ctx)`: the number of the CPU it runs on.
    pub type CpuHook = unsafe extern "C" fn(ctx: *mut c_void) -> u32;

    const NONE: u32 = 0;
    const HOOK: u32 = 1;
    const GS: u32 = 2;

    static MODE: AtomicU32 = AtomicU32::new(NONE);
    static NCPUS: AtomicU32 = AtomicU32::new(1);
    static HOOK_FN: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());
    static HOOK_CTX: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
    static GS_OFFSET: AtomicUsize = AtomicUsize::new(0);
    /// 0 unknown, 1 ring 0, 2 another ring.
    static RING0: AtomicU8 = AtomicU8::new(0);

    /// Errors of the set-up calls.
    #[derive(Debug, PartialEq, Eq)]
    pub enum CpuError {
        /// `count` is 0 or above [`MAX_CPUS`].
        BadCount,
    }

    /// `hook(ctx)` returns the number (below `count`) of the CPU it runs
    /// on. Call once, before other CPUs use memshim.
    pub fn set_hook(count: u32, hook: CpuHook, ctx: *mut c_void) -> Result<(), CpuError> {
        check(count)?;
        HOOK_CTX.store(ctx, Release);
        HOOK_FN.store(hook as *mut (), Release);
        NCPUS.store(count, Release);
        MODE.store(HOOK, Release);
        Ok(())
    }

    /// The 32-bit word at `gs:[offset]` is the number (below `count`) of
    /// the CPU it runs on. Call once, before other CPUs use memshim.
    pub fn set_gs(count: u32, offset: usize) -> Result<(), CpuError> {
        check(count)?;
        GS_OFFSET.store(offset, Release);
        NCPUS.store(count, Release);
        MODE.store(GS, Release);
        Ok(())
    }

    fn check(count: u32) -> Result<(), CpuError> {
        if count == 0 || count as usize > MAX_CPUS {
            return Err(CpuError::BadCount);
        }
        Ok(())
    }

    /// Whether the kernel said how to find the current CPU.
    #[inline(always)]
    pub fn registered() -> bool {
        MODE.load(Relaxed) != NONE
    }

    /// The caller's CPU number, when registered and in range. Call with
    /// interrupts masked (in ring 0), or the answer may be stale at once.
    #[inline(always)]
    pub fn current() -> Option<usize> {
        let id = match MODE.load(Relaxed) {
            GS => {
                let id: u32;
                // SAFETY: the kernel promised (set_gs) that gs:[offset] holds
                // the CPU number while memshim runs.
                unsafe {
                    core::arch::asm!("mov {0:e}, dword ptr gs:[{1}]", out(reg) id,
                                     in(reg) GS_OFFSET.load(Relaxed),
                                     options(nostack, readonly, preserves_flags))
                };
                id
            }
            HOOK => {
                let f = HOOK_FN.load(Relaxed);
                // SAFETY: stored from a `CpuHook` in `set_hook`.
                let hook: CpuHook = unsafe { core::mem::transmute::<*mut (), CpuHook>(f) };
                // SAFETY: the kernel's hook, with its context.
                unsafe { hook(HOOK_CTX.load(Relaxed)) }
            }
            _ => return None,
        };
        (id < NCPUS.load(Relaxed)).then_some(id as usize)
    }

    /// The global lock's holder id for the calling CPU: its number + 2, or
    /// `None` before CPUs are registered. Called with interrupts masked.
    pub fn lock_owner() -> Option<usize> {
        current().map(|cpu| cpu + 2)
    }

    /// Whether memshim runs in ring 0 (read once from CS).
    pub fn ring0() -> bool {
        match RING0.load(Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let r = super::bare::ring0();
                RING0.store(if r { 1 } else { 2 }, Relaxed);
                r
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

/// 64 bits for the heap's secret: RDSEED or RDRAND when the CPU has them,
/// mixed with the time-stamp counter and a stack address (ASLR); without
/// them, only the latter two.
pub fn random_u64() -> u64 {
    #[cfg(miri)]
    return 0x9e37_79b9_7f4a_7c15;
    #[cfg(not(miri))]
    {
        use core::arch::x86_64::{__cpuid, __cpuid_count, _rdtsc};
        let local = 0u8;
        // SAFETY: rdtsc has no preconditions on x86_64 (unless an OS sets
        // CR4.TSD for user code, which none memshim targets does).
        let mut v =
            unsafe { _rdtsc() } ^ (core::ptr::from_ref(&local).addr() as u64).rotate_left(32);
        let (max, ecx1) = (__cpuid(0).eax, __cpuid(1).ecx);
        // Leaf 7 exists when the maximum leaf says so.
        let ebx7 = if max >= 7 { __cpuid_count(7, 0).ebx } else { 0 };
        if ebx7 & (1 << 18) != 0 {
            v ^= hw_random(true).unwrap_or(0);
        }
        if ecx1 & (1 << 30) != 0 {
            v ^= hw_random(false).unwrap_or(0).rotate_left(17);
        }
        // splitmix64's finaliser: every input bit reaches every output bit.
        v = (v ^ (v >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        v = (v ^ (v >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        v ^ (v >> 31)
    }
}

/// One RDSEED (`seed`) or RDRAND value; these may fail transiently, so a
/// few tries are made. The caller checked CPUID.
#[cfg(not(miri))]
fn hw_random(seed: bool) -> Option<u64> {
    for _ in 0..16 {
        let (v, ok): (u64, u8);
        // SAFETY: the instruction exists (CPUID checked by the caller); it
        // only writes the two output registers and the flags.
        unsafe {
            if seed {
                core::arch::asm!("rdseed {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok,
                                 options(nomem, nostack));
            } else {
                core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok,
                                 options(nomem, nostack));
            }
        }
        if ok != 0 {
            return Some(v);
        }
    }
    None
}

/// `ENOMEM` and `EINVAL` have the same values in glibc and newlib.
pub const ENOMEM: i32 = 12;
/// See [`ENOMEM`].
pub const EINVAL: i32 = 22;
