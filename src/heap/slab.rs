//! Slabs: page runs of equal-size objects, described out of band.
//!
//! A slab's descriptor lives in a metadata page and is found from any
//! object address through the page map, so validating a pointer is O(1) and
//! exact: the offset from the slab's base must be a whole number of objects
//! (one multiply by a reciprocal), and the object's bit says whether it is
//! allocated. Nothing about a slab is stored in user memory.
//!
//! Ownership. A slab belongs to one owner at a time: a cache (one thread or
//! CPU), or the heap itself (`owner` null, under the heap lock). Only the
//! owner writes `free` (1 = free) and `nfree`, with plain stores. Anyone
//! else frees by setting the object's bit in `remote` with one atomic OR,
//! which also proves exactly whether the object was already free; the
//! first such free since the owner last looked pushes the slab onto the
//! owner's pending stack, and the owner merges `remote` into `free` in one
//! batch when it needs memory.

use super::cache::Cache;
use super::class::{Class, CLASS};
use super::spans::Span;
use core::ptr;
use core::sync::atomic::{
    AtomicPtr, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering, Ordering::*,
};

/// Bitmap words per slab (64 objects each).
pub(crate) const WORDS: usize = super::class::MAX_OBJECTS / 64;
const _: () = assert!(WORDS.is_power_of_two());

/// Where a slab is, for its owner's bookkeeping.
pub mod place {
    /// Its owner allocates from it (a cache's active slab).
    pub(crate) const ACTIVE: u8 = 0;
    /// On its owner's partial list: some objects free.
    pub(crate) const PARTIAL: u8 = 1;
    /// No free object the owner knows of; on no list.
    pub(crate) const FULL: u8 = 2;
    /// Wholly free, kept by the heap for reuse.
    pub(crate) const EMPTY: u8 = 3;
}

/// A slab descriptor.
#[repr(C, align(64))]
pub struct Slab {
    // -- line 0: what the owner touches on every allocation and free.
    /// Free objects (1 = free). Written by the owner only.
    pub free: [AtomicU64; WORDS],
    /// Address of object 0 (page-aligned).
    pub base: AtomicUsize,
    /// `count * size`: offsets at or past it are not objects.
    pub limit: AtomicU64,
    /// `ceil(2^32 / size)`.
    pub recip: AtomicU64,
    /// Object size.
    pub size: AtomicU32,
    /// Two marks a free must look at, in one word so the owner's free
    /// tests both with one load (0: neither, the common case):
    /// - [`NOTIFIED`], set by the first remote free after the owner last
    ///   merged; the slab is then on (or about to be pushed onto) a pending
    ///   stack. In line 0 so the owner's free reads line 2 only when there
    ///   are remote frees to check against (a remote free writes it once
    ///   per merge, not once per free);
    /// - above [`WATCH_SHIFT`], what a free must tell the owner
    ///   ([`WATCH_EMPTY`], [`WATCH_FULL`]); 0 for the active slab, so its
    ///   frees never leave the fast path.
    ///
    /// Remote frees set `NOTIFIED` with an atomic OR, so every change by
    /// the owner is an atomic read-modify-write too.
    marks: AtomicU16,

    // -- line 1: the owner's bookkeeping (rarely touched).
    /// The owning cache; null: the heap (under its lock).
    pub owner: AtomicPtr<Cache>,
    /// Size class.
    pub class: AtomicU8,
    /// See [`place`].
    pub place: AtomicU8,
    /// Objects in the slab.
    pub count: AtomicU16,
    span: AtomicPtr<Span>,
    /// The owner's partial list (or the heap's partial/empty lists).
    pub prev: AtomicPtr<Slab>,
    /// See `prev`.
    pub next: AtomicPtr<Slab>,
    /// The owner's list of every slab it owns (changed under the lock only).
    pub oprev: AtomicPtr<Slab>,
    /// See `oprev`.
    pub onext: AtomicPtr<Slab>,
    _pad: [u64; 1],

