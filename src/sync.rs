//! The global lock and the interrupt/fork policy.
//!
//! One lock guards all of memshim's state. The built-in lock is a spin lock;
//! in ring 0 it also saves and disables interrupts while held (the ring is
//! read from CS, so ring-3 code never executes `cli`). `memshim_set_lock_hooks`
//! replaces it with the caller's own lock. The fork policy (which locks a
//! `fork()` takes and in what order) is `crate::state`'s: this module only
//! offers [`Locked::fork_prepare`] and [`Locked::fork_release`].
//!
//! Freestanding, the spin lock serves waiters in turn ([`FairLock`]): under
//! contention no CPU takes it twice while another waits (a plain
//! compare-and-swap lock lets the CPU that just released it win again and
//! again), and a waiter that does not take its turn — a vCPU its host is
//! not running — is passed over instead of stopping everyone. On the host
//! it is a compare-and-swap lock that yields the CPU while it waits.
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
#[cfg(any(not(target_os = "linux"), test))]
use core::sync::atomic::AtomicU32;
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
    /// 0 when free, else the holder's pthread (ownership is taken in the
    /// same atomic step as the lock, so a signal handler can always tell
    /// whether its own thread holds it). Freestanding the lock's word holds
    /// the holder's CPU number + 2, or [`SOME_CPU`].
    #[cfg(target_os = "linux")]
    word: AtomicUsize,
    /// Freestanding: the lock, its word holding the holder's id.
    #[cfg(not(target_os = "linux"))]
    lock: FairLock,
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
            #[cfg(target_os = "linux")]
            word: AtomicUsize::new(0),
            #[cfg(not(target_os = "linux"))]
            lock: FairLock::new(),
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
        if let Err(refusal) = self.spin_acquire() {
            #[cfg(target_os = "none")]
            if let Some(enabled) = irq {
                crate::platform::bare::irq_restore(enabled);
            }
            reentered(refusal);
            return None;
        }
        Some(Token {
            nested: false,
            hooked: None,
            #[cfg(target_os = "none")]
            irq,
        })
    }

    /// Takes the lock; refused when the caller is found to hold it already
    /// (or, holder unknown, after [`SUSPECT_SPINS`] spins).
    #[cfg(target_os = "linux")]
    #[inline]
    fn spin_acquire(&self) -> Result<(), Refusal> {
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
                    return Err(Refusal::Reentered);
                }
                waited += 1;
                if waited > SUSPECT_SPINS {
                    return Err(Refusal::Stalled);
                }
            }
            backoff(&self.word);
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn spin_release(&self) {
        self.word.store(0, Ordering::Release);
    }

    /// Takes the lock in turn; refused at once when the caller's CPU is
    /// known and holds it, or (CPU not known) after waiting
    /// [`SUSPECT_SPINS`] rounds during which it did not change hands.
    #[cfg(not(target_os = "linux"))]
    #[inline]
    fn spin_acquire(&self) -> Result<(), Refusal> {
        self.lock.lock(current_thread(), SUSPECT_SPINS)
    }

    #[cfg(not(target_os = "linux"))]
    fn spin_release(&self) {
        self.lock.unlock();
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
/// the caller may keep the lock before the wait is reported as a re-entry
/// (freestanding: rounds of 64 spins during which it did not change hands).
pub const SUSPECT_SPINS: u64 = 1 << 22;

/// Why the built-in lock was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The caller's thread or CPU holds it.
    Reentered,
    /// It did not change hands for [`SUSPECT_SPINS`] rounds (a caller that
    /// cannot be told apart from other callers).
    Stalled,
}

