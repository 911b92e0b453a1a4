//! The TLSF back end: blocks above the small-object classes, the memory
//! slabs are carved from, and every small request when no slab can be had.
//!
//! * `alloc` and `free` take bounded time whatever the heap size or
//!   fragmentation: two bit scans find a fitting class ([`index`]); the
//!   previous block is found through its footer, never by a search.
//! * Blocks are coalesced with both neighbours immediately; splits leave a
//!   remainder of at least [`MIN_BLOCK`]; realloc grows into a free
//!   neighbour and shrinks in place.
//! * Every header carries a check word ([`block`]). A pointer, and every
//!   neighbour it leads to, is validated against its span before anything
//!   is written: a size that would reach past the span, a footer that does
//!   not match, or a link that does not point back is a [`Fault`], never
//!   followed. A free-list head that fails its check takes its whole class
//!   out of service (reported once) rather than jamming it.
//!
//! Spans are found through the page map (`super::spans::span_of`); the
//! TLSF itself never asks a source for memory.

mod block;
mod index;

pub(crate) use block::{block_size_for, Header, ALIGN, HDR, MAX_BLOCK, MIN_BLOCK};

use super::pagemap::PageMap;
use super::spans::{span_of, Span};
use super::Fault;
use core::ptr;
use index::{FL_COUNT, SL_COUNT};

/// The free lists and their bitmaps.
pub struct Tlsf {
    fl_bitmap: u64,
    sl_bitmap: [u32; FL_COUNT],
    lists: [[*mut Header; SL_COUNT]; FL_COUNT],
    /// The check-word secret (odd; 0 until seeded).
    pub secret: usize,
    /// Bytes in free blocks (whole blocks).
    pub free_bytes: usize,
    /// Usable bytes of user blocks (internal blocks not counted).
    pub used_bytes: usize,
    /// User blocks.
    pub used_blocks: usize,
    /// Bytes of internal blocks (slabs, carved metadata), whole blocks.
    pub internal_bytes: usize,
    /// Free lists taken out of service after a failed check.
    pub quarantined: usize,
    /// A fault met while searching (a quarantined list), for the caller to
    /// report once the lock is released.
    pub fault: Option<Fault>,
}

// SAFETY: the TLSF owns the blocks its pointers refer to; it is only used
// under the heap lock (or exclusively, in tests).
unsafe impl Send for Tlsf {}

impl Default for Tlsf {
    fn default() -> Self {
        Self::new()
    }
}

/// A validated used block and the span that holds it.
pub struct Used<'a> {
    /// The block's header.
    pub b: *mut Header,
    /// Its span.
    pub span: &'a Span,
}

impl Tlsf {
    /// No blocks.
    pub const fn new() -> Self {
        Self {
            fl_bitmap: 0,
            sl_bitmap: [0; FL_COUNT],
            lists: [[ptr::null_mut(); SL_COUNT]; FL_COUNT],
            secret: 0,
            free_bytes: 0,
            used_bytes: 0,
            used_blocks: 0,
            internal_bytes: 0,
            quarantined: 0,
            fault: None,
        }
    }

    /// Writes a fresh span's one free block and its sentinel and files the
    /// block.
    ///
    /// # Safety
    /// `span` describes writable memory nothing else uses, at least
    /// `HDR + MIN_BLOCK` long, 16-aligned.
    pub unsafe fn add_span(&mut self, span: &Span) {
        let first = core::ptr::with_exposed_provenance_mut::<Header>(span.base);
        let size = span.len - HDR;
        // SAFETY: per the contract the whole span is ours to write.
        unsafe {
            block::write_free(first, size, false, self.secret);
            block::write_sentinel(first.byte_add(size), true, self.secret);
            self.insert(first);
        }
    }

    /// Takes a wholly free span's one block out of the lists (before the
    /// span goes back to its source). `Ok(false)`: the span holds more than
    /// one free block; a fault: its block or its links fail their checks
    /// (nothing is changed: the span stays).
    ///
    /// # Safety
    /// `span` is a live span of this heap.
    pub unsafe fn remove_span(&mut self, map: &PageMap, span: &Span) -> Result<bool, Fault> {
        let first = core::ptr::with_exposed_provenance_mut::<Header>(span.base);
        let user = span.base + HDR;
        // SAFETY: the first header lies at the span's base; the block and its
        // links are checked before the unlink writes through them.
        unsafe {
            if !block::valid(first, self.secret)
                || !block::is_free(first)
                || block::size(first) != span.len - HDR
            {
                return Ok(false);
            }
            self.check_free(first, span, user)?;
            self.check_links(map, span, first, user)?;
            self.unlink(first);
        }
        Ok(true)
    }

