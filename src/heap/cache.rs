//! Caches: the lock-free front end, one per thread (host) or CPU (kernel).
//!
//! A cache owns slabs. For each size class it allocates from one *active*
//! slab and keeps a list of *partial* slabs it owns; its full slabs are on
//! no list until a free makes room in them. Its owner allocates and frees
//! in its slabs with plain loads and stores: no atomic instruction and no
//! lock. A block freed by another thread is marked in its slab's remote
//! bitmap with one atomic OR, and the slab is pushed (once) onto the owning
//! cache's pending stack; the owner merges those frees in one batch when it
//! runs out of room. Slabs come from, and wholly free slabs go back to, the
//! heap under its lock: one lock round trip per slab, not per block.
//!
//! Which cache a caller uses is the platform's business (`crate::global`):
//! a thread-local pointer on the host, the CPU number in a kernel. Everything
//! here takes the cache as an argument, so tests drive several at once.

use super::class::{self, CLASS, CLASSES};
use super::pagemap::{TAG_MASK, TAG_SLAB};
use super::slab::{self, place, Freed, List, Owned, Slab, SlabFault};
use super::{Fault, Heap, Shared};
use crate::source::Source;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

/// A cache. Lives in a metadata page; never freed (a cache whose thread
/// ended is *dormant* and is reused by the next thread).
#[repr(C, align(64))]
pub struct Cache {
    /// Set while its owner is inside a cache operation: a signal handler or
    /// an interrupt that calls memshim then takes the locked path instead
    /// of touching the cache half-way through.
    pub busy: AtomicU32,
    /// The slab of the last allocation or free: a free inside it skips the
    /// page-map walk. Always a slab this cache owns, or [`slab::NO_SLAB`].
    recent: AtomicPtr<Slab>,
    /// Per class: the free word of the slab allocations come from (in
    /// [`slab::NO_SLAB`]: none). The word's address gives its slab, so a
    /// hit costs one load less than a slab and a word index would.
    active: [AtomicPtr<AtomicU64>; CLASSES],
    partial: [List; CLASSES],
    /// Slabs of this cache with remote frees to merge.
    pub pending: AtomicPtr<Slab>,
    /// Per class, blocks allocated through this cache (frees are counted
    /// as allocations minus live blocks, from the slabs' bitmaps). Counted
    /// by class so the fast path adds no size.
    allocs: [AtomicU64; CLASSES],
    /// Bytes freed through this cache.
    freed_bytes: AtomicU64,
    /// Per class up to 1 KiB, free objects of full slabs (see [`Hints`]).
    hints: [Hints; HINTED],
    /// Every slab the cache owns (changed under the heap lock only).
    pub owned: Owned,
    /// Whether a thread or CPU uses the cache (under the heap lock).
    pub attached: AtomicU32,
    /// The registry of caches (under the heap lock).
    pub next_cache: AtomicPtr<Cache>,
}

impl Cache {
    /// A new, detached cache owning nothing.
    pub const fn new() -> Self {
        Self {
            busy: AtomicU32::new(0),
            recent: AtomicPtr::new(ptr::from_ref(&slab::NO_SLAB).cast_mut()),
            active: [const { AtomicPtr::new(ptr::from_ref(&slab::NO_SLAB).cast_mut().cast()) };
                CLASSES],
            partial: [const { List::new() }; CLASSES],
            pending: AtomicPtr::new(ptr::null_mut()),
            allocs: [const { AtomicU64::new(0) }; CLASSES],
            freed_bytes: AtomicU64::new(0),
            hints: [const { Hints::new() }; HINTED],
            owned: Owned::new(),
            attached: AtomicU32::new(0),
            next_cache: AtomicPtr::new(ptr::null_mut()),
        }
    }

    #[inline(always)]
    fn note_alloc(&self, class: usize) {
        let n = &self.allocs[class];
        n.store(n.load(Relaxed) + 1, Relaxed);
    }

