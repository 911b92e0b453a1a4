//! memshim's global state: the heap, the frame manager and the page hooks,
//! behind the one global lock.

use crate::frames::FrameManager;
use crate::heap::Heap;
use crate::source::{arena, hooks::PageHooks, Chain, SpanKind};
use crate::sync::Locked;

/// Everything behind the global lock.
pub struct State {
    /// The byte allocator.
    pub heap: Heap,
    /// The physical frame manager (inactive until initialised).
    pub frames: FrameManager,
    /// `memshim_set_page_hooks`.
    pub hooks: PageHooks,
    arena_added: bool,
}

/// The global state.
pub static STATE: Locked<State> = Locked::new(State {
    heap: Heap::new(),
    frames: FrameManager::new(),
    hooks: PageHooks::none(),
    arena_added: false,
});

impl State {
    /// The heap and the source chain it grows from. The first call hands the
    /// static arena to the heap, so malloc works before any init call.
    #[inline]
    pub fn heap(&mut self) -> (&mut Heap, Chain<'_>) {
        if !self.arena_added {
            self.arena_added = true;
            let (base, len) = arena::take();
            if len > 0 {
                // SAFETY: the arena is static memory owned by nobody else,
                // handed over exactly once (guarded by `arena_added`).
                let _ = unsafe { self.heap.add_span(base, len, SpanKind::Arena) };
            }
        }
        (
            &mut self.heap,
            Chain {
                frames: &mut self.frames,
                hooks: &self.hooks,
            },
        )
    }
}
