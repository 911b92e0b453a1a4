//! Span records: the one record of which memory the heap holds.
//!
//! A span is a run of memory from one source (the static arena, a caller
//! region, pages from a page hook, mmap or the frame manager), holding TLSF
//! blocks. Its record lives out of band, in a metadata page: base, length
//! and kind, linked into a list for walking. Every page of a span maps to
//! its record in the [page map](super::pagemap), so finding the span of an
//! address is O(1), and adding or removing a span is O(1) in the number of
//! spans (plus one map entry per page).

use super::pagemap::{PageMap, PAGE, TAG_MASK, TAG_SLAB, TAG_SPAN};
use super::slab::Slab;
use crate::source::SpanKind;
use core::ptr;

/// A span the heap holds.
#[repr(C, align(64))]
pub struct Span {
    /// First byte (16-aligned): the first block's header.
    pub base: usize,
    /// First byte of the memory the span was made from (below `base` when
    /// its front went to metadata or to a page another span has).
    pub claim: usize,
    /// Length (a multiple of 16); the last 16 bytes hold the sentinel.
    pub len: usize,
    /// Where the memory came from (and goes back to).
    pub kind: SpanKind,
    /// Made for one large block (its size steers the dedicated-span threshold).
    pub dedicated: bool,
    /// Wholly free and kept for reuse (counted in `Spans::kept_bytes`).
    pub kept: bool,
    /// Pages `map_lo..map_hi` map to this record.
    pub map_lo: usize,
    /// See `map_lo`.
    pub map_hi: usize,
    prev: *mut Span,
    next: *mut Span,
}

const _: () = assert!(core::mem::size_of::<Span>() <= 64);

impl Span {
    /// Whether the span goes back to its source when wholly free. One whose
    /// front pages became metadata gives back only its end, which mmap and
    /// the frame manager take but page hooks (`free_pages` takes exactly a
    /// run `alloc_pages` returned) do not: such a span stays.
    pub fn returnable(&self) -> bool {
        self.kind.returnable() && (self.claim == self.base || self.kind != SpanKind::PageHooks)
    }

    /// End (exclusive).
    #[inline]
    pub fn end(&self) -> usize {
        self.base + self.len
    }

    /// The sentinel header's address (end of the block area).
    #[inline]
    pub fn sentinel(&self) -> usize {
        self.end() - super::tlsf::HDR
    }

    /// Whether `a` lies in the block area (before the sentinel).
    #[inline]
    pub fn holds(&self, a: usize) -> bool {
        a >= self.base && a < self.sentinel()
    }
}

/// All spans, and the counters over them.
pub struct Spans {
    head: *mut Span,
    /// Spans held.
    pub count: usize,
    /// Bytes in all spans.
    pub mapped: usize,
    /// Bytes held from returnable sources (drives geometric growth).
    pub grown: usize,
    /// Bytes of wholly free returnable spans kept for reuse (hysteresis).
    pub kept_bytes: usize,
}

// SAFETY: the records are owned by the heap and used under its lock.
unsafe impl Send for Spans {}

impl Default for Spans {
    fn default() -> Self {
        Self::new()
    }
}

impl Spans {
    /// No spans.
    pub const fn new() -> Self {
        Self {
            head: ptr::null_mut(),
            count: 0,
            mapped: 0,
            grown: 0,
            kept_bytes: 0,
        }
    }

    /// Records `s` (already initialised and mapped).
    ///
    /// # Safety
    /// `s` is a valid, unlinked record that stays valid while linked.
    pub unsafe fn link(&mut self, s: *mut Span) {
        // SAFETY: `s` and the current head are valid records.
        unsafe {
            (*s).prev = ptr::null_mut();
            (*s).next = self.head;
            if !self.head.is_null() {
                (*self.head).prev = s;
            }
            self.head = s;
            self.count += 1;
            self.mapped += (*s).len;
            if (*s).kind.returnable() {
                self.grown += (*s).len;
            }
        }
    }

    /// Forgets `s`.
    ///
    /// # Safety
    /// `s` is linked in this list.
    pub unsafe fn unlink(&mut self, s: *mut Span) {
        // SAFETY: `s` and its neighbours are valid linked records.
        unsafe {
            let (p, n) = ((*s).prev, (*s).next);
            if p.is_null() {
                self.head = n;
            } else {
                (*p).next = n;
            }
            if !n.is_null() {
                (*n).prev = p;
            }
            self.count -= 1;
            self.mapped -= (*s).len;
            if (*s).kind.returnable() {
                self.grown -= (*s).len;
            }
            self.unkeep(s);
        }
    }

