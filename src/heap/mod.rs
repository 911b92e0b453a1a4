//! The byte allocator: a TLSF index over boundary-tagged blocks.
//!
//! * `alloc` and `free` take bounded time whatever the heap size or
//!   fragmentation: two bit scans find a fitting class ([`tlsf`]); the
//!   previous block is found through its footer, never by a search.
//! * Blocks are coalesced with both neighbours immediately; splits leave a
//!   remainder of at least [`MIN_BLOCK`]; realloc grows into a free
//!   neighbour and shrinks in place.
//! * Every header carries a check word ([`block`]); a pointer is validated
//!   before anything is written, so a double free, a foreign or interior
//!   pointer, or an overwritten header becomes a [`Fault`], not corruption.
//! * Memory comes in spans (the static arena, caller regions, pages from a
//!   [`Source`]); a span that becomes wholly free goes back to its source.
//!
//! The heap itself does no locking; `crate::state` wraps it in the global lock.

mod block;
mod check;
mod tlsf;

#[cfg(test)]
mod tests;

use crate::error::Error;
use crate::source::{Source, SpanKind, PAGE};
use block::{Header, HDR};
/// Every block is aligned to this (`max_align_t`).
pub const MIN_ALIGN: usize = block::ALIGN;
pub(crate) use block::MIN_BLOCK;
use core::fmt;
use core::ptr::{self, NonNull};
use tlsf::{FL_COUNT, SL_COUNT};

/// Smallest span the heap asks a source for.
const GROW_MIN: usize = 128 * 1024;

/// Heap counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in live blocks (their usable sizes).
    pub in_use: usize,
    /// Bytes in free blocks (whole blocks, headers included).
    pub free: usize,
    /// Bytes in all spans the heap holds.
    pub mapped: usize,
    /// Highest `in_use` seen.
    pub peak_in_use: usize,
    /// Live blocks.
    pub live: usize,
    /// Spans held.
    pub spans: usize,
    /// Successful allocations since start.
    pub total_allocs: u64,
    /// Frees since start.
    pub total_frees: u64,
}

/// A misuse or corruption found when a block was touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The block at this address was already free.
    DoubleFree(usize),
    /// Not a pointer memshim returned: outside the heap, misaligned, or no
    /// valid header in front of it.
    InvalidPointer(usize),
    /// Heap metadata at `at`, next to the block at `block`, was overwritten.
    Corrupted {
        /// The pointer being handled.
        block: usize,
        /// The metadata found damaged.
        at: usize,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::DoubleFree(p) => write!(f, "double free of {p:#x} (the block is already free)"),
            Fault::InvalidPointer(p) => write!(
                f,
                "invalid pointer {p:#x}: not a block memshim returned (foreign, interior or \
                 misaligned), or its header was overwritten by an overrun of the block before it"
            ),
            Fault::Corrupted { block, at } => write!(
                f,
                "heap corruption at {at:#x} next to block {block:#x}: metadata overwritten \
                 (buffer overrun or use after free)"
            ),
        }
    }
}

/// A span the heap holds. Recorded in the `Heap`, out of band: no overrun
/// of user memory can change where a span's memory goes back to.
#[derive(Clone, Copy)]
struct Span {
    /// First byte (16-aligned); the first block's header is here.
    base: *mut u8,
    /// Length (a multiple of 16); the last 16 bytes hold the sentinel.
    len: usize,
    kind: SpanKind,
}

impl Span {
    const EMPTY: Span = Span {
        base: ptr::null_mut(),
        len: 0,
        kind: SpanKind::Arena,
    };

    fn start(&self) -> usize {
        self.base.addr()
    }

    fn end(&self) -> usize {
        self.base.addr() + self.len
    }

    fn first(&self) -> *mut Header {
        self.base.cast()
    }

    /// Whether `a` lies in the span's block area (before the sentinel).
    fn holds(&self, a: usize) -> bool {
        a >= self.start() && a < self.end() - HDR
    }
}

/// Span bookkeeping inside the span: its sentinel.
const SPAN_OVERHEAD: usize = HDR;
/// Most spans the heap holds at once. Growth is geometric, so a heap needs
/// tens of spans for gigabytes; caller regions count too.
pub(crate) const MAX_SPANS: usize = 128;

