//! Where the heap gets memory.
//!
//! The heap asks a [`Source`] for spans of pages when it runs out and hands
//! whole free spans back. Sources, in the order they are tried:
//!
//! 1. the frame manager, once `memshim_init_multiboot`/`memshim_frames_init`
//!    has run (contiguous frames below `phys_limit`, through `phys_offset`);
//! 2. the caller's page hooks (`memshim_set_page_hooks`), liballoc-style;
//! 3. `mmap` on a Linux host.
//!
//! Two more kinds of span never come from a `Source` and are never given
//! back: the static `.bss` arena (`arena`) and caller regions
//! (`memshim_add_region`).
//!
//! The hazard every source must respect: it runs while the global lock is
//! held, so it must never call back into memshim (no malloc in a page hook).

pub mod arena;
pub mod hooks;
#[cfg(target_os = "linux")]
pub mod mmap;

use core::ptr::NonNull;

/// Page size the heap grows by.
pub const PAGE: usize = 4096;

/// Where a span of heap memory came from, recorded in the span so it can
/// be given back to the same source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SpanKind {
    /// The static `.bss` arena. Never returned.
    Arena = 0,
    /// `memshim_add_region`. Never returned.
    Region = 1,
    /// `memshim_set_page_hooks`.
    PageHooks = 2,
    /// Host `mmap`.
    Mmap = 3,
    /// The frame manager.
    Frames = 4,
}

impl SpanKind {
    /// Whether spans of this kind go back to their source when wholly free.
    pub const fn returnable(self) -> bool {
        matches!(
            self,
            SpanKind::PageHooks | SpanKind::Mmap | SpanKind::Frames
        )
    }
}

/// A supplier of page spans for the heap.
pub trait Source {
    /// Returns a span of at least `min` bytes (`min` is a multiple of
    /// [`PAGE`]), page-aligned, or `None` when no memory is left.
    fn grow(&mut self, min: usize) -> Option<(NonNull<u8>, usize, SpanKind)>;

    /// Takes back a span that `grow` returned with this `kind`, or the end
    /// of one (the heap keeps a span's first pages for good when they
    /// became its metadata; never for [`SpanKind::PageHooks`]). Returns
    /// `false` if the span cannot be given back (the heap then keeps it).
    ///
    /// # Safety
    /// `base`/`len`/`kind` must describe exactly one span obtained from
    /// `grow` on this source, or its end, and no longer used by anyone.
    unsafe fn shrink(&mut self, base: NonNull<u8>, len: usize, kind: SpanKind) -> bool;
}

/// A source that never has memory (heap tests, and the fixed-size case).
pub struct NoSource;

impl Source for NoSource {
    fn grow(&mut self, _min: usize) -> Option<(NonNull<u8>, usize, SpanKind)> {
        None
    }
    unsafe fn shrink(&mut self, _base: NonNull<u8>, _len: usize, _kind: SpanKind) -> bool {
        false
    }
}

/// The chain the global heap grows from: frames, then page hooks, then mmap.
pub struct Chain<'a> {
    /// The frame manager (used only once initialised).
    pub frames: &'a mut crate::frames::FrameManager,
    /// The caller's page hooks, if set.
    pub hooks: &'a hooks::PageHooks,
}

impl Source for Chain<'_> {
    fn grow(&mut self, min: usize) -> Option<(NonNull<u8>, usize, SpanKind)> {
        if let Some((p, len)) = self.frames.heap_grow(min) {
            return Some((p, len, SpanKind::Frames));
        }
        if let Some((p, len)) = self.hooks.grow(min) {
            return Some((p, len, SpanKind::PageHooks));
        }
        #[cfg(target_os = "linux")]
        if let Some((p, len)) = mmap::grow(min) {
            return Some((p, len, SpanKind::Mmap));
        }
        None
    }

    unsafe fn shrink(&mut self, base: NonNull<u8>, len: usize, kind: SpanKind) -> bool {
        match kind {
            // SAFETY: forwarded caller contract: the span came from this source.
            SpanKind::Frames => unsafe { self.frames.heap_release(base, len) },
            // SAFETY: as above.
            SpanKind::PageHooks => unsafe { self.hooks.shrink(base, len) },
            #[cfg(target_os = "linux")]
            // SAFETY: as above.
            SpanKind::Mmap => unsafe { mmap::shrink(base, len) },
            _ => false,
        }
    }
}
