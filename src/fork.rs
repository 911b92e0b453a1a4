//! Fork safety on the host, in glibc's lock order.
//!
//! The global lock is held across `fork()` so the child inherits a
//! consistent heap; in the child, the caches of threads that do not exist
//! there give their slabs back. glibc's `fork()` runs the prepare handlers,
//! then takes its stdio list lock (`_IO_list_lock`), then its own malloc
//! locks, because stdio calls malloc with the list lock held (`getline`,
//! `fflush(NULL)`). memshim's prepare handler therefore takes the stdio list
//! lock itself (it is recursive) before its own, so the order is the same
//! as glibc's and no thread waits for memshim's lock while holding what
//! the forking thread waits for. Nested forks (a signal handler that forks
//! while a fork is between its handlers) each keep their own record.

use crate::state::STATE;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

static REGISTERED: AtomicBool = AtomicBool::new(false);
/// Forks in progress on the forking thread (more than one when a signal
/// handler forked during a fork).
static DEPTH: AtomicU32 = AtomicU32::new(0);
/// Bit `d`: the prepare handler at depth `d` took the lock (it does not
/// when the forking thread already holds it: a fork from a signal
/// handler that interrupted malloc, or a nested fork).
static TAKEN: AtomicU64 = AtomicU64::new(0);

#[inline]
pub fn register_once() {
    if REGISTERED.load(Ordering::Relaxed) || REGISTERED.swap(true, Ordering::AcqRel) {
        return;
    }
    // SAFETY: registering plain extern "C" functions with no preconditions.
    unsafe {
        crate::platform::host::pthread_atfork(Some(prepare), Some(parent), Some(child));
    }
}

unsafe extern "C" fn prepare() {
    let d = DEPTH.fetch_add(1, Ordering::Relaxed);
    stdio::lock();
    if STATE.fork_prepare() && d < 64 {
        TAKEN.fetch_or(1 << d, Ordering::Relaxed);
    }
}

/// The depth being finished and whether its prepare took the lock.
fn pop() -> bool {
    let d = DEPTH.load(Ordering::Relaxed).saturating_sub(1);
    DEPTH.store(d, Ordering::Relaxed);
    let bit = if d < 64 { 1u64 << d } else { 0 };
    TAKEN.fetch_and(!bit, Ordering::Relaxed) & bit != 0
}

unsafe extern "C" fn parent() {
    STATE.fork_release(pop(), false);
    stdio::unlock();
}

unsafe extern "C" fn child() {
    let outermost = DEPTH.load(Ordering::Relaxed) == 1;
    let taken = pop();
    STATE.fork_release(taken, true);
    // glibc resets the list lock in a multi-threaded child; resetting it
    // here too covers the single-threaded one, where it did not.
    stdio::reset();
    // Only one thread exists here: the caches of the others are dormant
    // now. (Not when the fork interrupted memshim itself: that call
    // resumes after the handler and owns the heap or its cache.)
    if let (true, true, Some(mine)) = (taken, outermost, crate::local::current_address()) {
        let _ = STATE.with(|s| {
            let (heap, mut src) = s.heap();
            heap.detach_all_but(&mut src, mine)
        });
    }
}

/// glibc's stdio list lock, when the C library has one (a weak
/// reference: elsewhere these do nothing).
mod stdio {
    macro_rules! weak_call {
        ($name:literal) => {{
            let f: usize;
            // SAFETY: loads the GOT entry of a weak symbol (0 when the C
            // library has none).
            unsafe {
                core::arch::asm!(
                    concat!(".weak ", $name),
                    concat!("mov {0}, qword ptr [rip + ", $name, "@GOTPCREL]"),
                    out(reg) f,
                    options(nostack, readonly, preserves_flags)
                )
            };
            if f != 0 {
                // SAFETY: glibc's `void _IO_list_*(void)`.
                unsafe { core::mem::transmute::<usize, unsafe extern "C" fn()>(f)() };
            }
        }};
    }

    pub fn lock() {
        weak_call!("_IO_list_lock");
    }

    pub fn unlock() {
        weak_call!("_IO_list_unlock");
    }

    pub fn reset() {
        weak_call!("_IO_list_resetlock");
    }
}
