//! Out-of-band metadata: the pages that hold page-map nodes, span records,
//! slab descriptors and caches.
//!
//! Metadata never lives inside a user block, so no write into user memory
//! can redirect where memory goes. Its pages come in chunks from the heap's
//! page source (mmap, frames, page hooks), apart from every span of user
//! blocks. Before any source exists (a kernel running on its static arena
//! alone, or a caller region), a chunk is carved from a span as one marked
//! TLSF block: the one place metadata sits next to user memory. Metadata is
//! never given back; it grows with the peak number of slabs and spans
//! (about 3 % of slab memory, 0.2 % of span memory).

use super::pagemap::PAGE;
use core::ptr;

/// Bytes of metadata asked from a page source at once.
pub(crate) const CHUNK: usize = 64 * 1024;
/// Bytes carved from a span when no source can grow.
pub(crate) const CARVED_CHUNK: usize = PAGE;

/// The page supply: a bump pointer over the current chunk.
pub struct Meta {
    next: usize,
    end: usize,
    /// Bytes of metadata chunks held.
    pub bytes: usize,
    /// Chunks held.
    pub chunks: usize,
}

impl Meta {
    /// No metadata yet.
    pub const fn new() -> Self {
        Self {
            next: 0,
            end: 0,
            bytes: 0,
            chunks: 0,
        }
    }

    /// A zeroed, page-aligned metadata page, or `None` when the current
    /// chunk is used up (the caller then adds one).
    pub fn page(&mut self) -> Option<*mut u8> {
        if self.next == self.end {
            return None;
        }
        let p = ptr::with_exposed_provenance_mut::<u8>(self.next);
        self.next += PAGE;
        // SAFETY: the page lies in a chunk handed over by `add_chunk`, which
        // nothing else uses, and it has not been handed out before.
        unsafe { ptr::write_bytes(p, 0, PAGE) };
        Some(p)
    }

    /// Pages left in the current chunk.
    pub fn available(&self) -> usize {
        (self.end - self.next) / PAGE
    }

    /// Takes `base..base+len` (page-aligned) as the current chunk; whatever
    /// was left of the previous one is dropped (at most a few pages).
    ///
    /// # Safety
    /// The range is writable memory that nothing else will ever use.
    pub unsafe fn add_chunk(&mut self, base: *mut u8, len: usize) {
        debug_assert!(base.addr() % PAGE == 0 && len % PAGE == 0);
        // Records are found again from addresses (the page map, free lists).
        self.next = base.expose_provenance();
        self.end = base.addr() + len;
        self.bytes += len;
        self.chunks += 1;
    }
}

impl Default for Meta {
    fn default() -> Self {
        Self::new()
    }
}

/// A free list of fixed-size metadata objects, carved from whole pages.
pub struct Pool {
    free: *mut Link,
    size: usize,
    /// Objects handed out and not returned.
    pub live: usize,
}

struct Link {
    next: *mut Link,
}

// SAFETY: the pool owns the metadata it links; it is used under the heap lock.
unsafe impl Send for Pool {}

impl Pool {
    /// A pool of objects of `size` bytes (a multiple of 64, at most a page).
    pub const fn new(size: usize) -> Self {
        assert!(size % 64 == 0 && size >= 64 && size <= PAGE);
        Self {
            free: ptr::null_mut(),
            size,
            live: 0,
        }
    }

    /// Whether taking an object needs a fresh page.
    pub fn is_empty(&self) -> bool {
        self.free.is_null()
    }

    /// An object (contents unspecified), or `None` if the pool is empty and
    /// `page` has no page to carve.
    pub fn take(&mut self, page: &mut dyn FnMut() -> Option<*mut u8>) -> Option<*mut u8> {
        if self.free.is_null() {
            let p = page()?;
            let n = PAGE / self.size;
            for k in (0..n).rev() {
                // SAFETY: `p` is a fresh page of `n` objects of `size` bytes,
                // each 64-aligned (>= the alignment of `Link`).
                unsafe {
                    let o = p.add(k * self.size).cast::<Link>();
                    o.write(Link { next: self.free });
                    self.free = o;
                }
            }
        }
        let o = self.free;
        // SAFETY: `o` is a linked free object of this pool.
        self.free = unsafe { (*o).next };
        self.live += 1;
        Some(o.cast())
    }

    /// Returns an object to the pool.
    ///
    /// # Safety
    /// `o` came from `take` on this pool and is no longer used.
    pub unsafe fn give(&mut self, o: *mut u8) {
        let l = o.cast::<Link>();
        // SAFETY: per the contract, `o` is an unused object of this pool.
        unsafe { l.write(Link { next: self.free }) };
        self.free = l;
        self.live -= 1;
    }
}