    // -- line 2: what other threads write.
    /// Objects freed by non-owners, not yet merged into `free`: none while
    /// `NOTIFIED` is clear (outside the owner's own merge).
    pub remote: [AtomicU64; WORDS],
    /// Link of the pending stack.
    pub pending_next: AtomicPtr<Slab>,
}

const _: () = assert!(core::mem::offset_of!(Slab, owner) == 64);
const _: () = assert!(core::mem::offset_of!(Slab, remote) == 128);
const _: () = assert!(core::mem::size_of::<Slab>() == 192);

/// The slab no cache slot is ever empty of: no objects, no free bits, a
/// `limit` of 0 (so no address is inside it). Caches point at it instead
/// of null, which keeps a branch off every fast path.
pub static NO_SLAB: Slab = Slab::none();

/// [`NO_SLAB`] as the pointer cache slots hold.
#[inline(always)]
pub fn no_slab() -> *mut Slab {
    ptr::from_ref(&NO_SLAB).cast_mut()
}

/// The (word, bit) of object `idx` in the bitmaps.
#[inline(always)]
fn word_bit(idx: usize) -> (usize, u64) {
    ((idx >> 6) & (WORDS - 1), 1u64 << (idx & 63))
}

/// `marks`: a remote free is outstanding (the slab is, or is about to be,
/// on its owner's pending stack).
pub(crate) const NOTIFIED: u16 = 1;
/// `marks`: where the watch bits start.
const WATCH_SHIFT: u32 = 8;
/// Watch: the owner wants to know when the slab becomes empty.
pub(crate) const WATCH_EMPTY: u16 = 1 << WATCH_SHIFT;
/// Watch: the owner wants to know of the first free (the slab was full).
pub(crate) const WATCH_FULL: u16 = 2 << WATCH_SHIFT;

/// What [`Slab::free_mine`] did.
pub enum Freed {
    /// Freed; nothing for the owner to do.
    Quiet,
    /// Nothing done yet: the slab has marks (remote frees to check against,
    /// or a watch); the owner frees through [`Slab::free_marked`].
    Marked,
    /// Freed into a slab its owner watches, which is full or empty now:
    /// the owner must hint the object or re-file the slab.
    Watched,
    /// Nothing done: the object is free already (the caller reports it).
    Refused,
}

/// A fault found on a slab object.
pub enum SlabFault {
    /// Not the start of an object of this slab.
    Interior,
    /// The object is already free.
    DoubleFree,
}

/// The bound on `rest` in [`Slab::object`]. At an object's start `rest` is
/// below 2^16; anywhere inside an object it is at least `recip`, above
/// 2^18 for every class (both proven by `class::tests`). Any bound between
/// works: this one is no power of two, so the compiler emits one compare
/// rather than a shift and a test.
pub(crate) const EXACT: u32 = (1 << 16) + 1;

/// Reads a field of line 0 as the slab's owner: a plain load, which the
/// compiler folds into the arithmetic that uses it (it folds no atomic
/// load). Line 0 is written only by the owner, or by the heap under its
/// lock before the slab was handed over, so the owner's plain read races
/// with no write.
///
/// # Safety
/// The caller owns the slab (or it is [`NO_SLAB`], never written).
#[inline(always)]
unsafe fn mine<T: Copy>(field: *mut T) -> T {
    // SAFETY: per the contract no other thread writes the field now.
    unsafe { *field }
}

