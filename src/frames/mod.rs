//! Physical frame manager (placeholder; the frames issue fills this in).

use core::ptr::NonNull;

/// The frame manager. Inactive until initialised.
pub struct FrameManager {
    _private: (),
}

impl FrameManager {
    /// An uninitialised manager: every call fails or returns nothing.
    pub const fn new() -> Self {
        Self { _private: () }
    }

    /// Heap growth: `min` bytes (a multiple of 4096) of contiguous frames
    /// below `phys_limit`, as a virtual pointer through `phys_offset`.
    pub fn heap_grow(&mut self, _min: usize) -> Option<(NonNull<u8>, usize)> {
        None
    }

    /// Gives back a span `heap_grow` returned.
    ///
    /// # Safety
    /// The span must have come from `heap_grow` and be unused.
    pub unsafe fn heap_release(&mut self, _base: NonNull<u8>, _len: usize) -> bool {
        false
    }
}

impl FrameManager {
    /// (frames tracked, frames free); (0, 0) before init.
    pub fn counts(&self) -> (u64, u64) {
        (0, 0)
    }

    /// Verifies the bitmap against its counters; returns problems found.
    pub fn check(&self) -> usize {
        0
    }

    /// A bounded text summary.
    pub fn dump(&self, _out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        Ok(())
    }
}

impl Default for FrameManager {
    fn default() -> Self {
        Self::new()
    }
}