    #[inline(always)]
    fn note_free(&self, size: usize) {
        self.freed_bytes
            .store(self.freed_bytes.load(Relaxed) + size as u64, Relaxed);
    }

    /// Blocks allocated through this cache (racy while its owner runs).
    pub fn allocations(&self) -> u64 {
        self.allocs.iter().map(|n| n.load(Relaxed)).sum()
    }

    /// Bytes allocated minus bytes freed through this cache (racy while its
    /// owner runs; blocks may be freed through another cache, so one
    /// cache's figure can be negative).
    pub fn live_bytes(&self) -> i64 {
        let allocated: u64 = (0..CLASSES)
            .map(|c| self.allocs[c].load(Relaxed) * u64::from(CLASS[c].size))
            .sum();
        allocated.wrapping_sub(self.freed_bytes.load(Relaxed)) as i64
    }

    /// Forgets every slab (after the heap took them all back).
    pub(super) fn clear(&self) {
        self.recent.store(slab::no_slab(), Relaxed);
        for c in 0..CLASSES {
            self.active[c].store(no_word(), Relaxed);
            self.partial[c].head.store(ptr::null_mut(), Relaxed);
        }
        for h in &self.hints {
            h.len.store(0, Relaxed);
        }
    }

    /// Forgets `s` as the recent slab and drops its hints (it is leaving
    /// the cache).
    pub(super) fn forget(&self, s: *mut Slab) {
        if self.recent.load(Relaxed) == s {
            self.recent.store(slab::no_slab(), Relaxed);
        }
        // SAFETY: `s` is a live descriptor (leaving, not gone).
        if let Some(h) = self.hints.get(unsafe { &*s }.class()) {
            h.drop_slab(s);
        }
    }

    /// Every slab a hint names (for `memshim_check`: each must be the
    /// cache's own).
    pub(super) fn hinted(&self) -> impl Iterator<Item = *mut Slab> + '_ {
        self.hints.iter().flat_map(|h| {
            let n = (h.len.load(Relaxed) as usize).min(HINTS);
            h.hint[..n].iter().map(|v| Hints::unpack(v.load(Relaxed)).0)
        })
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

/// The active slot of a class with no slab: a word of [`slab::NO_SLAB`].
fn no_word() -> *mut AtomicU64 {
    Slab::word(slab::no_slab(), 0)
}

/// Hints a cache keeps per class.
const HINTS: usize = 8;
/// Classes with hints: up to 1 KiB, where a slab holds enough objects for
/// a heap to hold many full slabs (and a cache record stays in one page).
const HINTED: usize = 32;
const _: () = assert!(CLASS[HINTED - 1].size == 1024);

/// Objects freed into a cache's full slabs, newest last. A full slab is on
/// no list, so without a hint its free object would wait for the slab to
/// be filed again; with one, the next allocation of the class takes it
/// back, and a workload that frees and allocates all over a large heap
/// stays on the fast paths. Hints only: the slab's bitmap is the truth, so
/// a hint whose object was since taken another way is skipped, and a
/// double free is caught by the bitmap as ever. A slab's hints go when it
/// leaves the cache. Written by the owner only.
struct Hints {
    len: AtomicU32,
    /// The slab's address shifted left by 8, with the object's index below.
    hint: [AtomicUsize; HINTS],
}

impl Hints {
    const fn new() -> Self {
        Self {
            len: AtomicU32::new(0),
            hint: [const { AtomicUsize::new(0) }; HINTS],
        }
    }

    /// The slab and object index of a hint. (A canonical address's top
    /// bits are copies of one bit: the arithmetic shift restores them.)
    #[inline(always)]
    fn unpack(v: usize) -> (*mut Slab, usize) {
        let s = ((v as isize) >> 8) as usize;
        (core::ptr::with_exposed_provenance_mut::<Slab>(s), v & 0xff)
    }