    // ---- free lists -------------------------------------------------------

    /// Files free block `b` under its class.
    ///
    /// # Safety
    /// `b` is a valid free block not in any list.
    unsafe fn insert(&mut self, b: *mut Header) {
        // SAFETY: `b` is a valid free block (contract); the list head is one too.
        unsafe {
            let size = block::size(b);
            let (fl, sl) = index::class_of(size);
            let head = self.lists[fl][sl];
            (*block::links(b)).next = head;
            (*block::links(b)).prev = ptr::null_mut();
            if !head.is_null() {
                (*block::links(head)).prev = b;
            }
            self.lists[fl][sl] = b;
            self.fl_bitmap |= 1 << fl;
            self.sl_bitmap[fl] |= 1 << sl;
            self.free_bytes += size;
        }
    }

    /// Whether `b` is a plausible header address: aligned and inside a
    /// span's block area.
    fn in_heap(map: &PageMap, b: *mut Header) -> bool {
        b.addr() % ALIGN == 0 && span_of(map, b.addr()).is_some_and(|s| s.holds(b.addr()))
    }

    /// [`Tlsf::in_heap`], answered without the page map when `b` lies in
    /// `near`'s block area (free-list neighbours mostly share a span).
    #[inline]
    fn in_heap_near(map: &PageMap, near: &Span, b: *mut Header) -> bool {
        (near.holds(b.addr()) && b.addr() % ALIGN == 0) || Self::in_heap(map, b)
    }

    /// Verifies free block `b` inside `span`: its header, a size that stays
    /// inside the span, its footer, and a successor that knows it is free.
    ///
    /// # Safety
    /// `b` is a readable header inside `span`'s block area.
    unsafe fn check_free(&self, b: *mut Header, span: &Span, user: usize) -> Result<(), Fault> {
        let bad = |at: usize| Fault::Corrupted { block: user, at };
        // SAFETY: `b` is readable; its footer and successor are read only
        // after its size is proven to keep them inside the span.
        unsafe {
            if !block::valid(b, self.secret) || !block::is_free(b) {
                return Err(bad(b.addr()));
            }
            let size = block::size(b);
            if size < MIN_BLOCK || b.addr() + size > span.sentinel() {
                return Err(bad(b.addr()));
            }
            let next = block::next_phys(b);
            if block::footer_before(next) != size {
                return Err(bad(next.addr() - 8));
            }
            if !block::valid(next, self.secret) || !block::prev_free(next) || block::is_free(next) {
                return Err(bad(next.addr()));
            }
        }
        Ok(())
    }

    /// Verifies that free block `b` and its list neighbours are intact, so
    /// [`Tlsf::unlink`] writes only into real free blocks.
    ///
    /// # Safety
    /// `b` passed [`Tlsf::check_free`].
    unsafe fn check_links(
        &self,
        map: &PageMap,
        span: &Span,
        b: *mut Header,
        user: usize,
    ) -> Result<(), Fault> {
        let bad = || Fault::Corrupted {
            block: user,
            at: b.addr(),
        };
        // SAFETY: `b` is a verified free block; neighbours are read only
        // after `in_heap` proves them inside a span.
        unsafe {
            let l = block::links(b);
            let (next, prev) = ((*l).next, (*l).prev);
            if !next.is_null()
                && (!Self::in_heap_near(map, span, next)
                    || !block::valid(next, self.secret)
                    || !block::is_free(next)
                    || (*block::links(next)).prev != b)
            {
                return Err(bad());
            }
            let (fl, sl) = index::class_of(block::size(b));
            if prev.is_null() {
                if self.lists[fl][sl] != b {
                    return Err(bad());
                }
            } else if !Self::in_heap_near(map, span, prev)
                || !block::valid(prev, self.secret)
                || !block::is_free(prev)
                || (*block::links(prev)).next != b
            {
                return Err(bad());
            }
        }
        Ok(())
    }