impl Slab {
    const fn none() -> Slab {
        Slab {
            free: [const { AtomicU64::new(0) }; WORDS],
            base: AtomicUsize::new(0),
            limit: AtomicU64::new(0),
            recip: AtomicU64::new(0),
            size: AtomicU32::new(0),
            marks: AtomicU16::new(0),
            owner: AtomicPtr::new(ptr::null_mut()),
            class: AtomicU8::new(0),
            place: AtomicU8::new(place::ACTIVE),
            count: AtomicU16::new(0),
            span: AtomicPtr::new(ptr::null_mut()),
            prev: AtomicPtr::new(ptr::null_mut()),
            next: AtomicPtr::new(ptr::null_mut()),
            oprev: AtomicPtr::new(ptr::null_mut()),
            onext: AtomicPtr::new(ptr::null_mut()),
            _pad: [0; 1],
            remote: [const { AtomicU64::new(0) }; WORDS],
            pending_next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Initialises a descriptor for a fresh slab of class `class` at `base`
    /// (every object free), owned by `owner`, placed as `place`.
    ///
    /// # Safety
    /// `s` is writable memory for one descriptor, not shared yet.
    pub unsafe fn init(s: *mut Slab, class: usize, base: usize, span: *const Span) {
        let c: &Class = &CLASS[class];
        let full = |w: usize| -> u64 {
            let bits = (c.count as usize).saturating_sub(w * 64).min(64);
            if bits == 64 {
                !0
            } else {
                (1u64 << bits) - 1
            }
        };
        // SAFETY: per the contract.
        unsafe {
            s.write(Slab {
                free: core::array::from_fn(|w| AtomicU64::new(full(w))),
                base: AtomicUsize::new(base),
                limit: AtomicU64::new(u64::from(c.count * c.size)),
                recip: AtomicU64::new(u64::from(c.recip)),
                size: AtomicU32::new(c.size),
                marks: AtomicU16::new(0),
                owner: AtomicPtr::new(ptr::null_mut()),
                class: AtomicU8::new(class as u8),
                place: AtomicU8::new(place::EMPTY),
                count: AtomicU16::new(c.count as u16),
                span: AtomicPtr::new(span.cast_mut()),
                prev: AtomicPtr::new(ptr::null_mut()),
                next: AtomicPtr::new(ptr::null_mut()),
                oprev: AtomicPtr::new(ptr::null_mut()),
                onext: AtomicPtr::new(ptr::null_mut()),
                _pad: [0; 1],
                remote: [const { AtomicU64::new(0) }; WORDS],
                pending_next: AtomicPtr::new(ptr::null_mut()),
            })
        };
    }

    /// The span the slab's memory was carved from.
    #[inline]
    pub fn span(&self) -> *const Span {
        self.span.load(Relaxed)
    }

    /// Bytes of the slab (whole pages).
    pub fn bytes(&self) -> usize {
        CLASS[self.class()].pages as usize * super::pagemap::PAGE
    }

    /// Size class.
    #[inline]
    pub fn class(&self) -> usize {
        self.class.load(Relaxed) as usize
    }

    /// The (word, bit) of the object starting at `a`.
    #[inline(always)]
    pub fn locate(&self, a: usize) -> Result<(usize, u64), SlabFault> {
        let off = a.wrapping_sub(self.base.load(Relaxed));
        if off as u64 >= self.limit.load(Relaxed) {
            return Err(SlabFault::Interior);
        }
        Self::object(off, self.recip.load(Relaxed))
            .map(word_bit)
            .ok_or(SlabFault::Interior)
    }

    /// The offset of `a` in the slab if it is inside the slab's objects
    /// (owner only).
    ///
    /// # Safety
    /// The caller owns the slab.
    #[inline(always)]
    pub unsafe fn offset_of_mine(&self, a: usize) -> Option<usize> {
        // SAFETY: the caller owns the slab.
        let (base, limit) = unsafe { (mine(self.base.as_ptr()), mine(self.limit.as_ptr())) };
        let off = a.wrapping_sub(base);
        ((off as u64) < limit).then_some(off)
    }

    /// [`Slab::object`] with the reciprocal read as the owner.
    ///
    /// # Safety
    /// The caller owns the slab.
    #[inline(always)]
    pub unsafe fn object_of_mine(&self, off: usize) -> Option<usize> {
        // SAFETY: the caller owns the slab.
        Self::object(off, unsafe { mine(self.recip.as_ptr()) })
    }

    /// The index of the object at offset `off` (below `limit`) in a slab
    /// with reciprocal `recip`, or `None` when `off` is inside an object
    /// rather than at its start.
    ///
    /// One multiply: with `recip = ceil(2^32 / size)`, `off * recip` is
    /// `idx * 2^32 + rest`, and `rest < 2^16` exactly when `off` is a whole
    /// number of objects (offsets below 2^16, sizes up to 16 KiB; proven
    /// for every class by `class::tests`).
    #[inline(always)]
    fn object(off: usize, recip: u64) -> Option<usize> {
        let q = off as u64 * recip;
        if q as u32 >= EXACT {
            return None;
        }
        Some((q >> 32) as usize)
    }

    /// Takes a free object from `word`, one of this slab's free words
    /// (owner only): its address. `None` when that word is empty.
    ///
    /// # Safety
    /// The caller owns the slab (or it is [`NO_SLAB`]); `word` is one of
    /// its `free` words.
    #[inline(always)]
    pub unsafe fn take_from(&self, word: &AtomicU64) -> Option<usize> {
        let i = (core::ptr::from_ref(word).addr() - core::ptr::from_ref(self).addr()) / 8;
        debug_assert!(i < WORDS);
        // SAFETY: the caller owns the slab: line 0 is its to read.
        unsafe {
            let w = mine(word.as_ptr());
            if w == 0 {
                return None;
            }
            word.store(w & (w - 1), Relaxed);
            let idx = i * 64 + w.trailing_zeros() as usize;
            Some(mine(self.base.as_ptr()) + idx * mine(self.size.as_ptr()) as usize)
        }
    }

    /// The slab whose free word `word` is (`word` points into line 0 of a
    /// 64-byte-aligned descriptor, whose first field is `free`, and carries
    /// the descriptor's provenance: see [`Slab::word`]).
    #[inline(always)]
    pub fn of_word(word: *mut AtomicU64) -> *mut Slab {
        word.wrapping_byte_sub(word.addr() % core::mem::align_of::<Slab>())
            .cast()
    }

    /// Free word `i` of slab `s`, as a pointer derived from `s` (so
    /// [`Slab::of_word`] can go back to the whole descriptor).
    #[inline(always)]
    pub fn word(s: *mut Slab, i: usize) -> *mut AtomicU64 {
        debug_assert!(i < WORDS);
        s.cast::<AtomicU64>().wrapping_add(i)
    }

    /// The index of a free word with a free object, if any (owner only).
    pub fn seek(&self) -> Option<usize> {
        self.free.iter().position(|w| w.load(Relaxed) != 0)
    }

    /// Frees the object at (word, bit) by its owner. `Ok(true)` when the
    /// owner asked to hear of it (the slab is now empty, or was full).
    #[inline(always)]
    pub fn free_local(&self, w: usize, bit: u64) -> Result<bool, SlabFault> {
        let f = self.free[w].load(Relaxed);
        if (f | self.remote[w].load(Relaxed)) & bit != 0 {
            return Err(SlabFault::DoubleFree);
        }
        self.free[w].store(f | bit, Relaxed);
        Ok(self.owner_must_hear(self.marks.load(Relaxed), w, f | bit))
    }

    /// [`Slab::free_local`] for the fast path, by object index.
    ///
    /// # Safety
    /// The caller owns the slab; `idx` is an object index from
    /// [`Slab::object_of_mine`].
    #[inline(always)]
    pub unsafe fn free_mine(&self, idx: usize) -> Freed {
        let (w, n) = (idx >> 6, idx & 63);
        debug_assert!(w < WORDS);
        // SAFETY: the caller owns the slab: line 0 is its to read (`remote`,
        // which others write, is read atomically). `idx` came from
        // `object_of_mine` on an offset below `limit`: below `count`, so
        // its word is one of the `WORDS`.
        unsafe {
            let free = self.free.get_unchecked(w);
            let f = mine(free.as_ptr());
            if (f >> n) & 1 != 0 {
                return Freed::Refused; // freed already, here
            }
            if self.marks.load(Relaxed) != 0 {
                return Freed::Marked;
            }
            free.store(f | 1 << n, Relaxed);
        }
        Freed::Quiet
    }

    /// [`Slab::free_mine`] when it answered [`Freed::Marked`]: checks
    /// against remote frees, frees, and says whether the owner watches.
    ///
    /// # Safety
    /// As for [`Slab::free_mine`].
    #[inline(always)]
    pub unsafe fn free_marked(&self, idx: usize) -> Freed {
        let (w, n) = ((idx >> 6) & (WORDS - 1), idx & 63);
        let f = self.free[w].load(Relaxed);
        let marks = self.marks.load(Relaxed);
        // Freed already, here or by another thread (not merged yet).
        if (f >> n) & 1 != 0
            || (marks & NOTIFIED != 0 && (self.remote[w].load(Relaxed) >> n) & 1 != 0)
        {
            return Freed::Refused;
        }
        let now = f | 1 << n;
        self.free[w].store(now, Relaxed);
        if self.owner_must_hear(marks, w, now) {
            Freed::Watched
        } else {
            Freed::Quiet
        }
    }

    /// Takes object `idx` if it is free (owner only): its address.
    ///
    /// # Safety
    /// The caller owns the slab; `idx` is below its `count`.
    #[inline]
    pub unsafe fn take_at(&self, idx: usize) -> Option<usize> {
        let (w, n) = ((idx >> 6) & (WORDS - 1), idx & 63);
        // SAFETY: the caller owns the slab: line 0 is its to read.
        unsafe {
            let f = mine(self.free[w].as_ptr());
            if (f >> n) & 1 == 0 {
                return None;
            }
            self.free[w].store(f & !(1 << n), Relaxed);
            Some(mine(self.base.as_ptr()) + idx * mine(self.size.as_ptr()) as usize)
        }
    }

    /// Frees the object at (word, bit) by someone other than its owner.
    /// `Ok(true)`: this was the first remote free since the owner last
    /// merged, so the caller must push the slab onto the owner's pending
    /// stack ([`push_pending`]).
    pub fn free_remote(&self, w: usize, bit: u64) -> Result<bool, SlabFault> {
        // Free in the owner's view already. Checked before the OR: once the
        // bit is in `remote`, the owner may merge it at any moment, and the
        // object is then rightly free there.
        if self.free[w].load(Acquire) & bit != 0 {
            return Err(SlabFault::DoubleFree);
        }
        let old = self.remote[w].fetch_or(bit, SeqCst);
        if old & bit != 0 {
            return Err(SlabFault::DoubleFree);
        }
        // Written only when it changes: the owner's line stays clean. (All
        // SeqCst with the merge's clear and its look at the words: a free
        // the merge did not see then sees `NOTIFIED` clear, and sets it.)
        Ok(!self.notified(SeqCst) && self.notify())
    }

    /// Merges remote frees into `free` after taking the slab off a pending
    /// stack (the popper only: it clears `NOTIFIED`). Returns how many
    /// objects it merged and the address of one it dropped as a double free
    /// (an object freed remotely that was free already), if any.
    pub fn merge_remote(&self) -> (u32, Option<usize>) {
        // Cleared before the words are taken: a remote free that misses
        // this merge notifies again.
        self.clear_notified();
        self.merge_words()
    }

    /// Merges remote frees into `free` without touching `NOTIFIED` (the
    /// slab may still be on a stack; its popper settles it later).
    pub fn merge_words(&self) -> (u32, Option<usize>) {
        let (mut merged, mut dup_at) = (0, None);
        for w in 0..WORDS {
            if self.remote[w].load(SeqCst) == 0 {
                continue;
            }
            let bits = self.remote[w].swap(0, AcqRel);
            let f = self.free[w].load(Relaxed);
            let dup = bits & f;
            self.free[w].store(f | bits, Relaxed);
            merged += (bits & !dup).count_ones();
            if dup != 0 && dup_at.is_none() {
                let idx = w * 64 + dup.trailing_zeros() as usize;
                dup_at = Some(self.base.load(Relaxed) + idx * self.size.load(Relaxed) as usize);
            }
        }
        (merged, dup_at)
    }

    /// Objects freed remotely and not merged yet (racy: for statistics).
    pub fn remote_count(&self) -> u32 {
        self.remote
            .iter()
            .map(|w| w.load(Relaxed).count_ones())
            .sum()
    }

    /// Objects in `free` counted from the bitmap (the ground truth).
    pub fn free_count(&self) -> u32 {
        self.free.iter().map(|w| w.load(Relaxed).count_ones()).sum()
    }

    /// Files the slab as `place`, with what its frees must report.
    pub fn set_place(&self, place: u8) {
        self.place.store(place, Relaxed);
        let watch = match place {
            place::FULL => WATCH_EMPTY | WATCH_FULL,
            place::PARTIAL => WATCH_EMPTY,
            _ => 0,
        };
        // A remote free may set NOTIFIED meanwhile: it stays.
        let _ = self
            .marks
            .fetch_update(Relaxed, Relaxed, |m| Some(m & NOTIFIED | watch));
    }

    /// Whether a remote free is outstanding (see [`NOTIFIED`]).
    pub fn notified(&self, order: Ordering) -> bool {
        self.marks.load(order) & NOTIFIED != 0
    }

    /// Sets [`NOTIFIED`]; whether this call set it (it was clear).
    pub fn notify(&self) -> bool {
        self.marks.fetch_or(NOTIFIED, AcqRel) & NOTIFIED == 0
    }

    /// Clears [`NOTIFIED`] (its popper, or the owner merging).
    pub fn clear_notified(&self) {
        self.marks.fetch_and(!NOTIFIED, SeqCst);
    }

    /// After a free left free word `w` at `now`: whether the watch in
    /// `marks` asks the owner to hear of it (the slab was full, or is empty
    /// now).
    #[inline(always)]
    fn owner_must_hear(&self, marks: u16, w: usize, now: u64) -> bool {
        let watch = marks & !NOTIFIED;
        watch != 0 && (watch & WATCH_FULL != 0 || self.word_full(w, now) && self.is_empty())
    }

    /// Whether every object is free (owner's view: objects freed remotely
    /// count once merged), from the bitmap.
    pub fn is_empty(&self) -> bool {
        (0..WORDS).all(|w| self.word_full(w, self.free[w].load(Relaxed)))
    }

    /// Whether free word `w`, whose value is `now`, has every one of its
    /// objects free: the cheap first test of [`Slab::is_empty`].
    #[inline(always)]
    fn word_full(&self, w: usize, now: u64) -> bool {
        let n = (self.count.load(Relaxed) as usize).saturating_sub(w * 64);
        now == if n >= 64 { !0 } else { (1u64 << n) - 1 }
    }

    /// Whether some object is free (owner's view).
    pub fn has_free(&self) -> bool {
        self.free.iter().any(|w| w.load(Relaxed) != 0)
    }
}

/// Pushes `s` onto a pending stack (any thread).
///
/// # Safety
/// `s` is a live descriptor whose `NOTIFIED` this caller set from 0 to 1.
pub unsafe fn push_pending(stack: &AtomicPtr<Slab>, s: *mut Slab) {
    let mut head = stack.load(Relaxed);
    loop {
        // SAFETY: per the contract `s` is live and on no stack.
        unsafe { (*s).pending_next.store(head, Relaxed) };
        match stack.compare_exchange_weak(head, s, Release, Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

/// Takes the whole pending stack (its owner only).
pub fn take_pending(stack: &AtomicPtr<Slab>) -> *mut Slab {
    if stack.load(Relaxed).is_null() {
        return ptr::null_mut();
    }
    stack.swap(ptr::null_mut(), Acquire)
}

/// A doubly linked list of slabs through `prev`/`next` (partial lists).
pub struct List {
    /// First slab, or null.
    pub head: AtomicPtr<Slab>,
}

impl List {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Adds `s` at the front.
    ///
    /// # Safety
    /// `s` is a live descriptor on no list of this kind; the caller has the
    /// right to change the list (its owner, or the lock).
    pub unsafe fn push(&self, s: *mut Slab) {
        let h = self.head.load(Relaxed);
        // SAFETY: `s` and `h` are live descriptors.
        unsafe {
            (*s).prev.store(ptr::null_mut(), Relaxed);
            (*s).next.store(h, Relaxed);
            if !h.is_null() {
                (*h).prev.store(s, Relaxed);
            }
        }
        self.head.store(s, Relaxed);
    }

    /// Takes `s` off the list.
    ///
    /// # Safety
    /// `s` is on this list; as for `push`.
    pub unsafe fn remove(&self, s: *mut Slab) {
        // SAFETY: `s` and its neighbours are live descriptors on this list.
        unsafe {
            let (p, n) = ((*s).prev.load(Relaxed), (*s).next.load(Relaxed));
            if p.is_null() {
                self.head.store(n, Relaxed);
            } else {
                (*p).next.store(n, Relaxed);
            }
            if !n.is_null() {
                (*n).prev.store(p, Relaxed);
            }
        }
    }

    /// Takes the first slab off, or null.
    ///
    /// # Safety
    /// As for `push`.
    pub unsafe fn pop(&self) -> *mut Slab {
        let h = self.head.load(Relaxed);
        if !h.is_null() {
            // SAFETY: `h` is on this list.
            unsafe { self.remove(h) };
        }
        h
    }
}

impl Default for List {
    fn default() -> Self {
        Self::new()
    }
}

/// A doubly linked list through `oprev`/`onext`: every slab one owner has.
pub struct Owned {
    /// First slab, or null.
    pub head: AtomicPtr<Slab>,
    /// Slabs on the list.
    pub len: AtomicUsize,
}

impl Owned {
    /// An empty list.
    pub const fn new() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            len: AtomicUsize::new(0),
        }
    }

    /// Adds `s`.
    ///
    /// # Safety
    /// `s` is on no owner list; the caller holds the heap lock.
    pub unsafe fn push(&self, s: *mut Slab) {
        let h = self.head.load(Relaxed);
        // SAFETY: `s` and `h` are live descriptors.
        unsafe {
            (*s).oprev.store(ptr::null_mut(), Relaxed);
            (*s).onext.store(h, Relaxed);
            if !h.is_null() {
                (*h).oprev.store(s, Relaxed);
            }
        }
        self.head.store(s, Relaxed);
        self.len.store(self.len.load(Relaxed) + 1, Relaxed);
    }

    /// Takes `s` off.
    ///
    /// # Safety
    /// `s` is on this list; the caller holds the heap lock.
    pub unsafe fn remove(&self, s: *mut Slab) {
        // SAFETY: `s` and its neighbours are live descriptors on this list.
        unsafe {
            let (p, n) = ((*s).oprev.load(Relaxed), (*s).onext.load(Relaxed));
            if p.is_null() {
                self.head.store(n, Relaxed);
            } else {
                (*p).onext.store(n, Relaxed);
            }
            if !n.is_null() {
                (*n).oprev.store(p, Relaxed);
            }
        }
        self.len.store(self.len.load(Relaxed) - 1, Relaxed);
    }

    /// Every slab on the list.
    ///
    /// # Safety
    /// The caller holds the heap lock for as long as it iterates, and does
    /// not take the current slab off.
    pub unsafe fn iter(&self) -> impl Iterator<Item = *mut Slab> + '_ {
        let mut cur = self.head.load(Relaxed);
        core::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            let s = cur;
            // SAFETY: linked descriptors are live while the lock is held.
            cur = unsafe { (*s).onext.load(Relaxed) };
            Some(s)
        })
    }
}

impl Default for Owned {
    fn default() -> Self {
        Self::new()
    }
}