    /// Records object `idx` of slab `s`; false when full.
    #[inline(always)]
    fn push(&self, s: *mut Slab, idx: usize) -> bool {
        let n = self.len.load(Relaxed) as usize;
        if n >= HINTS {
            return false;
        }
        debug_assert!(idx < 256);
        self.hint[n].store(s.expose_provenance() << 8 | idx, Relaxed);
        self.len.store(n as u32 + 1, Relaxed);
        true
    }

    /// Takes the newest hinted object still free: its address and slab.
    ///
    /// # Safety
    /// The caller owns the cache (its hints name its own slabs).
    unsafe fn take(&self) -> Option<(usize, *mut Slab)> {
        let mut n = self.len.load(Relaxed) as usize;
        while n > 0 {
            n -= 1;
            let (s, idx) = Self::unpack(self.hint[n].load(Relaxed));
            // SAFETY: hints name live slabs the cache owns.
            if let Some(p) = unsafe { (*s).take_at(idx) } {
                self.len.store(n as u32, Relaxed);
                return Some((p, s));
            }
        }
        self.len.store(0, Relaxed);
        None
    }

    /// Drops every hint naming `s`.
    fn drop_slab(&self, s: *mut Slab) {
        let n = self.len.load(Relaxed) as usize;
        let mut kept = 0;
        for i in 0..n.min(HINTS) {
            let v = self.hint[i].load(Relaxed);
            if Self::unpack(v).0 != s {
                self.hint[kept].store(v, Relaxed);
                kept += 1;
            }
        }
        self.len.store(kept as u32, Relaxed);
    }
}

// SAFETY: a cache's plain-store fields are written only by the one thread or
// CPU that owns it at the time; everything shared is atomic.
unsafe impl Sync for Cache {}

/// What the front end needs from its surroundings: the lock-free shared
/// state and a way to run code under the heap lock.
pub trait Backend {
    /// The page map and the heap's pending stack.
    fn shared(&self) -> &Shared;
    /// Runs `f` with the heap and its page source, under the heap lock;
    /// `None` when the caller already holds it (a re-entrant call, reported
    /// already): the operation then fails without touching the heap.
    fn locked<R>(&self, f: impl FnOnce(&mut Heap, &mut dyn Source) -> R) -> Option<R>;
}

/// Takes a block of class `class` from the active slab of cache `c`, if
/// its current word has one: the whole fast path, no lock, no atomic.
///
/// The caller owns `c` for the duration (and has set its `busy` flag).
#[inline(always)]
pub fn alloc_fast(c: &Cache, class: usize) -> Option<NonNull<u8>> {
    let word = c.active[class].load(Relaxed);
    let s = Slab::of_word(word);
    // SAFETY: a cache's active slots hold free words of live descriptors it
    // owns (or of NO_SLAB).
    let p = unsafe { (*s).take_from(&*word) }?;
    c.recent.store(s, Relaxed);
    c.note_alloc(class);
    // SAFETY: slab objects are never at address 0.
    Some(unsafe { NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut::<u8>(p)) })
}

/// Allocates a block of class `class` from cache `c`. `None`: no memory.
///
/// The caller owns `c` for the duration (and has set its `busy` flag).
#[inline(always)]
pub fn alloc<B: Backend>(b: &B, c: &Cache, class: usize) -> Option<NonNull<u8>> {
    match alloc_fast(c, class) {
        Some(p) => Some(p),
        None => alloc_slow(b, c, class),
    }
}