    /// Takes free block `b` out of its list.
    ///
    /// # Safety
    /// `check_links(b)` succeeded and nothing changed since.
    unsafe fn unlink(&mut self, b: *mut Header) {
        // SAFETY: links were verified by check_links.
        unsafe {
            let size = block::size(b);
            let (fl, sl) = index::class_of(size);
            let l = block::links(b);
            let (next, prev) = ((*l).next, (*l).prev);
            if prev.is_null() {
                self.lists[fl][sl] = next;
            } else {
                (*block::links(prev)).next = next;
            }
            if !next.is_null() {
                (*block::links(next)).prev = prev;
            }
            if self.lists[fl][sl].is_null() {
                self.clear_class(fl, sl);
            }
            self.free_bytes -= size;
        }
    }

    fn clear_class(&mut self, fl: usize, sl: usize) {
        self.sl_bitmap[fl] &= !(1 << sl);
        if self.sl_bitmap[fl] == 0 {
            self.fl_bitmap &= !(1 << fl);
        }
    }

    /// Finds and unlinks a free block of at least `size` bytes, in O(1). A
    /// head that fails its checks takes its class out of service (recorded
    /// in `fault`), and the search goes on.
    fn take_fit(&mut self, map: &PageMap, size: usize) -> Option<*mut Header> {
        loop {
            let (fl, sl, exact) = match self.class_with_fit(size) {
                Some((fl, sl)) => (fl, sl, false),
                None => {
                    // Rounding up skips the class `size` itself falls in; its
                    // head may still be big enough (one look, still O(1)),
                    // which lets a request use nearly all of a large block.
                    let (fl, sl) = index::class_of(size);
                    if fl >= FL_COUNT || self.lists[fl][sl].is_null() {
                        return None;
                    }
                    (fl, sl, true)
                }
            };
            let b = self.lists[fl][sl];
            if self.verify_head(map, b).is_err() {
                self.quarantine(fl, sl);
                continue;
            }
            // SAFETY: verified just before.
            if exact && unsafe { block::size(b) } < size {
                return None;
            }
            // SAFETY: verified just before.
            unsafe { self.unlink(b) };
            return Some(b);
        }
    }

    fn verify_head(&self, map: &PageMap, b: *mut Header) -> Result<(), Fault> {
        let user = b.addr().wrapping_add(HDR);
        let span = span_of(map, b.addr())
            .filter(|s| s.holds(b.addr()) && b.addr() % ALIGN == 0)
            .ok_or(Fault::Corrupted {
                block: user,
                at: b.addr(),
            })?;
        // SAFETY: `b` is inside the span's block area.
        unsafe {
            self.check_free(b, span, user)?;
            self.check_links(map, span, b, user)
        }
    }

    /// Takes class (fl, sl) out of service: its head failed a check, so
    /// nothing in the list can be trusted. The blocks stay unused (and
    /// `memshim_check` keeps counting them as a problem).
    fn quarantine(&mut self, fl: usize, sl: usize) {
        let head = self.lists[fl][sl];
        self.lists[fl][sl] = ptr::null_mut();
        self.clear_class(fl, sl);
        self.quarantined += 1;
        if self.fault.is_none() {
            self.fault = Some(Fault::Corrupted {
                block: head.addr().wrapping_add(HDR),
                at: head.addr(),
            });
        }
    }

    /// The lowest non-empty class whose blocks are all at least `size`.
    fn class_with_fit(&self, size: usize) -> Option<(usize, usize)> {
        let (fl, sl) = index::class_for_request(size)?;
        let sl_map = self.sl_bitmap[fl] & (!0u32 << sl);
        if sl_map != 0 {
            return Some((fl, sl_map.trailing_zeros() as usize));
        }
        let fl_map = self.fl_bitmap & (!0u64).checked_shl(fl as u32 + 1).unwrap_or(0);
        if fl_map == 0 {
            return None;
        }
        let fl = fl_map.trailing_zeros() as usize;
        Some((fl, self.sl_bitmap[fl].trailing_zeros() as usize))
    }

    // ---- allocation -------------------------------------------------------

    /// The free-block size to search for a block of `bsize` bytes aligned
    /// to `align`: room for the alignment and for a free block in front.
    pub fn search_size(bsize: usize, align: usize) -> Option<usize> {
        if align <= ALIGN {
            return Some(bsize);
        }
        bsize
            .checked_add(align)?
            .checked_add(MIN_BLOCK)
            .filter(|&s| s <= MAX_BLOCK)
    }

