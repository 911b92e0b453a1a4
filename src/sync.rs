//! The global lock and the interrupt/fork policy.
//!
//! One lock guards all of memshim's state. The built-in lock is a spin lock;
//! in ring 0 it also saves and disables interrupts while held (the ring is
//! read from CS, so ring-3 code never executes `cli`). `memshim_set_lock_hooks`
//! replaces it with the caller's own lock. The fork policy (which locks a
//! `fork()` takes and in what order) is `crate::state`'s: this module only
//! offers [`Locked::fork_prepare`] and [`Locked::fork_release`].
//!
//! Re-entry (a call into memshim while the same thread or CPU holds its
//! lock: a signal, interrupt, NMI or fault handler, a page or lock hook) is
//! detected instead of deadlocking. The lock word names its holder: the
//! thread on the host; in a kernel the CPU once the kernel registered its
//! CPUs (exact), or 1 for "some CPU" before that — then a wait that lasts
//! [`SUSPECT_SPINS`] spins is reported as a suspected re-entry (or a CPU
//! that stopped while holding the lock). Either way the report goes through
//! the panic path and the call fails: [`Locked::with`] returns `None`.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// A C lock hook.
pub type LockHook = unsafe extern "C" fn(ctx: *mut c_void);

static HOOK_LOCK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static HOOK_UNLOCK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static HOOK_CTX: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Installs lock hooks (both or neither). Must be called while no other
/// thread or CPU is inside memshim, typically once at start-up.
pub fn set_lock_hooks(lock: Option<LockHook>, unlock: Option<LockHook>, ctx: *mut c_void) {
    let (l, u) = match (lock, unlock) {
        (Some(l), Some(u)) => (l as *mut (), u as *mut ()),
        _ => (core::ptr::null_mut(), core::ptr::null_mut()),
    };
    HOOK_CTX.store(ctx, Ordering::Release);
    HOOK_UNLOCK.store(u, Ordering::Release);
    HOOK_LOCK.store(l, Ordering::Release);
}

/// Data behind the global lock.
pub struct Locked<T> {
    /// 0 when free, else the holder: the holder's pthread on the host (so
    /// ownership is taken in the same atomic step as the lock and a signal
    /// handler can always tell whether its own thread holds it), 1 when
    /// freestanding.
    word: AtomicUsize,
    /// The thread that holds the lock across a `fork()` (taken by
    /// `fork_prepare`), or 0: it may call memshim from other fork handlers
    /// meanwhile, which glibc's own allocator allows too.
    #[cfg(target_os = "linux")]
    fork_holder: AtomicUsize,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by the lock.
unsafe impl<T: Send> Sync for Locked<T> {}

/// What `acquire` did, so `release` undoes exactly that.
#[must_use]
pub struct Token {
    /// The lock was already this thread's, held across a fork: nothing to undo.
    nested: bool,
    hooked: Option<(LockHook, *mut c_void)>,
    #[cfg(target_os = "none")]
    irq: Option<bool>,
}

impl<T> Locked<T> {
    /// Wraps `data`.
    pub const fn new(data: T) -> Self {
        Self {
            word: AtomicUsize::new(0),
            #[cfg(target_os = "linux")]
            fork_holder: AtomicUsize::new(0),
            data: UnsafeCell::new(data),
        }
    }

    /// Runs `f` with exclusive access to the data; `None` (reported
    /// through the panic path) when the caller already holds the lock.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let token = self.acquire()?;
        // SAFETY: the lock is held until `release` below, so this is the
        // only reference to the data.
        let r = f(unsafe { &mut *self.data.get() });
        self.release(token);
        Some(r)
    }

    fn acquire(&self) -> Option<Token> {
        #[cfg(target_os = "linux")]
        if self.holds_for_fork() {
            return Some(Token {
                nested: true,
                hooked: None,
            });
        }
        let l = HOOK_LOCK.load(Ordering::Acquire);
        if !l.is_null() {
            // SAFETY: both hooks were stored together from valid function pointers.
            let (lock, unlock) = unsafe {
                (
                    core::mem::transmute::<*mut (), LockHook>(l),
                    core::mem::transmute::<*mut (), LockHook>(HOOK_UNLOCK.load(Ordering::Acquire)),
                )
            };
            let ctx = HOOK_CTX.load(Ordering::Acquire);
            // SAFETY: the user's hook, with the user's context.
            unsafe { lock(ctx) };
            return Some(Token {
                nested: false,
                hooked: Some((unlock, ctx)),
                #[cfg(target_os = "none")]
                irq: None,
            });
        }
        #[cfg(target_os = "none")]
        let irq = if crate::platform::bare::ring0() {
            Some(crate::platform::bare::irq_save())
        } else {
            None
        };
        if !self.spin_acquire() {
            #[cfg(target_os = "none")]
            if let Some(enabled) = irq {
                crate::platform::bare::irq_restore(enabled);
            }
            reentered();
            return None;
        }
        Some(Token {
            nested: false,
            hooked: None,
            #[cfg(target_os = "none")]
            irq,
        })
    }