/// [`alloc`] when the active slab's current word is empty.
#[inline(never)]
#[cold]
pub fn alloc_slow<B: Backend>(b: &B, c: &Cache, class: usize) -> Option<NonNull<u8>> {
    let size = CLASS[class].size as usize;
    // SAFETY: the caller owns `c`.
    if let Some((p, s)) = c.hints.get(class).and_then(|h| unsafe { h.take() }) {
        c.recent.store(s, Relaxed);
        c.note_alloc(class);
        return NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(p));
    }
    if let Some(p) = refill(b, c, class) {
        c.note_alloc(class);
        return NonNull::new(core::ptr::with_exposed_provenance_mut::<u8>(p));
    }
    // No slab to be had: the block comes from the TLSF (under pressure, a
    // small block there beats failing), aligned as well as any object of
    // the class would have been (and counted by the TLSF, not the cache).
    let align = (1usize << size.trailing_zeros()).min(super::pagemap::PAGE);
    b.locked(|h, src| h.alloc_tlsf(size, align, src)).flatten()
}

/// Finds room in class `class` and takes one object: the active slab's
/// other words, merged remote frees, a partial slab, then the heap.
fn refill<B: Backend>(b: &B, c: &Cache, class: usize) -> Option<usize> {
    let cur = Slab::of_word(c.active[class].load(Relaxed));
    // SAFETY: the active slot holds a free word of a live descriptor `c`
    // owns (or of NO_SLAB, which has no free words).
    let slab = unsafe { &*cur };
    let again = |c: &Cache| {
        let w = Slab::word(cur, slab.seek()?);
        c.active[class].store(w, Relaxed);
        // SAFETY: `c`'s active slab is its own; `w` is one of its words.
        unsafe { slab.take_from(&*w) }
    };
    if let Some(p) = again(c) {
        return Some(p);
    }
    drain_pending(b, c);
    // Draining never releases the active slab.
    if let Some(p) = again(c) {
        return Some(p);
    }
    if cur != slab::no_slab() {
        // Exhausted: it waits, full, for frees to make room.
        slab.set_place(place::FULL);
        c.active[class].store(no_word(), Relaxed);
    }
    loop {
        // SAFETY: the partial list is `c`'s own.
        let mut next = unsafe { c.partial[class].pop() };
        if next.is_null() {
            next = b
                .locked(|h, src| h.give_slab(src, c, class))
                .unwrap_or(ptr::null_mut());
            if next.is_null() {
                return None;
            }
        }
        // SAFETY: `next` is a live descriptor `c` now owns.
        let s = unsafe { &*next };
        let Some(i) = s.seek() else {
            // A partial slab whose free objects hints took since: full now.
            s.set_place(place::FULL);
            continue;
        };
        s.set_place(place::ACTIVE);
        let w = Slab::word(next, i);
        c.active[class].store(w, Relaxed);
        // SAFETY: `c` owns `s` now; `w` is one of its words.
        return unsafe { s.take_from(&*w) };
    }
}

/// Merges every remote free pushed to `c` (its owner only).
pub fn drain_pending<B: Backend>(b: &B, c: &Cache) {
    let mut s = slab::take_pending(&c.pending);
    while !s.is_null() {
        // SAFETY: slabs on a pending stack are live descriptors (a slab is
        // never destroyed while `NOTIFIED` is set).
        let slab = unsafe { &*s };
        let next = slab.pending_next.load(Acquire);
        if ptr::eq(slab.owner.load(Acquire), c) {
            let (merged, dup) = slab.merge_remote();
            if let Some(p) = dup {
                let _ = b.locked(|h, _| h.note_fault(Fault::DoubleFree(p)));
            }
            if merged > 0 {
                settle(b, c, s);
            }
        } else {
            // Pushed while another owner had it: the heap routes it on.
            let _ = b.locked(|h, src| h.reroute(src, s));
        }
        s = next;
    }
}

/// After frees into slab `s` (owned by `c`): files it by what it holds now.
fn settle<B: Backend>(b: &B, c: &Cache, s: *mut Slab) {
    // SAFETY: `s` is a live descriptor `c` owns.
    let slab = unsafe { &*s };
    let class = slab.class();
    match slab.place.load(Relaxed) {
        place::FULL => {
            if slab.is_empty() {
                c.forget(s);
                let _ = b.locked(|h, src| h.take_back(src, c, s));
            } else {
                slab.set_place(place::PARTIAL);
                // SAFETY: `c` owns its partial lists; `s` is on none.
                unsafe { c.partial[class].push(s) };
            }
        }
        place::PARTIAL if slab.is_empty() => {
            // SAFETY: `s` is on `c`'s partial list for its class.
            unsafe { c.partial[class].remove(s) };
            c.forget(s);
            let _ = b.locked(|h, src| h.take_back(src, c, s));
        }
        _ => {}
    }
}