/// Reports a re-entrant call through the panic path (the call then fails).
#[cold]
#[inline(never)]
fn reentered(refusal: Refusal) {
    // Which one it was does not change the report: with the CPU known only
    // a holder is refused, without it only a stalled wait.
    let _ = refusal;
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

/// Waits a little for the lock to look free: a short spin, then yielding
/// the CPU so a preempted holder can run. The caller loops.
#[cfg(target_os = "linux")]
#[inline(never)]
fn backoff(word: &AtomicUsize) {
    for _ in 0..64 {
        if word.load(Ordering::Relaxed) == 0 {
            return;
        }
        core::hint::spin_loop();
    }
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
        } else if let Err(refusal) = self.spin_acquire() {
            reentered(refusal);
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

/// Spins per round of a wait for the fair lock.
#[cfg(any(not(target_os = "linux"), test))]
const ROUND: u32 = 64;

/// Rounds the lock may stay free with its turn unchanged before waiters
/// conclude the waiter whose turn it is is not running (a preempted vCPU)
/// and take the lock past it. A running waiter takes a free lock within a
/// spin or two of its release.
#[cfg(any(not(target_os = "linux"), test))]
const FORFEIT_ROUNDS: u32 = 4;

/// The freestanding lock: a spin lock whose word names its holder, with
/// waiters served in turn. Each waiter takes a ticket; when the lock is
/// free only the waiter whose turn it is (or one whose turn went by) may
/// take it, so a CPU that releases the lock and asks again queues behind
/// every CPU already waiting.
///
/// A waiter that does not take its turn — a CPU stopped, a vCPU its host
/// does not run, a waiter that gave up — would stop a plain ticket lock
/// for everyone. Here, once the lock has stayed free with the turn
/// unchanged for [`FORFEIT_ROUNDS`] rounds per waiter ahead of it, a waiter
/// takes it and moves the turn past its own ticket; the waiters it passed
/// over may take the lock whenever it is free from then on (their turn
/// has gone by). So order is kept among waiters that are running (the
/// first of them in line is the one that takes it), and a waiter can
/// always leave.
///
/// With nobody queued, a caller takes a free lock with one compare-and-swap
/// and no ticket, as with a plain spin lock.
#[cfg(any(not(target_os = "linux"), test))]
pub(crate) struct FairLock {
    /// 0 when free, else the holder's id (never 0).
    word: AtomicUsize,
    /// The next ticket to hand out.
    next: AtomicU32,
    /// The ticket whose turn it is; `next` when nobody is queued.
    turn: AtomicU32,
}

#[cfg(any(not(target_os = "linux"), test))]
impl FairLock {
    /// A free lock.
    pub(crate) const fn new() -> Self {
        Self {
            word: AtomicUsize::new(0),
            next: AtomicU32::new(0),
            turn: AtomicU32::new(0),
        }
    }

    /// The holder's id, or 0.
    pub(crate) fn holder(&self) -> usize {
        self.word.load(Ordering::Relaxed)
    }

    /// Takes the lock for `me` (not 0), in turn. Refused when `me` is
    /// found holding it; `me` = [`SOME_CPU`] cannot be told apart from
    /// other callers, so it is refused instead after `limit` rounds of
    /// [`ROUND`] spins during which the turn did not move (the holder
    /// stopped, or is the caller itself, interrupted). A refused caller
    /// holds nothing; its ticket is passed over when its turn comes.
    pub(crate) fn lock(&self, me: usize, limit: u64) -> Result<(), Refusal> {
        let exact = me != SOME_CPU;
        if exact && self.holder() == me {
            return Err(Refusal::Reentered);
        }
        if self.next.load(Ordering::Relaxed) == self.turn.load(Ordering::Relaxed) && self.take(me) {
            return Ok(());
        }
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let mut seen = self.turn.load(Ordering::Relaxed);
        let (mut free_rounds, mut stalled) = (0u32, 0u64);
        loop {
            for _ in 0..ROUND {
                match self.word.load(Ordering::Relaxed) {
                    0 => {
                        // Our turn, or it went by while we were away.
                        let turn = self.turn.load(Ordering::Relaxed);
                        if ticket.wrapping_sub(turn) as i32 <= 0 && self.take(me) {
                            self.turn_past(ticket);
                            return Ok(());
                        }
                    }
                    h if exact && h == me => return Err(Refusal::Reentered),
                    _ => {}
                }
                core::hint::spin_loop();
            }
            let turn = self.turn.load(Ordering::Relaxed);
            if turn != seen {
                seen = turn;
                free_rounds = 0;
                stalled = 0;
                continue;
            }
            stalled += 1;
            if !exact && stalled > limit {
                return Err(Refusal::Stalled);
            }
            if self.word.load(Ordering::Relaxed) != 0 {
                free_rounds = 0;
                continue;
            }
            free_rounds += 1;
            // Every waiter ahead had FORFEIT_ROUNDS rounds of a free lock
            // to take it and did not: they are not running. Past them.
            let ahead = ticket.wrapping_sub(turn);
            if ahead as i32 > 0
                && free_rounds >= FORFEIT_ROUNDS.saturating_mul(ahead)
                && self.take(me)
            {
                self.turn_past(ticket);
                return Ok(());
            }
        }
    }

    fn take(&self, me: usize) -> bool {
        self.word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Moves the turn past `ticket` (the holder's), if it is not already:
    /// the waiters it passes may take the lock whenever it is free. Only
    /// the holder moves the turn.
    fn turn_past(&self, ticket: u32) {
        let past = ticket.wrapping_add(1);
        let turn = self.turn.load(Ordering::Relaxed);
        if past.wrapping_sub(turn) as i32 > 0 {
            self.turn.store(past, Ordering::Relaxed);
        }
    }

    /// Releases the lock; whoever's turn it is takes it next.
    pub(crate) fn unlock(&self) {
        self.word.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::{FairLock, Refusal, SOME_CPU};
    use core::sync::atomic::Ordering::*;
    use std::cell::UnsafeCell;
    use std::sync::Arc;

    struct Shared {
        lock: FairLock,
        count: UnsafeCell<u64>,
    }
    // SAFETY: `count` is only touched with `lock` held.
    unsafe impl Sync for Shared {}

    fn wait_for_tickets(l: &FairLock, n: u32) {
        while l.next.load(Relaxed) != n {
            std::thread::yield_now();
        }
    }

    /// Holders exclude each other: no increment is lost.
    #[test]
    fn fair_lock_excludes() {
        let s = Arc::new(Shared {
            lock: FairLock::new(),
            count: UnsafeCell::new(0),
        });
        let threads: Vec<_> = (0..4)
            .map(|id| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        s.lock.lock(id + 2, u64::MAX).unwrap();
                        // SAFETY: the lock is held.
                        unsafe { *s.count.get() += 1 };
                        s.lock.unlock();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // SAFETY: every thread has ended.
        assert_eq!(unsafe { *s.count.get() }, 80_000);
    }

    /// With nobody queued the lock is taken without a ticket; with a waiter
    /// ahead that does not take the free lock, a newcomer waits its rounds,
    /// takes it past that waiter and moves the turn past its own ticket.
    #[test]
    fn fair_lock_keeps_turns() {
        let l = FairLock::new();
        l.lock(2, 0).unwrap();
        l.unlock();
        assert_eq!((l.next.load(Relaxed), l.turn.load(Relaxed)), (0, 0));
        // Ticket 0 handed out, its waiter away.
        l.next.store(1, Relaxed);
        l.lock(3, 0).unwrap();
        assert_eq!(l.holder(), 3);
        assert_eq!((l.next.load(Relaxed), l.turn.load(Relaxed)), (2, 2));
        l.unlock();
        // Nobody queued again: no ticket.
        l.lock(4, 0).unwrap();
        assert_eq!((l.next.load(Relaxed), l.turn.load(Relaxed)), (2, 2));
        l.unlock();
    }

    /// The holder asking again is refused at once; a caller that cannot be
    /// told apart waits, and is refused when the lock does not move; a
    /// caller that can waits as long as it takes.
    #[test]
    fn fair_lock_refuses_its_holder() {
        let l = FairLock::new();
        l.lock(7, 0).unwrap();
        assert_eq!(l.lock(7, u64::MAX), Err(Refusal::Reentered));
        l.unlock();
        l.lock(SOME_CPU, 0).unwrap();
        assert_eq!(l.lock(SOME_CPU, 3), Err(Refusal::Stalled));
        l.unlock();
        let l = Arc::new(l);
        l.lock(8, 0).unwrap();
        let waiter = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                l.lock(9, 0).unwrap();
                l.unlock();
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        l.unlock();
        waiter.join().unwrap();
        // The refused ticket is passed over: the lock is not stuck.
        l.lock(5, u64::MAX).unwrap();
        l.unlock();
    }

    /// A waiter that is not there when its turn comes (it gave up, or its
    /// CPU does not run) is passed over; it may still take the lock later.
    #[test]
    fn fair_lock_passes_an_absent_waiter() {
        let l = Arc::new(FairLock::new());
        l.lock(2, u64::MAX).unwrap();
        let quitter = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || l.lock(SOME_CPU, 2))
        };
        wait_for_tickets(&l, 1);
        assert_eq!(quitter.join().unwrap(), Err(Refusal::Stalled));
        let patient = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                l.lock(4, u64::MAX).unwrap();
                l.unlock();
            })
        };
        wait_for_tickets(&l, 2);
        l.unlock();
        patient.join().unwrap();
        assert_eq!(l.holder(), 0);
        l.lock(5, 0).unwrap();
        l.unlock();
    }
}