    /// Takes the lock; `false` when the caller is found to hold it already
    /// (or, holder unknown, after [`SUSPECT_SPINS`] spins).
    #[inline]
    fn spin_acquire(&self) -> bool {
        let me = current_thread();
        let mut waited = 0u64;
        while self
            .word
            .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            let holder = self.word.load(Ordering::Relaxed);
            if holder == me {
                if me != SOME_CPU {
                    return false;
                }
                waited += 1;
                if waited > SUSPECT_SPINS {
                    return false;
                }
            }
            backoff(&self.word);
        }
        true
    }

    fn spin_release(&self) {
        self.word.store(0, Ordering::Release);
    }

    fn release(&self, token: Token) {
        if token.nested {
            return;
        }
        if let Some((unlock, ctx)) = token.hooked {
            // SAFETY: the user's unlock hook, paired with the lock hook called in acquire.
            unsafe { unlock(ctx) };
            return;
        }
        self.spin_release();
        #[cfg(target_os = "none")]
        if let Some(enabled) = token.irq {
            crate::platform::bare::irq_restore(enabled);
        }
    }
}

/// The lock holder when the CPU is not known (a kernel that registered no
/// CPUs, or user code on a freestanding libc).
const SOME_CPU: usize = 1;
/// Spins (each one a short backoff) a holder that cannot be told apart from
/// the caller may keep the lock before the wait is reported as a re-entry.
pub const SUSPECT_SPINS: u64 = 1 << 22;

/// Reports a re-entrant call through the panic path (the call then fails).
#[cold]
#[inline(never)]
fn reentered() {
    #[cfg(target_os = "linux")]
    // Not through the user's handler: a handler that allocates would
    // re-enter again, and it may be what re-entered.
    crate::panic::fatal_default(format_args!(
        "re-entrant call: memshim was called while this thread already held its lock \
         (from a signal handler, a lock/page hook or a panic handler?)"
    ));
    #[cfg(not(target_os = "linux"))]
    match current_thread() {
        SOME_CPU => crate::panic::report(format_args!(
            "re-entrant call suspected: memshim's lock stayed held by a CPU that cannot be told \
             apart from this one (an interrupt, NMI or fault handler, or a page/lock hook, \
             called memshim while it held its lock; or a CPU stopped holding it). \
             memshim_set_cpu_hook/memshim_set_cpu_gs make this exact"
        )),
        cpu => crate::panic::report(format_args!(
            "re-entrant call: memshim was called on CPU {} while that CPU held its lock \
             (from an interrupt, NMI or fault handler, or a page/lock hook)",
            cpu - 2
        )),
    }
}

/// Who takes the lock: the pthread on the host (never 0); in a kernel the
/// CPU number + 2 once CPUs are registered, else [`SOME_CPU`].
#[inline]
fn current_thread() -> usize {
    #[cfg(target_os = "linux")]
    {
        // The thread control block's self pointer at %fs:0 (x86_64 psABI TLS,
        // glibc and musl): unique per live thread and never 0; what
        // pthread_self returns, without the call.
        let tcb: usize;
        // SAFETY: reads one word of the current thread's TCB, always mapped.
        unsafe {
            core::arch::asm!("mov {0}, qword ptr fs:[0]", out(reg) tcb, options(nostack, readonly, preserves_flags))
        };
        tcb
    }
    #[cfg(target_os = "none")]
    return crate::local::cpu::lock_owner().unwrap_or(SOME_CPU);
    #[cfg(not(any(target_os = "linux", target_os = "none")))]
    SOME_CPU
}

/// Waits a little for the lock to look free: a short spin, then (host)
/// yielding the CPU so a preempted holder can run. The caller loops.
#[inline(never)]
fn backoff(word: &AtomicUsize) {
    for _ in 0..64 {
        if word.load(Ordering::Relaxed) == 0 {
            return;
        }
        core::hint::spin_loop();
    }
    #[cfg(target_os = "linux")]
    // SAFETY: sched_yield has no preconditions.
    unsafe {
        crate::platform::host::sched_yield();
    }
}

impl<T> Locked<T> {
    /// Whether the calling thread holds the lock across a fork it is in.
    #[cfg(target_os = "linux")]
    #[inline]
    fn holds_for_fork(&self) -> bool {
        let h = self.fork_holder.load(Ordering::Relaxed);
        h != 0 && h == current_thread()
    }

    /// For a `pthread_atfork` prepare handler: takes the lock (the user's
    /// lock hook, if set) so the child inherits consistent data, unless the
    /// calling thread already holds it: fork from a signal handler that
    /// interrupted memshim, or a nested fork (from a signal handler that
    /// interrupted a fork). Returns whether it took it.
    #[cfg(target_os = "linux")]
    pub fn fork_prepare(&self) -> bool {
        if self.holds_for_fork() {
            return false;
        }
        let hook = HOOK_LOCK.load(Ordering::Acquire);
        if !hook.is_null() {
            // SAFETY: the user's lock hook and context.
            unsafe {
                core::mem::transmute::<*mut (), LockHook>(hook)(HOOK_CTX.load(Ordering::Acquire))
            };
        } else if self.word.load(Ordering::Relaxed) == current_thread() {
            return false;
        } else if !self.spin_acquire() {
            reentered();
            return false;
        }
        self.fork_holder.store(current_thread(), Ordering::Relaxed);
        true
    }

    /// For the parent and child handlers: releases what `fork_prepare`
    /// took. In the child the built-in lock is released even if it was held
    /// (by a thread that does not exist there).
    #[cfg(target_os = "linux")]
    pub fn fork_release(&self, taken: bool, in_child: bool) {
        if taken {
            self.fork_holder.store(0, Ordering::Relaxed);
        }
        let hook = HOOK_UNLOCK.load(Ordering::Acquire);
        if !hook.is_null() {
            if taken {
                // SAFETY: pairs with the lock hook called in fork_prepare.
                unsafe {
                    core::mem::transmute::<*mut (), LockHook>(hook)(
                        HOOK_CTX.load(Ordering::Acquire),
                    )
                };
            }
        } else if taken || in_child {
            self.spin_release();
        }
    }
}