/// What [`free_fast`] did.
pub enum FastFree {
    /// Freed; nothing more to do.
    Done,
    /// Nothing done yet: object `.1` of slab `.0` has marks to look at (see
    /// `Slab::free_mine`); the caller frees it with [`marked`].
    Marked(*mut Slab, usize),
    /// Nothing done: the caller takes [`free`].
    Slow,
}

/// Frees `a` into a slab cache `c` owns, if it is a live object of one:
/// the whole fast path, no lock, no atomic, no call. `Slow`, with nothing
/// changed: anything else (another owner's slab, a TLSF block, a fault).
///
/// The caller owns `c` for the duration (and has set its `busy` flag).
#[inline(always)]
pub fn free_fast(shared: &Shared, c: &Cache, a: usize) -> FastFree {
    let mut s = c.recent.load(Relaxed);
    // SAFETY: `recent` is a live descriptor `c` owns, or NO_SLAB.
    let off = match unsafe { (*s).offset_of_mine(a) } {
        Some(off) => off,
        None => {
            let e = shared.map.get(a);
            if e & TAG_MASK != TAG_SLAB {
                return FastFree::Slow;
            }
            s = core::ptr::with_exposed_provenance_mut::<Slab>(e & !TAG_MASK);
            // SAFETY: slab entries point at live slab descriptors.
            if !ptr::eq(unsafe { &*s }.owner.load(Relaxed), c) {
                return FastFree::Slow;
            }
            // SAFETY: `c` owns the slab (checked just before).
            let Some(off) = (unsafe { (*s).offset_of_mine(a) }) else {
                return FastFree::Slow;
            };
            c.recent.store(s, Relaxed);
            off
        }
    };
    // SAFETY: `s` is a live descriptor `c` owns (checked, or `recent`).
    let slab = unsafe { &*s };
    // SAFETY: as above.
    let Some(idx) = (unsafe { slab.object_of_mine(off) }) else {
        return FastFree::Slow;
    };
    // SAFETY: as above; `idx` from `object_of_mine`.
    match unsafe { slab.free_mine(idx) } {
        Freed::Quiet => {
            c.note_free(slab.size.load(Relaxed) as usize);
            FastFree::Done
        }
        Freed::Marked => FastFree::Marked(s, idx),
        Freed::Watched | Freed::Refused => FastFree::Slow,
    }
}

/// Frees object `idx` of slab `s` after [`free_fast`] found marks on the
/// slab: remote frees to check against, or a watch. A full slab's object
/// becomes a hint (or, hints full, the slab is filed again); an empty slab
/// goes back to the heap.
///
/// # Safety
/// `s` and `idx` are what [`free_fast`] returned for `c`, just before; the
/// caller still owns `c`.
#[cold]
#[inline(never)]
pub unsafe fn marked<B: Backend>(b: &B, c: &Cache, s: *mut Slab, idx: usize) -> Result<(), Fault> {
    // SAFETY: per the contract `s` is a live descriptor `c` owns.
    let slab = unsafe { &*s };
    let size = slab.size.load(Relaxed) as usize;
    // SAFETY: per the contract, `idx` is an object index of the slab.
    match unsafe { slab.free_marked(idx) } {
        Freed::Refused => {
            let a = slab.base.load(Relaxed) + idx * size;
            return Err(fault(SlabFault::DoubleFree, a));
        }
        Freed::Watched => {
            let hinted = slab.place.load(Relaxed) == place::FULL
                && !slab.is_empty()
                && c.hints.get(slab.class()).is_some_and(|h| h.push(s, idx));
            if !hinted {
                settle(b, c, s);
            }
        }
        Freed::Quiet | Freed::Marked => {}
    }
    c.note_free(size);
    Ok(())
}