    /// Marks `s` kept for reuse.
    ///
    /// # Safety
    /// `s` is linked in this list.
    pub unsafe fn keep(&mut self, s: *mut Span) {
        // SAFETY: per the contract `s` is a live record.
        unsafe {
            if !(*s).kept {
                (*s).kept = true;
                self.kept_bytes += (*s).len;
            }
        }
    }

    /// `s` is in use again (or leaving): no longer kept.
    ///
    /// # Safety
    /// `s` is linked in this list.
    pub unsafe fn unkeep(&mut self, s: *mut Span) {
        // SAFETY: per the contract `s` is a live record.
        unsafe {
            if (*s).kept {
                (*s).kept = false;
                self.kept_bytes -= (*s).len;
            }
        }
    }

    /// The kept span added longest ago, other than `not`.
    pub fn oldest_kept(&self, not: *mut Span) -> Option<*mut Span> {
        let mut found = None;
        let mut cur = self.head;
        while !cur.is_null() {
            // SAFETY: linked records are live.
            let s = unsafe { &*cur };
            if s.kept && cur != not {
                found = Some(cur);
            }
            cur = s.next;
        }
        found
    }

    /// Every span, most recently added first.
    pub fn iter(&self) -> impl Iterator<Item = &Span> {
        let mut cur = self.head;
        core::iter::from_fn(move || {
            // SAFETY: linked records stay valid while linked; the iterator
            // borrows the list, so none is unlinked meanwhile.
            let s = unsafe { cur.as_ref()? };
            cur = s.next;
            Some(s)
        })
    }

    /// Whether `start..end` shares a byte with any span.
    pub fn overlaps(&self, start: usize, end: usize) -> bool {
        self.iter().any(|s| start < s.end() && s.claim < end)
    }
}

/// The span whose memory holds `a`, through the page map: O(1).
#[inline]
pub fn span_of(map: &PageMap, a: usize) -> Option<&Span> {
    // SAFETY: `span_ptr` only returns live records.
    span_ptr(map, a).map(|s| unsafe { &*s })
}

/// As [`span_of`], as a raw pointer (for the lock holder to change it).
#[inline]
pub fn span_ptr(map: &PageMap, a: usize) -> Option<*mut Span> {
    let e = map.get(a);
    let rec = e & !TAG_MASK;
    let s = match e & TAG_MASK {
        TAG_SPAN => core::ptr::with_exposed_provenance_mut::<Span>(rec),
        // SAFETY: slab entries point at live slab descriptors, whose span
        // is the span their memory was carved from.
        TAG_SLAB => unsafe { (*core::ptr::with_exposed_provenance::<Slab>(rec)).span() }.cast_mut(),
        _ => return None,
    };
    // SAFETY: span entries (and slabs' spans) are live records.
    let span = unsafe { &*s };
    (a >= span.base && a < span.end()).then_some(s)
}

/// The page-aligned range of `base..end` whose pages map to a span: whole
/// pages, plus a partial first or last page when no other span has it.
pub fn map_range(map: &PageMap, base: usize, end: usize) -> (usize, usize) {
    let mut lo = base & !(PAGE - 1);
    if lo != base && map.get(lo) != 0 {
        lo += PAGE;
    }
    let mut hi = end.next_multiple_of(PAGE);
    if hi != end && map.get(hi - PAGE) != 0 {
        hi -= PAGE;
    }
    (lo, hi.max(lo))
}

/// Initialises a record.
///
/// # Safety
/// `s` is writable memory for one record.
pub unsafe fn init(
    s: *mut Span,
    claim: usize,
    base: usize,
    len: usize,
    kind: SpanKind,
    map: (usize, usize),
) {
    // SAFETY: per the contract.
    unsafe {
        s.write(Span {
            base,
            claim,
            len,
            kind,
            dedicated: false,
            kept: false,
            map_lo: map.0,
            map_hi: map.1,
            prev: ptr::null_mut(),
            next: ptr::null_mut(),
        })
    };
}