    /// Allocates a block of `bsize` bytes (from `block_size_for`) whose
    /// payload is aligned to `align`, from the free lists only. `None` when
    /// nothing fits (the caller grows the heap).
    pub fn alloc(
        &mut self,
        map: &PageMap,
        bsize: usize,
        align: usize,
        internal: bool,
    ) -> Option<*mut Header> {
        let search = Self::search_size(bsize, align)?;
        let b = self.take_fit(map, search)?;
        // SAFETY: `b` is a verified free block of at least `search` bytes, out of every list.
        unsafe {
            let b = if align > ALIGN {
                self.align_front(b, align)
            } else {
                b
            };
            self.carve(b, bsize, internal);
            Some(b)
        }
    }

    /// As [`Tlsf::alloc`], from the one free block of `span` (just added).
    ///
    /// # Safety
    /// `span` is a live span of this heap whose first block is free.
    pub unsafe fn alloc_in(
        &mut self,
        map: &PageMap,
        span: &Span,
        bsize: usize,
        align: usize,
        internal: bool,
    ) -> Option<*mut Header> {
        let search = Self::search_size(bsize, align)?;
        let b = core::ptr::with_exposed_provenance_mut::<Header>(span.base);
        // SAFETY: the span's first header is readable; it and its links are
        // checked before the unlink writes.
        unsafe {
            let user = b.addr() + HDR;
            self.check_free(b, span, user).ok()?;
            self.check_links(map, span, b, user).ok()?;
            if block::size(b) < search {
                return None;
            }
            self.unlink(b);
            let b = if align > ALIGN {
                self.align_front(b, align)
            } else {
                b
            };
            self.carve(b, bsize, internal);
            Some(b)
        }
    }

    /// Cuts a free block off the front of `b` so the payload after it is
    /// aligned to `align`; returns the aligned block (unlisted).
    ///
    /// # Safety
    /// `b` is an unlisted free block of at least `size + align + MIN_BLOCK`.
    unsafe fn align_front(&mut self, b: *mut Header, align: usize) -> *mut Header {
        let payload = b.addr() + HDR;
        let mut aligned = (payload + align - 1) & !(align - 1);
        if aligned != payload {
            while aligned - payload < MIN_BLOCK {
                aligned += align;
            }
        }
        let gap = aligned - payload;
        if gap == 0 {
            return b;
        }
        // SAFETY: the gap and the rest lie inside `b` (size >= gap + size needed).
        unsafe {
            let size = block::size(b);
            let nb = b.byte_add(gap);
            block::write_free(b, gap, block::prev_free(b), self.secret);
            block::write_free(nb, size - gap, true, self.secret);
            self.insert(b);
            nb
        }
    }

    /// Marks unlisted free block `b` used with size `bsize`, returning any
    /// tail of at least `MIN_BLOCK` to the free lists.
    ///
    /// # Safety
    /// `b` is an unlisted free block of at least `bsize` bytes whose
    /// physical successor is a used block or the sentinel.
    unsafe fn carve(&mut self, b: *mut Header, bsize: usize, internal: bool) {
        let secret = self.secret;
        // SAFETY: `b` and its successor are valid headers inside one span.
        unsafe {
            let size = block::size(b);
            let pf = block::prev_free(b);
            let size = if size - bsize >= MIN_BLOCK {
                let rest = b.byte_add(bsize);
                block::write_free(rest, size - bsize, false, secret);
                self.insert(rest);
                bsize
            } else {
                block::set_prev_free(block::next_phys(b), false, secret);
                size
            };
            block::write_used(b, size, pf, internal, secret);
            if internal {
                self.internal_bytes += size;
            } else {
                self.used_bytes += size - HDR;
                self.used_blocks += 1;
            }
        }
    }

    // ---- validation -------------------------------------------------------