/// Frees `p` through cache `c` when [`free_fast`] did not: a slab object
/// of its own with what its owner watches for, of another owner's slab
/// with one atomic OR (no lock), anything else under the lock. Faults are
/// returned, nothing written.
///
/// The caller owns `c` for the duration (and has set its `busy` flag).
pub fn free<B: Backend>(b: &B, c: &Cache, p: NonNull<u8>) -> Result<(), Fault> {
    let a = p.as_ptr().addr();
    let e = b.shared().map.get(a);
    if e & TAG_MASK != TAG_SLAB {
        return b.locked(|h, src| h.free_entry(a, e, src)).unwrap_or(Ok(()));
    }
    // SAFETY: slab entries point at live slab descriptors.
    let s = unsafe { &*core::ptr::with_exposed_provenance::<Slab>(e & !TAG_MASK) };
    let (w, bit) = s.locate(a).map_err(|f| fault(f, a))?;
    let size = s.size.load(Relaxed) as usize;
    if ptr::eq(s.owner.load(Relaxed), c) {
        if s.free_local(w, bit).map_err(|f| fault(f, a))? {
            settle(b, c, ptr::from_ref(s).cast_mut());
        }
    } else {
        free_remote(b.shared(), s, w, bit).map_err(|f| fault(f, a))?;
    }
    c.note_free(size);
    Ok(())
}

/// Frees object (w, bit) of a slab its caller does not own.
pub fn free_remote(shared: &Shared, s: &Slab, w: usize, bit: u64) -> Result<(), SlabFault> {
    if s.free_remote(w, bit)? {
        let owner = s.owner.load(Acquire);
        // SAFETY: caches are never freed; a null owner means the heap's stack.
        let stack = unsafe { owner.as_ref() }.map_or(&shared.pending, |o| &o.pending);
        // SAFETY: this call set `NOTIFIED`, so the slab is on no stack.
        unsafe { slab::push_pending(stack, ptr::from_ref(s).cast_mut()) };
    }
    Ok(())
}

/// The fault for a slab pointer that failed.
pub fn fault(f: SlabFault, a: usize) -> Fault {
    match f {
        SlabFault::Interior => Fault::InvalidPointer(a),
        SlabFault::DoubleFree => Fault::DoubleFree(a),
    }
}

/// Usable size of `p` when it is a slab object (lock-free), else `None`
/// (the caller asks the heap).
pub fn slab_usable(shared: &Shared, p: usize) -> Option<Result<usize, Fault>> {
    let e = shared.map.get(p);
    if e & TAG_MASK != TAG_SLAB {
        return None;
    }
    // SAFETY: slab entries point at live slab descriptors.
    let s = unsafe { &*core::ptr::with_exposed_provenance::<Slab>(e & !TAG_MASK) };
    Some(match s.locate(p) {
        Ok((w, bit)) => {
            let live = (s.free[w].load(Relaxed) | s.remote[w].load(Relaxed)) & bit == 0;
            if live {
                Ok(s.size.load(Relaxed) as usize)
            } else {
                Err(Fault::DoubleFree(p))
            }
        }
        Err(f) => Err(fault(f, p)),
    })
}

/// The class for a request, if slabs serve it.
#[inline(always)]
pub fn class_for(n: usize) -> Option<usize> {
    (n <= class::SMALL_MAX).then(|| class::of(n))
}

