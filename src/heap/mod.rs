//! The byte allocator: a lock-free small-object front end over a TLSF
//! back end, with every piece of steering metadata out of band.
//!
//! * `class`: size classes up to [`SMALL_MAX`] bytes.
//! * `slab`: page runs of equal objects, with allocation bitmaps kept in
//!   descriptors outside user memory.
//! * [`cache`]: per-thread / per-CPU caches owning slabs: a hit takes no
//!   atomic instruction and no lock; frees from elsewhere are one atomic OR.
//! * `tlsf`: the back end for larger blocks and the memory slabs are cut
//!   from, with boundary tags validated against their span before use.
//! * `spans`: the record of the memory the heap holds; `pagemap`: the
//!   O(1) map from any address to the span or slab that owns it;
//!   `meta`: the out-of-band pages those records live in.
//!
//! [`Heap`] is everything behind the heap lock (the back end, the heap's own
//! slabs and the registry of caches); `crate::state` wraps it in the global
//! lock and `crate::global` picks the caller's cache.

pub mod cache;
mod check;
pub(crate) mod class;
pub(crate) mod meta;
pub(crate) mod pagemap;
pub(crate) mod slab;
pub(crate) mod spans;
pub(crate) mod tlsf;

#[cfg(test)]
mod tests;

pub use class::SMALL_MAX;

use crate::error::Error;
use crate::source::{Source, SpanKind};
use cache::Cache;
use class::{CLASS, CLASSES};
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering::*};
use meta::{Meta, Pool};
use pagemap::{PageMap, PAGE, TAG_MASK, TAG_SLAB, TAG_SPAN};
use slab::{place, List, Owned, Slab};
use spans::{Span, Spans};
use tlsf::{block_size_for, Tlsf, HDR, MIN_BLOCK};

/// Every block is aligned to this (`max_align_t`).
pub const MIN_ALIGN: usize = tlsf::ALIGN;
/// Entry tag of metadata pages: no record behind it; the bits above the tag
/// hold the `SpanKind` of the memory it came from.
pub(crate) const TAG_META: usize = 3;

/// Smallest span the heap asks a source for.
const GROW_MIN: usize = 128 * 1024;
/// Blocks of at least this size start out in spans of their own.
const HUGE_START: usize = 1 << 20;
/// The dedicated-span threshold rises to the largest such block freed, up
/// to this (as glibc's mmap threshold does).
const HUGE_MAX: usize = 32 << 20;
/// Wholly free shared spans are kept for reuse up to this many bytes in all.
const KEEP_MAX: usize = 64 << 20;
/// Wholly free slabs the heap keeps per class.
const KEEP_EMPTY: usize = 2;

/// Heap counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in live blocks (their usable sizes).
    pub in_use: usize,
    /// Bytes free: free TLSF blocks and free slab objects.
    pub free: usize,
    /// Bytes in all spans the heap holds.
    pub mapped: usize,
    /// Highest `in_use` seen (sampled whenever the heap lock is taken).
    pub peak_in_use: usize,
    /// Live blocks.
    pub live: usize,
    /// Spans held.
    pub spans: usize,
    /// Successful allocations since start.
    pub total_allocs: u64,
    /// Frees since start (allocations minus live blocks).
    pub total_frees: u64,
    /// Bytes of out-of-band metadata.
    pub metadata: usize,
    /// Slabs held.
    pub slabs: usize,
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
                "invalid pointer {p:#x}: not a live block memshim returned (already freed, \
                 foreign, interior or misaligned), or its header was overwritten by an overrun \
                 of the block before it"
            ),
            Fault::Corrupted { block, at } => write!(
                f,
                "heap corruption at {at:#x} next to block {block:#x}: metadata overwritten \
                 (buffer overrun or use after free)"
            ),
        }
    }
}

/// What the front end reads without the lock: the page map and the pending
/// stack of the heap's own slabs.
pub struct Shared {
    /// Address -> span or slab.
    pub map: PageMap,
    /// Heap-owned slabs with remote frees to merge.
    pub pending: AtomicPtr<Slab>,
}

impl Shared {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            map: PageMap::new(),
            pending: AtomicPtr::new(ptr::null_mut()),
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

/// The heap's own slabs (owner: the lock holder).
struct HeapSlabs {
    partial: [List; CLASSES],
    empty: [List; CLASSES],
    nempty: [usize; CLASSES],
    owned: Owned,
    allocs: u64,
    live_bytes: i64,
}

/// Everything behind the heap lock.
pub struct Heap {
    shared: &'static Shared,
    meta: Meta,
    span_records: Pool,
    slab_records: Pool,
    cache_records: Pool,
    spans: Spans,
    tlsf: Tlsf,
    slabs: HeapSlabs,
    /// Every cache ever made (attached or dormant).
    caches: *mut Cache,
    /// Blocks at least this large get a span of their own.
    huge: usize,
    /// Whether `huge` follows the largest dedicated block freed (until a
    /// program sets it, as glibc's mmap threshold does).
    huge_dynamic: bool,
    /// Bytes of wholly free shared spans kept for reuse, at most.
    keep_max: usize,
    peak: usize,
    /// Bytes in use through caches, as of the last slab event (caches
    /// change it without the lock; it is summed when slabs move).
    caches_live: usize,
    /// A fault found under the lock, reported by the caller after it.
    fault: Option<Fault>,
}

// SAFETY: the heap owns the memory its pointers refer to; it is only used
// under the heap lock (or exclusively, in tests).
unsafe impl Send for Heap {}

/// An allocation's outcome under the lock (faults are collected separately).
type Block = Option<NonNull<u8>>;

impl Heap {
    /// An empty heap; memory arrives through [`Heap::add_span`] or a source.
    pub const fn new(shared: &'static Shared) -> Self {
        Self {
            shared,
            meta: Meta::new(),
            span_records: Pool::new(64),
            slab_records: Pool::new(core::mem::size_of::<Slab>()),
            cache_records: Pool::new(core::mem::size_of::<Cache>().next_multiple_of(64)),
            spans: Spans::new(),
            tlsf: Tlsf::new(),
            slabs: HeapSlabs {
                partial: [const { List::new() }; CLASSES],
                empty: [const { List::new() }; CLASSES],
                nempty: [0; CLASSES],
                owned: Owned::new(),
                allocs: 0,
                live_bytes: 0,
            },
            caches: ptr::null_mut(),
            huge: HUGE_START,
            huge_dynamic: true,
            keep_max: KEEP_MAX,
            peak: 0,
            caches_live: 0,
            fault: None,
        }
    }