    /// Checks that `p` is a live user block (payload pointer) of this heap
    /// and that its neighbours' metadata is intact. Writes nothing.
    pub fn validate_used<'m>(&self, map: &'m PageMap, p: usize) -> Result<Used<'m>, Fault> {
        let h = p.checked_sub(HDR).ok_or(Fault::InvalidPointer(p))?;
        let span = span_of(map, h).ok_or(Fault::InvalidPointer(p))?;
        self.validate_used_in(map, p, span)
    }

    /// [`Tlsf::validate_used`] with the span of `p`'s page known. (A block's
    /// header can lie in the page before its payload, in the same span: the
    /// span's own bounds decide.)
    pub fn validate_used_in<'s>(
        &self,
        map: &PageMap,
        p: usize,
        span: &'s Span,
    ) -> Result<Used<'s>, Fault> {
        if p % ALIGN != 0 {
            return Err(Fault::InvalidPointer(p));
        }
        let h = p.checked_sub(HDR).ok_or(Fault::InvalidPointer(p))?;
        if !span.holds(h) {
            return Err(Fault::InvalidPointer(p));
        }
        let b = core::ptr::with_exposed_provenance_mut::<Header>(h);
        // SAFETY: `b` is readable (inside a span's block area).
        unsafe {
            if block::is_stale(b) {
                return Err(Fault::DoubleFree(p));
            }
            if !block::valid(b, self.secret) || block::is_internal(b) {
                return Err(Fault::InvalidPointer(p));
            }
            if block::is_free(b) {
                return Err(Fault::DoubleFree(p));
            }
            self.check_neighbours(map, b, span, p)?;
        }
        Ok(Used { b, span })
    }

    /// Checks the heap's own block `b` (a slab's memory, or carved
    /// metadata) of `size` bytes in `span`, and its neighbours, before it is
    /// freed: its header can be reached by an overrun of the block before
    /// it, so it is trusted no more than a user's. Writes nothing.
    ///
    /// # Safety
    /// `b` is a header address the heap computed for one of its own blocks.
    pub unsafe fn validate_internal(
        &self,
        map: &PageMap,
        b: *mut Header,
        span: &Span,
        size: usize,
    ) -> Result<(), Fault> {
        let user = b.addr() + HDR;
        let bad = Fault::Corrupted {
            block: user,
            at: b.addr(),
        };
        if !span.holds(b.addr()) || b.addr() % ALIGN != 0 {
            return Err(bad);
        }
        // SAFETY: `b` is inside the span's block area (checked).
        unsafe {
            if !block::valid(b, self.secret)
                || !block::is_internal(b)
                || block::is_free(b)
                || block::size(b) != size
            {
                return Err(bad);
            }
            self.check_neighbours(map, b, span, user)
        }
    }

    /// The checks every free runs on a used block `b` and its neighbours
    /// before anything is written: its size stays inside the span, the next
    /// header is intact and knows `b` is used, a free block before it has a
    /// footer, header and links that agree, and so does a free one after.
    ///
    /// # Safety
    /// `b` is a valid used header inside `span`'s block area.
    unsafe fn check_neighbours(
        &self,
        map: &PageMap,
        b: *mut Header,
        span: &Span,
        user: usize,
    ) -> Result<(), Fault> {
        let secret = self.secret;
        // SAFETY: the successor is read only after the size is proven to
        // keep it inside the span; the neighbours' checks bound themselves.
        unsafe {
            let size = block::size(b);
            if size < MIN_BLOCK || b.addr() + size > span.sentinel() {
                return Err(Fault::Corrupted {
                    block: user,
                    at: b.addr(),
                });
            }
            let next = block::next_phys(b);
            if !block::valid(next, secret) || block::prev_free(next) {
                return Err(Fault::Corrupted {
                    block: user,
                    at: next.addr(),
                });
            }
            if block::prev_free(b) {
                self.check_prev(map, b, span, user)?;
            }
            if block::is_free(next) {
                self.check_free(next, span, user)?;
                self.check_links(map, span, next, user)?;
            }
        }
        Ok(())
    }

    /// The free block before `b` (whose header says `PREV_FREE`), verified.
    ///
    /// # Safety
    /// `b` is a valid header inside `span`.
    unsafe fn check_prev(
        &self,
        map: &PageMap,
        b: *mut Header,
        span: &Span,
        user: usize,
    ) -> Result<*mut Header, Fault> {
        // SAFETY: the footer slot is the 8 bytes before `b`, inside the span
        // when `b` is not its first block (checked first); `prev` is read only
        // once proven to start inside the span.
        unsafe {
            if b.addr() < span.base + MIN_BLOCK {
                return Err(Fault::Corrupted {
                    block: user,
                    at: b.addr(),
                });
            }
            let psize = block::footer_before(b);
            if psize < MIN_BLOCK || psize % ALIGN != 0 || b.addr() - span.base < psize {
                return Err(Fault::Corrupted {
                    block: user,
                    at: b.addr() - 8,
                });
            }
            let prev = b.byte_sub(psize);
            if block::size(prev) != psize {
                return Err(Fault::Corrupted {
                    block: user,
                    at: prev.addr(),
                });
            }
            self.check_free(prev, span, user)?;
            self.check_links(map, span, prev, user)?;
            Ok(prev)
        }
    }

    // ---- free -------------------------------------------------------------

    /// Frees validated block `b` of `span`, merging with free neighbours.
    /// Returns whether the span is now one free block.
    ///
    /// # Safety
    /// `b` came from `validate_used` (a user block) or `validate_internal`
    /// (the heap's own), and nothing changed since.
    pub unsafe fn free(&mut self, b: *mut Header, span: &Span) -> bool {
        let secret = self.secret;
        // SAFETY: `b`, its neighbours and their links were verified.
        unsafe {
            let mut start = b;
            let bsize = block::size(b);
            let mut size = bsize;
            if block::is_internal(b) {
                self.internal_bytes -= bsize;
            } else {
                self.used_bytes -= bsize - HDR;
                self.used_blocks -= 1;
            }
            if block::prev_free(b) {
                let prev = b.byte_sub(block::footer_before(b));
                self.unlink(prev);
                start = prev;
                size += block::size(prev);
            }
            let next = block::next_phys(b);
            if block::is_free(next) {
                self.unlink(next);
                size += block::size(next);
                block::write_stale(next);
            }
            if start != b {
                // Absorbed: a second free of `p` is named a double free.
                block::write_stale(b);
            }
            block::write_free(start, size, false, secret);
            let after = block::next_phys(start);
            block::set_prev_free(after, true, secret);
            self.insert(start);
            start.addr() == span.base && block::size(after) == 0
        }
    }

    // ---- realloc ----------------------------------------------------------

    /// Resizes validated block `b` in place to `want` bytes (from
    /// `block_size_for`): shrinking, or growing into a free successor.
    /// Returns false (and changes nothing) when it cannot.
    ///
    /// # Safety
    /// `b` came from `validate_used` and nothing changed since.
    pub unsafe fn resize_in_place(&mut self, b: *mut Header, want: usize) -> bool {
        let secret = self.secret;
        // SAFETY: `b`, its successor and the links were verified.
        unsafe {
            let cur = block::size(b);
            if want > cur {
                let next = block::next_phys(b);
                if !block::is_free(next) || cur + block::size(next) < want {
                    return false;
                }
                self.unlink(next);
                let merged = cur + block::size(next);
                block::write_stale(next);
                block::write_used(b, merged, block::prev_free(b), false, secret);
                block::set_prev_free(block::next_phys(b), false, secret);
                self.used_bytes += merged - cur;
            }
            self.shrink_used(b, want);
        }
        true
    }

    /// Shrinks used block `b` to `want` bytes if the cut-off tail can form a
    /// block; the tail merges with a free successor.
    ///
    /// # Safety
    /// `b` is a used block of at least `want` bytes; if its successor is
    /// free, its links were verified.
    unsafe fn shrink_used(&mut self, b: *mut Header, want: usize) {
        let secret = self.secret;
        // SAFETY: all headers touched lie inside `b`'s span (contract).
        unsafe {
            let cur = block::size(b);
            if cur - want < MIN_BLOCK {
                return;
            }
            let next = block::next_phys(b);
            let mut rest_size = cur - want;
            if block::is_free(next) {
                self.unlink(next);
                rest_size += block::size(next);
                block::write_stale(next);
            }
            block::write_used(b, want, block::prev_free(b), false, secret);
            let rest = b.byte_add(want);
            block::write_free(rest, rest_size, false, secret);
            block::set_prev_free(block::next_phys(rest), true, secret);
            self.insert(rest);
            self.used_bytes -= cur - want;
        }
    }

    /// Usable bytes of validated block `b`.
    ///
    /// # Safety
    /// `b` came from `validate_used`.
    pub unsafe fn usable(b: *mut Header) -> usize {
        // SAFETY: a validated header.
        unsafe { block::size(b) - HDR }
    }
}

pub mod check;
