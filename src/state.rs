//! memshim's global state: the heap, the frame manager and the page hooks
//! behind the one global lock, the lock-free part of the heap beside it,
//! and the fork policy that keeps both consistent across `fork()`.

use crate::frames::FrameManager;
use crate::heap::{Heap, Shared};
use crate::source::{arena, hooks::PageHooks, Chain, SpanKind};
use crate::sync::Locked;

/// Everything behind the global lock.
pub struct State {
    /// The heap's back end, its own slabs and the registry of caches.
    pub heap: Heap,
    /// The physical frame manager (inactive until initialised).
    pub frames: FrameManager,
    /// `memshim_set_page_hooks`.
    pub hooks: PageHooks,
    arena_added: bool,
}

/// What the heap's fast paths read without the lock.
pub static SHARED: Shared = Shared::new();

/// The global state. Use [`with`], which also sets up fork handling.
pub static STATE: Locked<State> = Locked::new(State {
    heap: Heap::new(&SHARED),
    frames: FrameManager::new(),
    hooks: PageHooks::none(),
    arena_added: false,
});

/// Runs `f` with the global state, under the global lock.
#[inline]
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    // Outside the lock: pthread_atfork may itself allocate.
    #[cfg(target_os = "linux")]
    fork::register_once();
    STATE.with(f)
}

impl State {
    /// The heap and the source chain it grows from. The first call hands the
    /// static arena to the heap, so malloc works before any init call.
    #[inline]
    pub fn heap(&mut self) -> (&mut Heap, Chain<'_>) {
        let mut chain = Chain {
            frames: &mut self.frames,
            hooks: &self.hooks,
        };
        if !self.arena_added {
            self.arena_added = true;
            let (base, len) = arena::take();
            if len > 0 {
                // SAFETY: the arena is static memory owned by nobody else,
                // handed over exactly once (guarded by `arena_added`).
                let _ = unsafe { self.heap.add_span(base, len, SpanKind::Arena, &mut chain) };
            }
        }
        (&mut self.heap, chain)
    }
}

/// Fork safety on the host: the global lock is held across `fork()` so the
/// child inherits a consistent heap; in the child, the caches of threads
/// that do not exist there give their slabs back.
#[cfg(target_os = "linux")]
mod fork {
    use super::STATE;
    use core::sync::atomic::{AtomicBool, Ordering};

    static REGISTERED: AtomicBool = AtomicBool::new(false);
    /// Whether `prepare` took the lock (it does not when the forking thread
    /// already holds it, i.e. fork from a signal handler that interrupted malloc).
    static TAKEN: AtomicBool = AtomicBool::new(false);

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
        TAKEN.store(STATE.fork_prepare(), Ordering::Relaxed);
    }

    unsafe extern "C" fn parent() {
        STATE.fork_release(TAKEN.load(Ordering::Relaxed), false);
    }

    unsafe extern "C" fn child() {
        let taken = TAKEN.load(Ordering::Relaxed);
        STATE.fork_release(taken, true);
        // Only one thread exists here: the caches of the others are dormant
        // now. (Not when the fork interrupted memshim itself: that call
        // resumes after the handler and owns the heap or its cache.)
        if let (true, Some(mine)) = (taken, crate::local::current_address()) {
            STATE.with(|s| {
                let (heap, mut src) = s.heap();
                heap.detach_all_but(&mut src, mine)
            });
        }
    }
}