    /// The lock-free shared state.
    pub fn shared(&self) -> &'static Shared {
        self.shared
    }

    fn map(&self) -> &'static PageMap {
        &self.shared.map
    }

    /// Records a fault for the caller to report after the lock.
    pub fn note_fault(&mut self, f: Fault) {
        self.fault.get_or_insert(f);
    }

    /// The fault found since the last call, if any.
    pub fn take_fault(&mut self) -> Option<Fault> {
        self.fault.take().or_else(|| self.tlsf.fault.take())
    }

    fn seed(&mut self) {
        if self.tlsf.secret == 0 {
            self.tlsf.secret = (crate::platform::random_u64() as usize) | 1;
        }
    }

    // ---- metadata -----------------------------------------------------------

    /// A zeroed metadata page: from the current chunk, a new chunk from the
    /// source, or (no source) a chunk carved from the spans.
    fn meta_page(&mut self, src: &mut dyn Source) -> Option<*mut u8> {
        if let Some(p) = self.meta.page() {
            return Some(p);
        }
        if let Some((p, len, kind)) = src.grow(meta::CHUNK) {
            // SAFETY: fresh pages from the source, ours for good.
            unsafe { self.add_meta_chunk(p.as_ptr(), len & !(PAGE - 1), kind) };
        } else {
            let map = self.map();
            let b = self
                .tlsf
                .alloc(map, block_size_for(meta::CARVED_CHUNK)?, PAGE, true)?;
            self.taken_from(b.addr());
            let kind = spans::span_of(map, b.addr()).map_or(SpanKind::Region, |s| s.kind);
            // SAFETY: an internal block of at least CARVED_CHUNK payload
            // bytes, the heap's own for good.
            unsafe { self.add_meta_chunk(b.byte_add(HDR).cast(), meta::CARVED_CHUNK, kind) };
        }
        self.meta.page()
    }

    /// Takes `p..p+len` (whole pages) as metadata and marks its pages in
    /// the page map with the kind of memory it is (nodes come from the
    /// chunk itself).
    ///
    /// # Safety
    /// The pages are writable memory nothing else will ever use.
    unsafe fn add_meta_chunk(&mut self, p: *mut u8, len: usize, kind: SpanKind) {
        // SAFETY: per the contract.
        unsafe { self.meta.add_chunk(p, len) };
        let (start, map) = (p.addr(), self.map());
        let meta = &mut self.meta;
        if map.reserve(start, start + len, &mut || meta.page()) {
            map.set(start, start + len, ((kind as usize) << 2) | TAG_META);
        }
    }

    /// The first page in `start..end` the heap holds that came from the
    /// frame manager (a span, a slab in one, or metadata), if any.
    pub fn first_from_frames(&self, start: usize, end: usize) -> Option<usize> {
        self.map().find(start, end, |e| {
            let rec = e & !TAG_MASK;
            let kind = match e & TAG_MASK {
                // SAFETY: span entries point at live span records.
                TAG_SPAN => unsafe { (*core::ptr::with_exposed_provenance::<Span>(rec)).kind },
                // SAFETY: slab entries point at live descriptors, whose span
                // is a live record.
                TAG_SLAB => unsafe {
                    (*(*core::ptr::with_exposed_provenance::<Slab>(rec)).span()).kind
                },
                _ => return e >> 2 == SpanKind::Frames as usize,
            };
            kind == SpanKind::Frames
        })
    }

    fn take_record(pool: PoolKind, h: &mut Heap, src: &mut dyn Source) -> Option<*mut u8> {
        if let Some(o) = h.pool(pool).take(&mut || None) {
            return Some(o);
        }
        let page = h.meta_page(src)?;
        let mut once = Some(page);
        h.pool(pool).take(&mut || once.take())
    }

    fn pool(&mut self, k: PoolKind) -> &mut Pool {
        match k {
            PoolKind::Span => &mut self.span_records,
            PoolKind::Slab => &mut self.slab_records,
            PoolKind::Cache => &mut self.cache_records,
        }
    }

    // ---- spans --------------------------------------------------------------

    /// Adds a span of memory the heap may use for good (or until it is
    /// returned to a source, for returnable kinds). Metadata for it comes
    /// from `src`, or from the front of the span itself.
    ///
    /// # Safety
    /// `base..base+len` must be writable memory that nothing else uses.
    pub unsafe fn add_span(
        &mut self,
        base: *mut u8,
        len: usize,
        kind: SpanKind,
        src: &mut dyn Source,
    ) -> Result<(), Error> {
        let start = base.addr();
        let end = start.checked_add(len).ok_or(Error::Invalid)?;
        let a_start = start.checked_add(MIN_ALIGN - 1).ok_or(Error::Invalid)? & !(MIN_ALIGN - 1);
        let a_end = end & !(MIN_ALIGN - 1);
        if a_end < a_start || a_end - a_start < HDR + MIN_BLOCK {
            return Err(Error::TooSmall);
        }
        if self.spans.overlaps(a_start, a_end) || self.meta_overlaps(a_start, a_end) {
            return Err(Error::Overlap);
        }
        // SAFETY: a_start is inside the caller's range; keep its provenance.
        let base = unsafe { base.byte_add(a_start - start) };
        // SAFETY: the aligned range lies inside the caller's writable range.
        unsafe { self.install_span(base, a_end - a_start, kind, src) }.map(|_| ())
    }

    /// Whether `start..end` touches a metadata page (whole pages, all in
    /// the page map).
    fn meta_overlaps(&self, start: usize, end: usize) -> bool {
        self.map().any(start, end, |e| e & TAG_MASK == TAG_META)
    }

    /// Records a span and writes its one free block and its sentinel.
    ///
    /// # Safety
    /// `base..base+len` is writable, 16-aligned memory nothing else uses;
    /// `len` is a multiple of 16 and at least `HDR + MIN_BLOCK`.
    unsafe fn install_span(
        &mut self,
        base: *mut u8,
        len: usize,
        kind: SpanKind,
        src: &mut dyn Source,
    ) -> Result<*mut Span, Error> {
        self.seed();
        // Blocks are found again from addresses (user pointers, the page map).
        let _ = base.expose_provenance();
        let map = self.map();
        let (mut lo, hi) = spans::map_range(map, base.addr(), base.addr() + len);
        let mut start = base.addr().max(lo);
        let end = (base.addr() + len).min(hi) & !(MIN_ALIGN - 1);
        // Metadata for the span: its record and its page-map nodes.
        let need = map.missing_nodes(lo, hi) + usize::from(self.span_records.is_empty());
        if !self.ensure_meta(need, src) {
            // No source: the front of the span holds the metadata, below
            // every block a linear overrun could start from.
            let front = need * PAGE;
            let first_page = start.next_multiple_of(PAGE);
            if first_page + front + HDR + MIN_BLOCK > end {
                return Err(Error::NoMemory);
            }
            // SAFETY: the pages lie inside the caller's span, now metadata for good.
            unsafe { self.add_meta_chunk(base.with_addr(first_page), front, kind) };
            start = first_page + front;
            lo = start;
        }
        if end < start || end - start < HDR + MIN_BLOCK {
            return Err(Error::TooSmall);
        }
        let meta = &mut self.meta;
        if !map.reserve(lo, hi, &mut || meta.page()) {
            return Err(Error::NoMemory);
        }
        let rec = Self::take_record(PoolKind::Span, self, src).ok_or(Error::NoMemory)?;
        let s = rec.cast::<Span>();
        // SAFETY: a fresh record; the span's memory is ours (contract).
        unsafe {
            spans::init(s, base.addr(), start, end - start, kind, (lo, hi));
            self.tlsf.add_span(&*s);
            map.set(lo, hi, s.expose_provenance() | TAG_SPAN);
            self.spans.link(s);
        }
        Ok(s)
    }

    /// Makes sure `pages` metadata pages can be had without carving from a
    /// span (from the current chunk or a new one from `src`).
    fn ensure_meta(&mut self, pages: usize, src: &mut dyn Source) -> bool {
        // A new chunk spends a few of its own pages on mapping itself.
        for _ in 0..2 {
            if self.meta.available() >= pages {
                return true;
            }
            let want = ((pages + 4) * PAGE).max(meta::CHUNK);
            let Some((p, len, kind)) = src.grow(want) else {
                return false;
            };
            // SAFETY: fresh pages from the source, ours for good.
            unsafe { self.add_meta_chunk(p.as_ptr(), len & !(PAGE - 1), kind) };
        }
        self.meta.available() >= pages
    }

    /// Gets a span that holds a free block of at least `search` bytes from
    /// `src`: a span of its own for `dedicated`, else one sized for growth.
    fn grow(&mut self, search: usize, dedicated: bool, src: &mut dyn Source) -> Option<*mut Span> {
        let need = search.checked_add(HDR + PAGE - 1)? & !(PAGE - 1);
        // Geometric growth keeps the number of spans logarithmic in the heap size.
        let preferred = if dedicated {
            need
        } else {
            need.max(GROW_MIN).max((self.spans.grown / 2) & !(PAGE - 1))
        };
        let got = src
            .grow(preferred)
            .or_else(|| (preferred > need).then(|| src.grow(need)).flatten())
            .or_else(|| {
                // Under pressure: what the heap keeps for reuse goes back first.
                self.release_reserves(src).then(|| src.grow(need)).flatten()
            });
        let (base, len, kind) = got?;
        let len = len & !(MIN_ALIGN - 1);
        let a = base.as_ptr().addr();
        if len < need || a % PAGE != 0 || self.map().any(a, a + len, |_| true) {
            // A source that breaks its contract (too short, misaligned, or
            // memory the heap already has): give it back untouched.
            // SAFETY: exactly what the source returned.
            unsafe { src.shrink(base, len, kind) };
            return None;
        }
        // SAFETY: a fresh span from the source, page-aligned and ours.
        match unsafe { self.install_span(base.as_ptr(), len, kind, src) } {
            Ok(s) => {
                // SAFETY: a live record just made.
                unsafe { (*s).dedicated = dedicated };
                Some(s)
            }
            Err(_) => {
                // SAFETY: exactly what the source returned, untouched.
                unsafe { src.shrink(base, len, kind) };
                None
            }
        }
    }

    /// Grows the heap by a span for one block (`bsize` bytes aligned to
    /// `align`, TLSF search size `search`; `internal`: a slab's) and carves
    /// it there. When the new span cannot hold the block — its front became
    /// metadata, no page source having room for that — the span is filed
    /// like any emptied one (kept for reuse, or given back) and growth is
    /// tried once more, asking for that much more.
    fn grow_for(
        &mut self,
        mut search: usize,
        bsize: usize,
        align: usize,
        internal: bool,
        dedicated: bool,
        src: &mut dyn Source,
    ) -> Option<*mut tlsf::Header> {
        for _ in 0..2 {
            let s = self.grow(search, dedicated, src)?;
            let map = self.map();
            // SAFETY: a span just made, whose one block is free.
            if let Some(b) = unsafe { self.tlsf.alloc_in(map, &*s, bsize, align, internal) } {
                return Some(b);
            }
            // SAFETY: a live record, holding one free block.
            let front = unsafe {
                (*s).dedicated = false;
                (*s).base - (*s).claim
            };
            self.span_emptied(s, src);
            search = search.checked_add(front.max(PAGE))?;
        }
        None
    }

    /// After a free left span `s` one free block: keep it or give it back.
    fn span_emptied(&mut self, s: *mut Span, src: &mut dyn Source) {
        // SAFETY: `s` is a live record.
        let span = unsafe { &*s };
        if !span.returnable() {
            return;
        }
        if span.dedicated {
            // As glibc's mmap threshold: blocks this size now share spans.
            if self.huge_dynamic {
                self.huge = self.huge.max(span.len.min(HUGE_MAX));
            }
            self.release_span(s, src);
            return;
        }
        if span.len > self.keep_max {
            self.release_span(s, src);
            return;
        }
        // SAFETY: `s` is linked.
        unsafe { self.spans.keep(s) };
        // Over the budget, the spans kept longest go first.
        while self.spans.kept_bytes > self.keep_max {
            let Some(old) = self.spans.oldest_kept(s) else {
                break;
            };
            // SAFETY: `old` is linked; if its source refuses it, it stays,
            // in use for good.
            unsafe { self.spans.unkeep(old) };
            self.release_span(old, src);
        }
    }

    /// Gives wholly free span `s` back to its source (if it takes it).
    fn release_span(&mut self, s: *mut Span, src: &mut dyn Source) {
        // SAFETY: `s` is a live record of a wholly free span.
        unsafe {
            let span = &*s;
            match self.tlsf.remove_span(self.map(), span) {
                Ok(true) => {}
                Ok(false) => return,
                Err(fault) => {
                    // Its free block was written over: it stays, unused.
                    self.note_fault(fault);
                    return;
                }
            }
            let (base, len, kind) = (span.base, span.len, span.kind);
            let (lo, hi) = (span.map_lo, span.map_hi);
            self.spans.unlink(s);
            self.map().set(lo, hi, 0);
            let nn = NonNull::new_unchecked(ptr::with_exposed_provenance_mut::<u8>(base));
            if src.shrink(nn, len, kind) {
                self.span_records.give(s.cast());
            } else {
                // The source keeps nothing back: neither does the heap.
                self.map().set(lo, hi, s.expose_provenance() | TAG_SPAN);
                self.spans.link(s);
                self.tlsf.add_span(&*s);
            }
        }
    }

    /// Releases what the heap keeps only for speed: the kept span and kept
    /// empty slabs. Returns whether anything went back.
    pub(crate) fn release_reserves(&mut self, src: &mut dyn Source) -> bool {
        let mut any = false;
        for c in 0..CLASSES {
            loop {
                // SAFETY: the lock holder owns the heap's lists.
                let s = unsafe { self.slabs.empty[c].pop() };
                if s.is_null() {
                    break;
                }
                self.slabs.nempty[c] -= 1;
                // SAFETY: an empty heap-owned slab.
                unsafe { (*s).set_place(place::FULL) };
                self.destroy_slab(s, src);
                any = true;
            }
        }
        while let Some(kept) = self.spans.oldest_kept(ptr::null_mut()) {
            // SAFETY: `kept` is linked; if its source refuses it, it stays.
            unsafe { self.spans.unkeep(kept) };
            self.release_span(kept, src);
            any = true;
        }
        any
    }

    /// Releases everything the heap holds for reuse and merges the remote
    /// frees of every slab it can: dormant caches give their slabs back.
    pub fn trim(&mut self, src: &mut dyn Source) {
        self.drain_heap_pending(src);
        let mut c = self.caches;
        while !c.is_null() {
            // SAFETY: registered caches are live records.
            let cache = unsafe { &*c };
            if cache.attached.load(Relaxed) == 0 {
                self.adopt_all(src, cache);
            } else {
                // Stale notifications may sit on a cache's stack; only its
                // owner pops it, so nothing else to do here.
            }
            c = cache.next_cache.load(Relaxed);
        }
        self.release_reserves(src);
    }

    /// `mallopt(M_MMAP_THRESHOLD)`: blocks of at least `bytes` get spans of
    /// their own from now on (`usize::MAX`: never), and the threshold no
    /// longer follows the blocks freed.
    pub fn set_huge_threshold(&mut self, bytes: usize) {
        self.huge = bytes.max(1);
        self.huge_dynamic = false;
    }

    /// A block at `a` was just carved: its span, if kept, is in use again.
    #[inline]
    fn taken_from(&mut self, a: usize) {
        if self.spans.kept_bytes != 0 {
            if let Some(s) = spans::span_ptr(self.map(), a) {
                // SAFETY: a live, linked record.
                unsafe { self.spans.unkeep(s) };
            }
        }
    }

    /// `mallopt(M_TRIM_THRESHOLD)`: the bytes of wholly free shared spans
    /// kept for reuse (0: none).
    pub fn set_keep_max(&mut self, bytes: usize) {
        self.keep_max = bytes;
    }

    // ---- the heap's own slabs and caches --------------------------------------

    /// Carves a slab of `class` (heap-owned, wholly free, on no list).
    fn new_slab(&mut self, class: usize, src: &mut dyn Source) -> *mut Slab {
        let bytes = CLASS[class].pages as usize * PAGE;
        // The block ends `SLAB_TAIL` bytes short of the slab's last page,
        // where the next block's header goes (see `class`).
        let Some(bsize) = block_size_for(bytes - class::SLAB_TAIL) else {
            return ptr::null_mut();
        };
        debug_assert_eq!(bsize, bytes);
        let map = self.map();
        let b = match self.tlsf.alloc(map, bsize, PAGE, true) {
            Some(b) => b,
            None => {
                let search = Tlsf::search_size(bsize, PAGE).unwrap_or(usize::MAX);
                match self.grow_for(search, bsize, PAGE, true, false, src) {
                    Some(b) => b,
                    None => return ptr::null_mut(),
                }
            }
        };
        self.taken_from(b.addr());
        // SAFETY: `b` is an internal block; its payload follows the header.
        let base = unsafe { b.byte_add(HDR) }.addr();
        let Some(rec) = Self::take_record(PoolKind::Slab, self, src) else {
            if let Some(span) = spans::span_ptr(map, b.addr()) {
                // SAFETY: the internal block just carved, unused; freed
                // only once it and its neighbours check out.
                unsafe {
                    if self.tlsf.validate_internal(map, b, &*span, bsize).is_ok()
                        && self.tlsf.free(b, &*span)
                    {
                        self.span_emptied(span, src);
                    }
                }
            }
            return ptr::null_mut();
        };
        let span = spans::span_ptr(map, b.addr()).unwrap_or(ptr::null_mut());
        let s = rec.cast::<Slab>();
        // SAFETY: a fresh descriptor; the slab's pages lie in the span.
        unsafe {
            Slab::init(s, class, base, span);
            map.set(base, base + bytes, s.expose_provenance() | TAG_SLAB);
            self.slabs.owned.push(s);
        }
        s
    }

    /// Gives a wholly free heap-owned slab's memory back to the TLSF.
    fn destroy_slab(&mut self, s: *mut Slab, src: &mut dyn Source) {
        // SAFETY: `s` is a live heap-owned descriptor on no list but `owned`.
        unsafe {
            let slab = &*s;
            if slab.notified(Acquire) {
                // A remote free is pushing it somewhere: whoever pops it
                // brings it back here.
                slab.set_place(place::FULL);
                return;
            }
            let base = slab.base.load(Relaxed);
            let bytes = slab.bytes();
            let span = slab.span().cast_mut();
            let b = ptr::with_exposed_provenance_mut::<tlsf::Header>(base - HDR);
            // The slab's header sits in the tail of whatever is before it,
            // where an overrun of the last object there lands: checked, with
            // its neighbours, like any block before it is freed.
            if let Err(fault) = self.tlsf.validate_internal(self.map(), b, &*span, bytes) {
                // Kept, empty and unused, for good (memshim_check reports it).
                self.note_fault(fault);
                slab.set_place(place::FULL);
                return;
            }
            self.slabs.owned.remove(s);
            self.map()
                .set(base, base + bytes, span.expose_provenance() | TAG_SPAN);
            if self.tlsf.free(b, &*span) {
                self.span_emptied(span, src);
            }
            self.slab_records.give(s.cast());
        }
    }

    /// Files heap-owned slab `s` by what it holds now.
    fn settle_heap_slab(&mut self, s: *mut Slab, src: &mut dyn Source) {
        // SAFETY: `s` is a live heap-owned descriptor; the lock is held.
        let slab = unsafe { &*s };
        let c = slab.class();
        let was = slab.place.load(Relaxed);
        let empty = slab.is_empty();
        let now = if empty {
            place::EMPTY
        } else if slab.has_free() {
            place::PARTIAL
        } else {
            place::FULL
        };
        if was == now {
            return;
        }
        // SAFETY: the lock holder owns the heap's lists; `s` is on the one `was` says.
        unsafe {
            match was {
                place::PARTIAL => self.slabs.partial[c].remove(s),
                place::EMPTY => {
                    self.slabs.empty[c].remove(s);
                    self.slabs.nempty[c] -= 1;
                }
                _ => {}
            }
            match now {
                place::PARTIAL => self.slabs.partial[c].push(s),
                place::EMPTY if self.slabs.nempty[c] < KEEP_EMPTY => {
                    self.slabs.empty[c].push(s);
                    self.slabs.nempty[c] += 1;
                }
                place::EMPTY => {
                    slab.set_place(place::FULL);
                    self.destroy_slab(s, src);
                    return;
                }
                _ => {}
            }
        }
        slab.set_place(now);
    }

    /// Merges the remote frees of heap-owned slabs; sends the others on.
    fn drain_heap_pending(&mut self, src: &mut dyn Source) {
        let mut s = slab::take_pending(&self.shared.pending);
        while !s.is_null() {
            // SAFETY: slabs on a pending stack are live descriptors.
            let next = unsafe { (*s).pending_next.load(Acquire) };
            self.reroute(src, s);
            s = next;
        }
    }

    /// A slab taken off a pending stack by someone who does not own it:
    /// the heap merges it if it is the heap's, or notifies its owner.
    pub(crate) fn reroute(&mut self, src: &mut dyn Source, s: *mut Slab) {
        // SAFETY: a live descriptor (it was on a stack); the lock is held, so
        // its owner cannot change.
        let slab = unsafe { &*s };
        let owner = slab.owner.load(Acquire);
        if owner.is_null() {
            let (merged, dup) = slab.merge_remote();
            if let Some(p) = dup {
                self.note_fault(Fault::DoubleFree(p));
            }
            let _ = merged;
            // Settled even when nothing new came in: a slab left empty
            // while on a stack waits for this to be released.
            self.settle_heap_slab(s, src);
        } else {
            slab.clear_notified();
            if slab.remote_count() > 0 && slab.notify() {
                // SAFETY: caches are never freed; this call set `NOTIFIED`.
                unsafe { slab::push_pending(&(*owner).pending, s) };
            }
        }
    }

    /// A slab for cache `c` to allocate `class` from, now owned by it.
    pub(crate) fn give_slab(&mut self, src: &mut dyn Source, c: &Cache, class: usize) -> *mut Slab {
        self.sample_peak();
        self.drain_heap_pending(src);
        // SAFETY: the lock holder owns the heap's lists.
        let mut s = unsafe { self.slabs.partial[class].pop() };
        if s.is_null() {
            // SAFETY: as above.
            s = unsafe { self.slabs.empty[class].pop() };
            if !s.is_null() {
                self.slabs.nempty[class] -= 1;
            }
        }
        if s.is_null() {
            s = self.new_slab(class, src);
            if s.is_null() {
                return s;
            }
        }
        // SAFETY: `s` is a live heap-owned slab on no list but `owned`.
        unsafe {
            self.slabs.owned.remove(s);
            c.owned.push(s);
            (*s).owner.store(ptr::from_ref(c).cast_mut(), Release);
        }
        s
    }

    /// Cache `c` hands back slab `s`, wholly free.
    pub(crate) fn take_back(&mut self, src: &mut dyn Source, c: &Cache, s: *mut Slab) {
        self.sample_peak();
        // SAFETY: `s` is a live descriptor owned by `c`, on no cache list.
        unsafe {
            c.owned.remove(s);
            (*s).owner.store(ptr::null_mut(), Release);
            self.slabs.owned.push(s);
            (*s).set_place(place::FULL);
        }
        self.settle_heap_slab(s, src);
    }

    /// Takes every slab of cache `c` (not in use) back: remote frees merged,
    /// each filed by what it holds; `c` is left owning nothing.
    pub fn adopt_all(&mut self, src: &mut dyn Source, c: &Cache) {
        // Pop the cache's own stack first: its slabs are then on no stack
        // of theirs, and the others are sent on.
        let mut p = slab::take_pending(&c.pending);
        while !p.is_null() {
            // SAFETY: slabs on a pending stack are live descriptors.
            let next = unsafe { (*p).pending_next.load(Acquire) };
            // SAFETY: as above.
            if ptr::eq(unsafe { (*p).owner.load(Acquire) }, c) {
                // SAFETY: as above; popped, so this call may clear `NOTIFIED`.
                unsafe { (*p).clear_notified() };
            } else {
                self.reroute(src, p);
            }
            p = next;
        }
        loop {
            let s = c.owned.head.load(Relaxed);
            if s.is_null() {
                break;
            }
            // SAFETY: `s` is a live descriptor owned by `c`; the lock is held
            // and `c` is not in use, so its plain fields are stable.
            unsafe {
                c.owned.remove(s);
                (*s).owner.store(ptr::null_mut(), Release);
                self.slabs.owned.push(s);
                let slab = &*s;
                // Not `merge_remote`: the slab may sit on another stack
                // (pushed while its owner was changing); that stack's
                // popper settles it.
                if let (_, Some(p)) = slab.merge_words() {
                    self.note_fault(Fault::DoubleFree(p));
                }
                slab.set_place(place::FULL);
            }
            self.settle_heap_slab(s, src);
        }
        c.clear();
    }

    /// A cache for a new thread or CPU: a dormant one, or a new record.
    pub fn attach_cache(&mut self, src: &mut dyn Source) -> *mut Cache {
        let mut c = self.caches;
        while !c.is_null() {
            // SAFETY: registered caches are live records.
            let cache = unsafe { &*c };
            if cache.attached.load(Relaxed) == 0 {
                cache.attached.store(1, Relaxed);
                return c;
            }
            c = cache.next_cache.load(Relaxed);
        }
        let Some(rec) = Self::take_record(PoolKind::Cache, self, src) else {
            return ptr::null_mut();
        };
        let c = rec.cast::<Cache>();
        // SAFETY: a fresh record.
        unsafe {
            c.write(Cache::new());
            (*c).attached.store(1, Relaxed);
            (*c).next_cache.store(self.caches, Relaxed);
        }
        self.caches = c;
        c
    }

    /// Cache `c`'s thread ended (or its CPU went offline): its slabs come
    /// back and it waits, dormant, for the next one.
    pub fn detach_cache(&mut self, src: &mut dyn Source, c: &Cache) {
        self.adopt_all(src, c);
        c.attached.store(0, Relaxed);
    }

    /// In a child after `fork`: every attached cache but the one at address
    /// `keep` (the forking thread's) belongs to a thread that does not
    /// exist there; their slabs come back and the caches go dormant.
    pub fn detach_all_but(&mut self, src: &mut dyn Source, keep: usize) {
        let mut c = self.caches;
        while !c.is_null() {
            // SAFETY: registered caches are live records, never freed; none
            // is in use but `keep`, which is skipped.
            let cache = unsafe { &*c };
            if c.addr() != keep && cache.attached.load(Relaxed) != 0 {
                cache.busy.store(0, Relaxed);
                self.detach_cache(src, cache);
            }
            c = cache.next_cache.load(Relaxed);
        }
        // A remote free the fork cut between marking a slab notified and
        // pushing it left the slab notified on no stack, its later remote
        // frees never merged. With one thread left, every slab's remote
        // frees are merged now and every stack starts empty.
        self.shared.pending.store(ptr::null_mut(), Relaxed);
        for cache in self.caches() {
            cache.pending.store(ptr::null_mut(), Relaxed);
        }
        let survivor = self.caches().find(|c| ptr::from_ref(*c).addr() == keep);
        let mut dup = None;
        let mut merge = |s: *mut Slab| {
            // SAFETY: a live descriptor on an owner list; only this thread
            // exists.
            let slab = unsafe { &*s };
            if let (_, Some(p)) = slab.merge_words() {
                dup = Some(p);
            }
            slab.clear_notified();
        };
        // SAFETY: the lock is held; the lists do not change meanwhile.
        unsafe {
            if let Some(c) = survivor {
                c.owned.iter().for_each(&mut merge);
            }
            self.slabs.owned.iter().for_each(&mut merge);
        }
        if let Some(p) = dup {
            self.note_fault(Fault::DoubleFree(p));
        }
        // The heap's own slabs are filed again by what they hold now.
        let mut s = self.slabs.owned.head.load(Relaxed);
        while !s.is_null() {
            // SAFETY: a live heap-owned descriptor; its successor is read
            // before it may be destroyed.
            let next = unsafe { (*s).onext.load(Relaxed) };
            self.settle_heap_slab(s, src);
            s = next;
        }
    }

    /// Every registered cache.
    fn caches(&self) -> impl Iterator<Item = &Cache> {
        let mut c = self.caches;
        core::iter::from_fn(move || {
            // SAFETY: registered caches are live records, never freed.
            let cache = unsafe { c.as_ref()? };
            c = cache.next_cache.load(Relaxed);
            Some(cache)
        })
    }

    // ---- allocation (locked path) --------------------------------------------

    /// Allocates `n` bytes aligned to `align` under the lock: small blocks
    /// from the heap's own slabs, the rest from the TLSF. `None` when memory
    /// is exhausted, the size is too large or `align` is not a power of two.
    pub fn alloc(&mut self, n: usize, align: usize, src: &mut dyn Source) -> Block {
        if !align.is_power_of_two() {
            return None;
        }
        let align = align.max(MIN_ALIGN);
        if let Some(c) = class::of_aligned(n, align) {
            if let Some(p) = self.alloc_heap_slab(c, src) {
                return Some(p);
            }
        }
        self.alloc_tlsf(n, align, src)
    }

    fn alloc_heap_slab(&mut self, class: usize, src: &mut dyn Source) -> Block {
        self.drain_heap_pending(src);
        // SAFETY: the lock holder owns the heap's lists.
        let mut s = self.slabs.partial[class].head.load(Relaxed);
        if s.is_null() {
            // SAFETY: as above.
            s = unsafe { self.slabs.empty[class].pop() };
            if s.is_null() {
                s = self.new_slab(class, src);
                if s.is_null() {
                    return None;
                }
            } else {
                self.slabs.nempty[class] -= 1;
            }
            // SAFETY: a live heap-owned slab on no list.
            unsafe {
                (*s).set_place(place::PARTIAL);
                self.slabs.partial[class].push(s);
            }
        }
        // SAFETY: a live heap-owned slab with free objects.
        let slab = unsafe { &*s };
        let w = Slab::word(s, slab.seek()?);
        // SAFETY: the heap owns its own slabs (under its lock); `w` is one
        // of the slab's words.
        let p = unsafe { slab.take_from(&*w) }?;
        if !slab.has_free() {
            // SAFETY: `s` is on the partial list.
            unsafe { self.slabs.partial[class].remove(s) };
            slab.set_place(place::FULL);
        }
        let size = CLASS[class].size as usize;
        self.slabs.allocs += 1;
        self.slabs.live_bytes += size as i64;
        self.caches_live += size;
        self.note_peak();
        NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(p))
    }

    /// Allocates from the TLSF (growing from `src`), whatever the size.
    pub fn alloc_tlsf(&mut self, n: usize, align: usize, src: &mut dyn Source) -> Block {
        if !align.is_power_of_two() {
            return None;
        }
        let align = align.max(MIN_ALIGN);
        let bsize = block_size_for(n)?;
        let search = Tlsf::search_size(bsize, align)?;
        let map = self.map();
        let b = if bsize >= self.huge {
            self.alloc_huge(bsize, align, search, src)?
        } else {
            match self.tlsf.alloc(map, bsize, align, false) {
                Some(b) => b,
                None => self.grow_for(search, bsize, align, false, false, src)?,
            }
        };
        self.slabs.allocs += 1;
        self.taken_from(b.addr());
        self.note_peak();
        // SAFETY: `b` is a used block header; its payload is non-null.
        Some(unsafe { NonNull::new_unchecked(b.byte_add(HDR).cast()) })
    }

    /// A block of at least `huge` bytes: from memory that is never given
    /// back anyway (the arena, caller regions) if it fits there, else in a
    /// span of its own (given back when it is freed), else wherever it fits.
    fn alloc_huge(
        &mut self,
        bsize: usize,
        align: usize,
        search: usize,
        src: &mut dyn Source,
    ) -> Option<*mut tlsf::Header> {
        let map = self.map();
        if let Some(b) = self.tlsf.alloc(map, bsize, align, false) {
            let span = spans::span_ptr(map, b.addr())?;
            // SAFETY: `b` was just carved in `span`, a live record.
            unsafe {
                if !(*span).returnable() {
                    return Some(b);
                }
                // In a span that could go back: undo, and try a span of its own.
                match self
                    .tlsf
                    .validate_used_in(map, b.byte_add(HDR).addr(), &*span)
                {
                    Ok(_) => {
                        if self.tlsf.free(b, &*span) {
                            self.span_emptied(span, src);
                        }
                    }
                    Err(fault) => self.note_fault(fault),
                }
            }
        }
        if let Some(b) = self.grow_for(search, bsize, align, false, true, src) {
            return Some(b);
        }
        self.tlsf.alloc(map, bsize, align, false)
    }

    /// Notes the current use for the peak: the TLSF's own count, exact, and
    /// the caches' as of the last slab event.
    #[inline]
    fn note_peak(&mut self) {
        let now = self.tlsf.used_bytes + self.caches_live;
        if now > self.peak {
            self.peak = now;
        }
    }

    /// Sums the caches' use afresh (at slab events and statistics: O(caches)).
    fn sample_peak(&mut self) {
        let caches: i64 = self.caches().map(|c| c.live_bytes()).sum();
        self.caches_live = (caches + self.slabs.live_bytes).max(0) as usize;
        self.note_peak();
    }

    fn in_use_estimate(&self) -> usize {
        let caches: i64 = self.caches().map(|c| c.live_bytes()).sum();
        let slabs = (caches + self.slabs.live_bytes).max(0) as usize;
        self.tlsf.used_bytes + slabs
    }

    // ---- free (locked path) ----------------------------------------------------

    /// Frees any pointer under the lock: a slab object (the heap's own, or
    /// remotely into a cache's slab) or a TLSF block. Nothing is written
    /// unless `p` validates.
    pub fn free_block(&mut self, p: usize, src: &mut dyn Source) -> Result<(), Fault> {
        let e = self.map().get(p);
        self.free_entry(p, e, src)
    }

    /// [`Heap::free_block`] with `p`'s page-map entry already read.
    pub(crate) fn free_entry(
        &mut self,
        p: usize,
        e: usize,
        src: &mut dyn Source,
    ) -> Result<(), Fault> {
        let map = self.map();
        if e & TAG_MASK == TAG_SLAB {
            // SAFETY: slab entries point at live descriptors.
            let s = unsafe { &*core::ptr::with_exposed_provenance::<Slab>(e & !TAG_MASK) };
            let (w, bit) = s.locate(p).map_err(|f| cache::fault(f, p))?;
            let size = s.size.load(Relaxed) as i64;
            if s.owner.load(Acquire).is_null() {
                if s.free_local(w, bit).map_err(|f| cache::fault(f, p))? {
                    self.settle_heap_slab(ptr::from_ref(s).cast_mut(), src);
                }
            } else {
                cache::free_remote(self.shared, s, w, bit).map_err(|f| cache::fault(f, p))?;
            }
            self.slabs.live_bytes -= size;
            self.caches_live = self.caches_live.saturating_sub(size as usize);
            return Ok(());
        }
        if e & TAG_MASK != TAG_SPAN {
            return Err(Fault::InvalidPointer(p));
        }
        let span = core::ptr::with_exposed_provenance_mut::<Span>(e & !TAG_MASK);
        // SAFETY: span entries point at live records.
        let used = self.tlsf.validate_used_in(map, p, unsafe { &*span })?;
        // SAFETY: validated just before.
        if unsafe { self.tlsf.free(used.b, used.span) } {
            self.span_emptied(span, src);
        }
        Ok(())
    }

    /// Usable bytes of block `p` (at least what was asked for).
    pub fn usable_size(&self, p: usize) -> Result<usize, Fault> {
        if let Some(r) = cache::slab_usable(self.shared, p) {
            return r;
        }
        let used = self.tlsf.validate_used(self.map(), p)?;
        // SAFETY: validated.
        Ok(unsafe { Tlsf::usable(used.b) })
    }

    /// Resizes TLSF block `p` in place when it can (shrinking, or growing
    /// into a free neighbour). `Ok(false)`: it cannot; the caller moves it.
    pub fn resize_in_place(&mut self, p: usize, n: usize) -> Result<bool, Fault> {
        let used = self.tlsf.validate_used(self.map(), p)?;
        let Some(want) = block_size_for(n) else {
            return Ok(false);
        };
        // SAFETY: validated just before.
        let ok = unsafe { self.tlsf.resize_in_place(used.b, want) };
        if ok {
            self.note_peak();
        }
        Ok(ok)
    }

    // ---- counters ---------------------------------------------------------------

    /// Counters (caches aggregated; read without stopping them, so a
    /// snapshot while other threads allocate is approximate).
    pub fn stats(&mut self) -> HeapStats {
        self.sample_peak();
        let mut allocs = self.slabs.allocs;
        for c in self.caches() {
            allocs += c.allocations();
        }
        let (mut slab_free, mut slab_live_objs, mut slabs) = (0usize, 0usize, 0usize);
        let mut count_slab = |s: &Slab| {
            let size = s.size.load(Relaxed) as usize;
            let count = s.count.load(Relaxed) as usize;
            let free = (s.free_count() + s.remote_count()) as usize;
            let free = free.min(count);
            slab_free += free * size;
            slab_live_objs += count - free;
            slabs += 1;
        };
        // SAFETY: the lock is held while iterating owner lists.
        unsafe {
            for s in self.slabs.owned.iter() {
                count_slab(&*s);
            }
            for c in self.caches() {
                for s in c.owned.iter() {
                    count_slab(&*s);
                }
            }
        }
        let live = self.tlsf.used_blocks + slab_live_objs;
        HeapStats {
            in_use: self.in_use_estimate(),
            free: self.tlsf.free_bytes + slab_free,
            mapped: self.spans.mapped,
            peak_in_use: self.peak,
            live,
            spans: self.spans.count,
            total_allocs: allocs,
            total_frees: allocs.saturating_sub(live as u64),
            metadata: self.meta.bytes,
            slabs,
        }
    }
}

#[derive(Clone, Copy)]
enum PoolKind {
    Span,
    Slab,
    Cache,
}