/// The heap.
pub struct Heap {
    fl_bitmap: u64,
    sl_bitmap: [u32; FL_COUNT],
    lists: [[*mut Header; SL_COUNT]; FL_COUNT],
    /// The spans, sorted by address; `stats.spans` of them are in use.
    spans: [Span; MAX_SPANS],
    secret: usize,
    /// Bytes held from returnable sources (drives geometric growth).
    grown: usize,
    stats: HeapStats,
}

// SAFETY: the heap owns the memory its pointers refer to; it is only used
// under the global lock (or exclusively, in tests).
unsafe impl Send for Heap {}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}

/// A validated used block and the span that holds it.
struct Used {
    b: *mut Header,
    span: Span,
}

impl Heap {
    /// An empty heap; memory arrives through [`Heap::add_span`] or a source.
    pub const fn new() -> Self {
        Self {
            fl_bitmap: 0,
            sl_bitmap: [0; FL_COUNT],
            lists: [[ptr::null_mut(); SL_COUNT]; FL_COUNT],
            spans: [Span::EMPTY; MAX_SPANS],
            secret: 0,
            grown: 0,
            stats: HeapStats {
                in_use: 0,
                free: 0,
                mapped: 0,
                peak_in_use: 0,
                live: 0,
                spans: 0,
                total_allocs: 0,
                total_frees: 0,
            },
        }
    }

    /// Counters.
    pub fn stats(&self) -> HeapStats {
        self.stats
    }