/// Gives the heap back every slab of cache `c` that holds nothing: its
/// active slabs (a partial slab that empties goes back at once). The
/// caller owns `c`.
pub fn release_empty<B: Backend>(b: &B, c: &Cache) {
    drain_pending(b, c);
    for class in 0..CLASSES {
        let s = Slab::of_word(c.active[class].load(Relaxed));
        // SAFETY: an active slot names a live descriptor `c` owns (or NO_SLAB).
        if s == slab::no_slab() || !unsafe { &*s }.is_empty() {
            continue;
        }
        c.active[class].store(no_word(), Relaxed);
        c.forget(s);
        let _ = b.locked(|h, src| h.take_back(src, c, s));
    }
}

/// Gives every slab of cache `c` back to the heap (its thread ended, its CPU
/// went offline, or a trim): merged, filed and released under the lock.
/// The cache must not be in use.
pub fn flush<B: Backend>(b: &B, c: &Cache) {
    drain_pending(b, c);
    let _ = b.locked(|h, src| h.adopt_all(src, c));
}

/// Allocates `size` bytes aligned to `align` (a power of two): through
/// cache `c` when the class allows, else under the lock. `None`: no memory.
pub fn alloc_any<B: Backend>(
    b: &B,
    c: Option<&Cache>,
    size: usize,
    align: usize,
) -> Option<NonNull<u8>> {
    if !align.is_power_of_two() {
        return None;
    }
    let align = align.max(super::MIN_ALIGN);
    if let (Some(c), Some(class)) = (c, class::of_aligned(size, align)) {
        return alloc(b, c, class);
    }
    b.locked(|h, src| h.alloc(size, align, src)).flatten()
}

/// Frees `p`: through cache `c` if given, else under the lock.
pub fn free_any<B: Backend>(b: &B, c: Option<&Cache>, p: NonNull<u8>) -> Result<(), Fault> {
    match c {
        Some(c) => match free_fast(b.shared(), c, p.as_ptr().addr()) {
            FastFree::Done => Ok(()),
            // SAFETY: just returned by `free_fast` for `c`.
            FastFree::Marked(s, idx) => unsafe { marked(b, c, s, idx) },
            FastFree::Slow => free(b, c, p),
        },
        None => b
            .locked(|h, src| h.free_block(p.as_ptr().addr(), src))
            .unwrap_or(Ok(())),
    }
}

/// Usable bytes of block `p` (at least what was asked for).
pub fn usable_any<B: Backend>(b: &B, p: usize) -> Result<usize, Fault> {
    match slab_usable(b.shared(), p) {
        Some(r) => r,
        None => b.locked(|h, _| h.usable_size(p)).unwrap_or(Ok(0)),
    }
}

/// Resizes `p` to `size` bytes (not 0): in place when it still fits its
/// slab object (and would not leave more than half of it unused) or the
/// TLSF neighbour allows, else by moving (alloc, copy, free). `Ok(None)`:
/// no memory, `p` untouched.
pub fn realloc_any<B: Backend>(
    b: &B,
    c: Option<&Cache>,
    p: NonNull<u8>,
    size: usize,
) -> Result<Option<NonNull<u8>>, Fault> {
    let a = p.as_ptr().addr();
    let old = match slab_usable(b.shared(), a) {
        Some(r) => {
            let usable = r?;
            if size <= usable && size > usable / 2 {
                return Ok(Some(p));
            }
            usable
        }
        None => {
            let Some(r) = b.locked(|h, _| match h.resize_in_place(a, size) {
                Ok(true) => Ok(None),
                Ok(false) => h.usable_size(a).map(Some),
                Err(f) => Err(f),
            }) else {
                return Ok(None);
            };
            let r = r?;
            match r {
                None => return Ok(Some(p)),
                Some(usable) => usable,
            }
        }
    };
    let Some(q) = alloc_any(b, c, size, super::MIN_ALIGN) else {
        return Ok(None);
    };
    // SAFETY: both blocks are live and at least min(old, size) long; they
    // are distinct blocks, so they do not overlap.
    unsafe { ptr::copy_nonoverlapping(p.as_ptr(), q.as_ptr(), old.min(size)) };
    free_any(b, c, p)?;
    Ok(Some(q))
}
