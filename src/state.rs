//! memshim's global state: the heap, the frame manager and the page hooks
//! behind the one global lock, the lock-free part of the heap beside it,
//! and the fork policy that keeps both consistent across `fork()`.

use crate::frames::FrameManager;
use crate::heap::cache::Backend;
use crate::heap::{Heap, Shared};
use crate::source::Source;
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

/// Runs `f` with the global state, under the global lock. `None` when the
/// caller already holds the lock (a re-entrant call, reported through the
/// panic path): the call must then fail without touching the state.
#[inline]
pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> Option<R> {
    // Outside the lock: pthread_atfork may itself allocate.
    #[cfg(target_os = "linux")]
    crate::fork::register_once();
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

/// The global back end: the shared state and the heap under the global lock.
pub struct Global;

impl Backend for Global {
    #[inline(always)]
    fn shared(&self) -> &Shared {
        &SHARED
    }

    fn locked<R>(&self, f: impl FnOnce(&mut Heap, &mut dyn Source) -> R) -> Option<R> {
        let (r, fault) = with(|s| {
            let (heap, mut src) = s.heap();
            let r = f(heap, &mut src);
            (r, heap.take_fault())
        })?;
        if let Some(bad) = crate::source::hooks::take_misaligned() {
            crate::panic::report(format_args!(
                "page hook returned {bad:#x}, which is not page-aligned: given back with free_pages and not used"
            ));
        }
        if let Some(fault) = fault {
            crate::panic::report(format_args!("{fault}"));
        }
        Some(r)
    }
}