    fn init_secret(&mut self) {
        if self.secret != 0 {
            return;
        }
        #[cfg(miri)]
        let t: u64 = 0x9e37_79b9_7f4a_7c15;
        #[cfg(not(miri))]
        // SAFETY: rdtsc has no preconditions on x86_64 and is allowed in every ring
        // unless the OS sets CR4.TSD, which no OS memshim targets does for kernels.
        let t = unsafe { core::arch::x86_64::_rdtsc() };
        let mixed =
            (t ^ (core::ptr::from_ref(self).addr() as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.secret = (mixed as usize) | 1;
    }

    /// Adds a span of memory the heap may use for good (or until it is
    /// returned to a source, for returnable kinds).
    ///
    /// # Safety
    /// `base..base+len` must be writable memory that nothing else uses.
    pub unsafe fn add_span(
        &mut self,
        base: *mut u8,
        len: usize,
        kind: SpanKind,
    ) -> Result<(), Error> {
        let start = base.addr();
        let end = start.checked_add(len).ok_or(Error::Invalid)?;
        let a_start = start.checked_add(MIN_ALIGN - 1).ok_or(Error::Invalid)? & !(MIN_ALIGN - 1);
        let a_end = end & !(MIN_ALIGN - 1);
        if a_end < a_start || a_end - a_start < SPAN_OVERHEAD + MIN_BLOCK {
            return Err(Error::TooSmall);
        }
        if self.overlaps(a_start, a_end) {
            return Err(Error::Overlap);
        }
        // SAFETY: a_start is inside the caller's range; keep its provenance.
        let base = unsafe { base.byte_add(a_start - start) };
        // SAFETY: the aligned range lies inside the caller's writable range.
        let first = unsafe { self.install_span(base, a_end - a_start, kind) }?;
        // SAFETY: `first` is the span's only block, free and not yet listed.
        unsafe { self.insert(first) };
        Ok(())
    }

    fn live_spans(&self) -> &[Span] {
        &self.spans[..self.stats.spans]
    }

    fn overlaps(&self, start: usize, end: usize) -> bool {
        self.live_spans()
            .iter()
            .any(|s| start < s.end() && s.start() < end)
    }

    /// Records a span and writes its one free block and its sentinel.
    /// Fails (writing nothing) when `MAX_SPANS` are held.
    ///
    /// # Safety
    /// `base..base+len` is writable, 16-aligned memory nothing else uses;
    /// `len` is a multiple of 16 and at least `SPAN_OVERHEAD + MIN_BLOCK`.
    unsafe fn install_span(
        &mut self,
        base: *mut u8,
        len: usize,
        kind: SpanKind,
    ) -> Result<*mut Header, Error> {
        let n = self.stats.spans;
        if n == MAX_SPANS {
            return Err(Error::NoMemory);
        }
        self.init_secret();
        let span = Span { base, len, kind };
        let i = self
            .live_spans()
            .partition_point(|s| s.start() < span.start());
        self.spans.copy_within(i..n, i + 1);
        self.spans[i] = span;
        self.stats.spans += 1;
        self.stats.mapped += len;
        if kind.returnable() {
            self.grown += len;
        }
        let secret = self.secret;
        let first = span.first();
        let block = len - SPAN_OVERHEAD;
        // SAFETY: per the contract the whole range is ours to write.
        unsafe {
            block::write(first, block, true, false, secret);
            *block::footer(first) = block;
            block::write(first.byte_add(block), 0, false, true, secret);
        }
        Ok(first)
    }

    /// The span whose block area holds address `a`: a binary search.
    #[inline]
    fn span_of(&self, a: usize) -> Option<Span> {
        let spans = self.live_spans();
        let i = spans.partition_point(|s| s.start() <= a);
        (i > 0 && spans[i - 1].holds(a)).then(|| spans[i - 1])
    }

    /// Whether `b` is a plausible header address: aligned and inside a span.
    fn in_heap(&self, b: *mut Header) -> bool {
        b.addr() % MIN_ALIGN == 0 && self.span_of(b.addr()).is_some()
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
            let (fl, sl) = tlsf::class_of(size);
            let head = self.lists[fl][sl];
            (*block::links(b)).next = head;
            (*block::links(b)).prev = ptr::null_mut();
            if !head.is_null() {
                (*block::links(head)).prev = b;
            }
            self.lists[fl][sl] = b;
            self.fl_bitmap |= 1 << fl;
            self.sl_bitmap[fl] |= 1 << sl;
            self.stats.free += size;
        }
    }

    /// Verifies that free block `b` and its list neighbours are intact, so
    /// [`Heap::unlink`] writes only into real free blocks.
    ///
    /// # Safety
    /// `b` is a readable header inside the heap.
    unsafe fn check_links(&self, b: *mut Header, user: usize) -> Result<(), Fault> {
        let bad = |at: *mut Header| Fault::Corrupted {
            block: user,
            at: at.addr(),
        };
        // SAFETY: `b` is readable (contract); neighbours are read only after
        // `in_heap` proves them inside a span.
        unsafe {
            if !block::valid(b, self.secret) || !block::is_free(b) {
                return Err(bad(b));
            }
            let Links2 { next, prev } = Links2::read(b);
            if !next.is_null()
                && (!self.in_heap(next)
                    || !block::valid(next, self.secret)
                    || !block::is_free(next)
                    || (*block::links(next)).prev != b)
            {
                return Err(bad(b));
            }
            let (fl, sl) = tlsf::class_of(block::size(b));
            if prev.is_null() {
                if self.lists[fl][sl] != b {
                    return Err(bad(b));
                }
            } else if !self.in_heap(prev)
                || !block::valid(prev, self.secret)
                || !block::is_free(prev)
                || (*block::links(prev)).next != b
            {
                return Err(bad(b));
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
            let (fl, sl) = tlsf::class_of(size);
            let Links2 { next, prev } = Links2::read(b);
            if prev.is_null() {
                self.lists[fl][sl] = next;
            } else {
                (*block::links(prev)).next = next;
            }
            if !next.is_null() {
                (*block::links(next)).prev = prev;
            }
            if self.lists[fl][sl].is_null() {
                self.sl_bitmap[fl] &= !(1 << sl);
                if self.sl_bitmap[fl] == 0 {
                    self.fl_bitmap &= !(1 << fl);
                }
            }
            self.stats.free -= size;
        }
    }

    /// Finds and unlinks a free block of at least `size` bytes, in O(1).
    fn take_fit(&mut self, size: usize) -> Result<Option<*mut Header>, Fault> {
        let b = match self.class_with_fit(size) {
            Some((fl, sl)) => self.lists[fl][sl],
            None => {
                // Rounding up skips the class `size` itself falls in; its head
                // may still be big enough (one look, still O(1)), which lets a
                // request use nearly all of a large free block.
                let (fl, sl) = tlsf::class_of(size);
                let head = if fl < FL_COUNT {
                    self.lists[fl][sl]
                } else {
                    ptr::null_mut()
                };
                // SAFETY: list heads are free blocks the heap filed.
                if head.is_null() || !self.in_heap(head) || unsafe { block::size(head) } < size {
                    return Ok(None);
                }
                head
            }
        };
        // SAFETY: list heads are free blocks the heap filed; check_links
        // verifies them before anything is written.
        unsafe {
            self.check_links(b, b.addr() + HDR)?;
            self.unlink(b);
        }
        Ok(Some(b))
    }

    /// The lowest non-empty class whose blocks are all at least `size`.
    fn class_with_fit(&self, size: usize) -> Option<(usize, usize)> {
        let (fl, sl) = tlsf::class_for_request(size)?;
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

    /// Allocates `n` bytes aligned to `align` (a power of two; at least 16 is
    /// used). `Ok(None)` when memory is exhausted or the size is too large;
    /// `Err` when damaged free-list metadata was found.
    pub fn alloc(
        &mut self,
        n: usize,
        align: usize,
        src: &mut dyn Source,
    ) -> Result<Option<NonNull<u8>>, Fault> {
        debug_assert!(align.is_power_of_two());
        let align = align.max(MIN_ALIGN);
        let Some(bsize) = block::block_size_for(n) else {
            return Ok(None);
        };
        // An aligned block is cut from a larger one: room for the alignment
        // and for a free block in front of it.
        let search = if align > MIN_ALIGN {
            match bsize
                .checked_add(align)
                .and_then(|s| s.checked_add(MIN_BLOCK))
            {
                Some(s) if s <= block::MAX_BLOCK => s,
                _ => return Ok(None),
            }
        } else {
            bsize
        };
        let b = match self.take_fit(search)? {
            Some(b) => b,
            None => match self.grow(search, src) {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        // SAFETY: `b` is a free block of at least `search` bytes, out of every list.
        let b = unsafe {
            let b = if align > MIN_ALIGN {
                self.align_front(b, align)
            } else {
                b
            };
            self.carve(b, bsize);
            b
        };
        // SAFETY: `b` is now a used block.
        let usable = unsafe { block::size(b) } - HDR;
        self.note_alloc(usable);
        // SAFETY: `b` is a block header; its payload is non-null.
        Ok(Some(unsafe { NonNull::new_unchecked(block::payload(b)) }))
    }

    fn note_alloc(&mut self, usable: usize) {
        let s = &mut self.stats;
        s.in_use += usable;
        s.peak_in_use = s.peak_in_use.max(s.in_use);
        s.live += 1;
        s.total_allocs += 1;
    }

    /// Gets a span that holds a free block of at least `search` bytes from
    /// `src`; returns that block, unlisted.
    fn grow(&mut self, search: usize, src: &mut dyn Source) -> Option<*mut Header> {
        let need = search.checked_add(SPAN_OVERHEAD + PAGE - 1)? & !(PAGE - 1);
        // Geometric growth keeps the number of spans logarithmic in the heap size.
        let preferred = need.max(GROW_MIN).max((self.grown / 4) & !(PAGE - 1));
        let (base, len, kind) = src.grow(preferred).or_else(|| {
            if preferred > need {
                src.grow(need)
            } else {
                None
            }
        })?;
        let len = len & !(MIN_ALIGN - 1);
        if len < need || base.as_ptr().addr() % MIN_ALIGN != 0 {
            // A source that breaks its contract: give the memory back untouched.
            // SAFETY: exactly what the source returned.
            unsafe { src.shrink(base, len, kind) };
            return None;
        }
        // SAFETY: a fresh span from the source, page-aligned and ours.
        match unsafe { self.install_span(base.as_ptr(), len, kind) } {
            Ok(first) => Some(first),
            Err(_) => {
                // SAFETY: exactly what the source returned, untouched.
                unsafe { src.shrink(base, len, kind) };
                None
            }
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
            block::write(b, gap, true, block::prev_free(b), self.secret);
            *block::footer(b) = gap;
            block::write(nb, size - gap, true, true, self.secret);
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
    unsafe fn carve(&mut self, b: *mut Header, bsize: usize) {
        let secret = self.secret;
        // SAFETY: `b` and its successor are valid headers inside one span.
        unsafe {
            let size = block::size(b);
            let pf = block::prev_free(b);
            if size - bsize >= MIN_BLOCK {
                let rest = b.byte_add(bsize);
                block::write(rest, size - bsize, true, false, secret);
                *block::footer(rest) = size - bsize;
                block::write(b, bsize, false, pf, secret);
                self.insert(rest);
            } else {
                block::write(b, size, false, pf, secret);
                block::set_prev_free(block::next_phys(b), false, secret);
            }
        }
    }

    // ---- validation -------------------------------------------------------

    /// Checks that `p` is a live block this heap returned and that its
    /// neighbours' metadata is intact. Writes nothing.
    fn validate_used(&self, p: NonNull<u8>) -> Result<Used, Fault> {
        let a = p.as_ptr().addr();
        if a % MIN_ALIGN != 0 {
            return Err(Fault::InvalidPointer(a));
        }
        let span = a
            .checked_sub(HDR)
            .and_then(|h| self.span_of(h))
            .ok_or(Fault::InvalidPointer(a))?;
        // SAFETY: a - HDR lies in the span's block area, so 16 bytes there are readable.
        let b = unsafe { p.as_ptr().byte_sub(HDR) }.cast::<Header>();
        let secret = self.secret;
        // SAFETY: `b` is readable (inside a span); the successor is read only
        // after the size is proven to keep it inside the span.
        unsafe {
            if !block::valid(b, secret) {
                return Err(Fault::InvalidPointer(a));
            }
            if block::is_free(b) {
                return Err(Fault::DoubleFree(a));
            }
            let size = block::size(b);
            let sentinel = span.end() - HDR;
            if size < MIN_BLOCK || b.addr() + size > sentinel {
                return Err(Fault::Corrupted {
                    block: a,
                    at: b.addr(),
                });
            }
            let next = block::next_phys(b);
            if !block::valid(next, secret) || block::prev_free(next) {
                return Err(Fault::Corrupted {
                    block: a,
                    at: next.addr(),
                });
            }
            if block::prev_free(b) {
                self.check_prev(b, span, a)?;
            }
            if block::is_free(next) {
                self.check_links(next, a)?;
            }
        }
        Ok(Used { b, span })
    }

    /// The free block before `b` (whose header says `PREV_FREE`), verified.
    ///
    /// # Safety
    /// `b` is a valid header inside `span`.
    unsafe fn check_prev(
        &self,
        b: *mut Header,
        span: Span,
        user: usize,
    ) -> Result<*mut Header, Fault> {
        let first = span.start();
        // SAFETY: the footer slot is the 8 bytes before `b`, inside the span
        // when `b` is not its first block (checked first).
        unsafe {
            if b.addr() < first + MIN_BLOCK {
                return Err(Fault::Corrupted {
                    block: user,
                    at: b.addr(),
                });
            }
            let psize = *b.cast::<usize>().byte_sub(8);
            if psize < MIN_BLOCK || psize % MIN_ALIGN != 0 || b.addr() - first < psize {
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
            self.check_links(prev, user)?;
            Ok(prev)
        }
    }

    // ---- free -------------------------------------------------------------

    /// Frees `p`, merging with free neighbours; a span left wholly free goes
    /// back to `src`. Nothing is written unless `p` validates.
    ///
    /// # Safety
    /// `p` may be any pointer: it is validated before use. Only memory the
    /// heap owns is ever written.
    pub unsafe fn free(&mut self, p: NonNull<u8>, src: &mut dyn Source) -> Result<(), Fault> {
        let Used { b, span } = self.validate_used(p)?;
        let secret = self.secret;
        // SAFETY: validate_used proved `b`, its neighbours and their links intact.
        unsafe {
            let usable = block::size(b) - HDR;
            let mut start = b;
            let mut size = block::size(b);
            if block::prev_free(b) {
                let prev = b.byte_sub(*b.cast::<usize>().byte_sub(8));
                self.unlink(prev);
                start = prev;
                size += block::size(prev);
            }
            // Leave the old header marked free, so a second free of `p` is
            // named a double free even after the merge.
            block::write(b, block::size(b), true, block::prev_free(b), secret);
            let next = block::next_phys(b);
            if block::is_free(next) {
                self.unlink(next);
                size += block::size(next);
            }
            block::write(start, size, true, false, secret);
            *block::footer(start) = size;
            let after = block::next_phys(start);
            block::set_prev_free(after, true, secret);

            self.stats.in_use -= usable;
            self.stats.live -= 1;
            self.stats.total_frees += 1;

            let whole = start == span.first() && block::size(after) == 0;
            if whole && span.kind.returnable() && self.release_span(span, src) {
                return Ok(());
            }
            self.insert(start);
        }
        Ok(())
    }

    /// Gives a wholly free span back to its source and forgets it. Returns
    /// false if the source keeps it (then the heap keeps it too).
    ///
    /// # Safety
    /// `span` is a live span whose only block is free and unlisted.
    unsafe fn release_span(&mut self, span: Span, src: &mut dyn Source) -> bool {
        // SAFETY: a span's base is never null; the span is unused (contract).
        if !unsafe { src.shrink(NonNull::new_unchecked(span.base), span.len, span.kind) } {
            return false;
        }
        let n = self.stats.spans;
        let i = self
            .live_spans()
            .partition_point(|s| s.start() < span.start());
        self.spans.copy_within(i + 1..n, i);
        self.spans[n - 1] = Span::EMPTY;
        self.stats.spans -= 1;
        self.stats.mapped -= span.len;
        self.grown -= span.len;
        true
    }

    // ---- realloc ----------------------------------------------------------

    /// Resizes `p` to `n` bytes: in place when shrinking or when the next
    /// block is free and large enough, else by moving (alloc, copy, free).
    /// `Ok(None)`: no memory, `p` untouched.
    ///
    /// # Safety
    /// `p` may be any pointer: it is validated before use.
    pub unsafe fn realloc(
        &mut self,
        p: NonNull<u8>,
        n: usize,
        src: &mut dyn Source,
    ) -> Result<Option<NonNull<u8>>, Fault> {
        let Used { b, .. } = self.validate_used(p)?;
        let Some(want) = block::block_size_for(n) else {
            return Ok(None);
        };
        let secret = self.secret;
        // SAFETY: validate_used proved `b`, its successor and the links intact.
        unsafe {
            let cur = block::size(b);
            let next = block::next_phys(b);
            if want <= cur {
                self.shrink_used(b, want);
                return Ok(Some(p));
            }
            if block::is_free(next) && cur + block::size(next) >= want {
                self.unlink(next);
                let merged = cur + block::size(next);
                block::write(b, merged, false, block::prev_free(b), secret);
                block::set_prev_free(block::next_phys(b), false, secret);
                self.stats.in_use += merged - cur;
                self.stats.peak_in_use = self.stats.peak_in_use.max(self.stats.in_use);
                self.shrink_used(b, want);
                return Ok(Some(p));
            }
            let Some(q) = self.alloc(n, MIN_ALIGN, src)? else {
                return Ok(None);
            };
            ptr::copy_nonoverlapping(p.as_ptr(), q.as_ptr(), cur - HDR);
            self.free(p, src)?;
            Ok(Some(q))
        }
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
            }
            block::write(b, want, false, block::prev_free(b), secret);
            let rest = b.byte_add(want);
            block::write(rest, rest_size, true, false, secret);
            *block::footer(rest) = rest_size;
            block::set_prev_free(block::next_phys(rest), true, secret);
            self.insert(rest);
            self.stats.in_use -= cur - want;
        }
    }

    /// Usable bytes of block `p` (at least what was asked for).
    ///
    /// # Safety
    /// `p` may be any pointer: it is validated before use.
    pub unsafe fn usable_size(&self, p: NonNull<u8>) -> Result<usize, Fault> {
        let Used { b, .. } = self.validate_used(p)?;
        // SAFETY: validated.
        Ok(unsafe { block::size(b) } - HDR)
    }
}

/// A copy of a free block's links.
struct Links2 {
    next: *mut Header,
    prev: *mut Header,
}

impl Links2 {
    /// # Safety
    /// `b` is a readable free block.
    unsafe fn read(b: *mut Header) -> Self {
        // SAFETY: per the contract.
        unsafe {
            let l = block::links(b);
            Self {
                next: (*l).next,
                prev: (*l).prev,
            }
        }
    }
}
