//! The heap driven by arbitrary action sequences, against a shadow model.
//!
//! A local `Heap` gets memory from caller regions (inside one buffer) and
//! from a test `Source` handing out page-aligned spans from a page pool
//! (both allocated once with `std::alloc`) under a byte budget. Every
//! allocation, free and realloc goes through one of two caches (as if two
//! threads: frees of the other's blocks are remote frees) or the locked
//! path, chosen by the input, through the same front end the global heap
//! uses. Under
//! AddressSanitizer everything the heap was not given, or gave back, is
//! poisoned, so any access to it is reported. Every live block is filled
//! with its own byte; the target asserts contents, alignment, non-overlap,
//! that blocks lie in memory the heap was given, the counters, and
//! `check() == 0` after every action. Misuse (double free, interior, stack
//! and foreign pointers) must come back as `Err(Fault)` with nothing changed.

#![no_main]
#![feature(cfg_sanitize)]

use libfuzzer_sys::fuzz_target;
use memshim::heap::cache::{self, Backend, Cache};
use memshim::heap::{Fault, Heap, HeapStats, Shared, MIN_ALIGN};
use memshim::source::{Source, SpanKind, PAGE};
use memshim::Error;
use std::alloc::{alloc, Layout};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The buffer caller regions are cut from.
const REGION_BYTES: usize = 256 * 1024;
/// The pool the test source hands pages from (more than any budget).
const POOL_BYTES: usize = 8 << 20;
/// Every this many actions, every live block's contents are verified.
const VERIFY_EVERY: usize = 16;

/// Reads the fuzz input; past its end everything reads as zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// A request size: mostly small, sometimes up to 1 MiB.
    fn size(&mut self) -> usize {
        let b = self.u8();
        match b >> 6 {
            0 => usize::from(b & 63),
            1 => usize::from(self.u8()) * 4 + usize::from(b & 3),
            2 => usize::from(self.u16() & 0x3fff),
            _ => usize::from(self.u16()) << 4,
        }
    }
}

/// A buffer allocated once for the process, page-aligned.
struct Buf(*mut u8);
// SAFETY: libFuzzer runs one input at a time; only that run uses the buffer.
unsafe impl Send for Buf {}
// SAFETY: as above.
unsafe impl Sync for Buf {}

fn buffer(cell: &'static OnceLock<Buf>, len: usize) -> *mut u8 {
    cell.get_or_init(|| {
        // SAFETY: non-zero size.
        let p = unsafe { alloc(Layout::from_size_align(len, PAGE).unwrap()) };
        assert!(!p.is_null());
        Buf(p)
    })
    .0
}

fn region_buf() -> *mut u8 {
    static B: OnceLock<Buf> = OnceLock::new();
    buffer(&B, REGION_BYTES)
}

fn pool() -> *mut u8 {
    static B: OnceLock<Buf> = OnceLock::new();
    buffer(&B, POOL_BYTES)
}

#[cfg(sanitize = "address")]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Makes `len` bytes at `p` (inside one of the buffers) inaccessible under
/// ASan, or accessible again.
fn poison(p: *const u8, len: usize, on: bool) {
    #[cfg(sanitize = "address")]
    // SAFETY: the range lies inside a live buffer this target owns.
    unsafe {
        if on {
            __asan_poison_memory_region(p, len)
        } else {
            __asan_unpoison_memory_region(p, len)
        }
    }
    #[cfg(not(sanitize = "address"))]
    let _ = (p, len, on);
}

/// Page spans from the pool, at most `budget` bytes at a time.
struct TestSource {
    /// Base address -> length of each span handed out.
    spans: HashMap<usize, usize>,
    /// Which pool pages are handed out.
    taken: Vec<bool>,
    kind: SpanKind,
    budget: usize,
    used: usize,
    /// Extra pages added to every span (a source may give more than asked).
    extra: usize,
    /// Refuse to take spans back (the heap must then keep them).
    keep: bool,
    /// Whether `keep` was ever set (spans may then outlive their blocks).
    kept: bool,
}

impl Source for TestSource {
    fn grow(&mut self, min: usize) -> Option<(NonNull<u8>, usize, SpanKind)> {
        assert!(
            min > 0 && min.is_multiple_of(PAGE),
            "grow({min}): not whole pages"
        );
        let len = min.checked_add(self.extra * PAGE)?;
        if self.used.checked_add(len)? > self.budget {
            return None;
        }
        let n = len / PAGE;
        let mut run = 0;
        let last = self.taken.iter().position(|&t| {
            run = if t { 0 } else { run + 1 };
            run == n
        })?;
        let first = last + 1 - n;
        self.taken[first..first + n].fill(true);
        // SAFETY: the run lies inside the pool.
        let p = unsafe { pool().add(first * PAGE) };
        poison(p, len, false);
        self.spans.insert(p.addr(), len);
        self.used += len;
        Some((NonNull::new(p)?, len, self.kind))
    }

    unsafe fn shrink(&mut self, base: NonNull<u8>, len: usize, kind: SpanKind) -> bool {
        let a = base.as_ptr().addr();
        assert_eq!(kind, self.kind, "shrink of a different kind of span");
        // A whole span, or (not for page hooks, which take back exactly
        // what they gave) the end of one whose front became metadata.
        let start = match self.spans.get(&a) {
            Some(&had) => {
                assert_eq!(had, len, "shrink of a different span");
                a
            }
            None => {
                assert_ne!(kind, SpanKind::PageHooks, "page hooks given part of a span");
                *self
                    .spans
                    .iter()
                    .find(|(&s, &l)| s < a && s + l == a + len)
                    .expect("shrink of a span this source never gave")
                    .0
            }
        };
        if self.keep {
            return false;
        }
        if start == a {
            self.spans.remove(&a);
        } else {
            self.spans.insert(start, a - start);
        }
        self.used -= len;
        let first = (a - pool().addr()) / PAGE;
        self.taken[first..first + len / PAGE].fill(false);
        poison(base.as_ptr(), len, true);
        true
    }
}

impl TestSource {
    fn holds(&self, a: usize, len: usize) -> bool {
        self.spans.iter().any(|(&s, &l)| a >= s && a + len <= s + l)
    }
}

/// A live block in the shadow.
#[derive(Clone, Copy)]
struct Block {
    usable: usize,
    fill: u8,
}

/// The heap and its source behind a `RefCell`: the fuzzer's stand-in for
/// the global lock.
struct Back {
    shared: &'static Shared,
    inner: RefCell<(Box<Heap>, TestSource)>,
}

impl Backend for Back {
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn locked<R>(&self, f: impl FnOnce(&mut Heap, &mut dyn Source) -> R) -> Option<R> {
        let mut g = self.inner.borrow_mut();
        let (h, s) = &mut *g;
        Some(f(h, s))
    }
}

impl Back {
    /// `locked`, which cannot fail here.
    fn with<R>(&self, f: impl FnOnce(&mut Heap, &mut dyn Source) -> R) -> R {
        Backend::locked(self, f).expect("the fuzzer's heap is never re-entered")
    }
}

struct Model {
    back: Back,
    /// Two caches (as if two threads); `None` is the locked path.
    caches: [Option<&'static Cache>; 3],
    /// Aligned ranges of the regions the heap accepted.
    regions: Vec<(usize, usize)>,
    live: BTreeMap<usize, Block>,
    order: Vec<usize>,
    /// Pointers freed since the last alloc/realloc: still marked free.
    stale: Vec<usize>,
    in_use: usize,
    next_fill: u8,
    /// What happened, by outcome (printed with HEAP_DEBUG=1).
    tally: BTreeMap<&'static str, usize>,
}

/// Whether every byte of `s` is `b`. Compared a page at a time with
/// `memcmp`, which the fuzzer does not instrument byte by byte.
fn filled(s: &[u8], b: u8) -> bool {
    let pat = [b; PAGE];
    s.chunks(PAGE).all(|c| c == &pat[..c.len()])
}

fn ptr(a: usize) -> NonNull<u8> {
    NonNull::new(a as *mut u8).expect("null block")
}

impl Model {
    fn note(&mut self, what: &'static str) {
        if std::env::var_os("HEAP_TRACE").is_some() {
            eprintln!("{what} (in use {})", self.in_use);
        }
        *self.tally.entry(what).or_default() += 1;
    }

    fn fill(&mut self) -> u8 {
        self.next_fill = self.next_fill.wrapping_add(1).max(1);
        self.next_fill
    }

    /// Whether `[a, a+len)` lies inside memory the heap was given.
    fn given(&self, a: usize, len: usize) -> bool {
        self.regions.iter().any(|&(s, e)| a >= s && a + len <= e)
            || self.back.inner.borrow().1.holds(a, len)
    }

    fn via(&self, b: u8) -> Option<&'static Cache> {
        self.caches[usize::from(b) % 3]
    }

    fn stats(&self) -> HeapStats {
        self.back.with(|h, _| h.stats())
    }

    fn fault(&self) -> Option<Fault> {
        self.back.with(|h, _| h.take_fault())
    }

    fn verify(&self, a: usize) {
        let b = self.live[&a];
        // SAFETY: a live block of `usable` bytes.
        let s = unsafe { std::slice::from_raw_parts(a as *const u8, b.usable) };
        if !filled(s, b.fill) {
            let i = s.iter().position(|&x| x != b.fill).unwrap();
            panic!("block {a:#x}: byte {i} is {:#x}, wrote {:#x}", s[i], b.fill);
        }
    }

    fn verify_all(&self) {
        for &a in self.live.keys() {
            self.verify(a);
        }
    }

    /// Records a new block at `a` (asked `n` bytes, aligned to `align`).
    fn adopt(&mut self, a: usize, n: usize, align: usize) {
        let usable = cache::usable_any(&self.back, a).expect("usable_size of a new block");
        assert!(usable >= n, "block {a:#x}: {usable} usable, asked {n}");
        assert_eq!(
            a % align.max(MIN_ALIGN),
            0,
            "block {a:#x} not aligned to {align}"
        );
        assert!(
            self.given(a, usable),
            "block {a:#x}+{usable} outside the heap's memory"
        );
        if let Some((&b, blk)) = self.live.range(..a + usable).next_back() {
            assert!(
                b + blk.usable <= a,
                "block {a:#x}+{usable} overlaps {b:#x}+{}",
                blk.usable
            );
        }
        if std::env::var_os("HEAP_TRACE").is_some() {
            eprintln!("  adopt {a:#x} n {n} align {align} usable {usable}");
        }
        let fill = self.fill();
        // SAFETY: the block's usable bytes are ours to write.
        unsafe { std::ptr::write_bytes(a as *mut u8, fill, usable) };
        self.live.insert(a, Block { usable, fill });
        self.order.push(a);
        self.in_use += usable;
    }

    fn forget(&mut self, a: usize) -> Block {
        let b = self.live.remove(&a).expect("forget of a block not live");
        let i = self.order.iter().position(|&x| x == a).unwrap();
        self.order.swap_remove(i);
        self.in_use -= b.usable;
        b
    }

    fn pick(&self, i: u8) -> Option<usize> {
        (!self.order.is_empty()).then(|| self.order[usize::from(i) % self.order.len()])
    }

    fn alloc(&mut self, via: u8, n: usize, align: usize) {
        self.stale.clear();
        match cache::alloc_any(&self.back, self.via(via), n, align) {
            Some(p) => {
                self.note(if align > MIN_ALIGN {
                    "alloc aligned"
                } else {
                    "alloc"
                });
                self.adopt(p.as_ptr().addr(), n, align)
            }
            None => self.note("alloc: no memory"),
        }
        if let Some(f) = self.fault() {
            panic!("alloc({n}, {align}) on a healthy heap: {f}");
        }
    }

    fn free(&mut self, via: u8, i: u8) {
        let Some(a) = self.pick(i) else { return };
        self.verify(a);
        cache::free_any(&self.back, self.via(via), ptr(a)).expect("free of a live block");
        self.forget(a);
        self.stale.push(a);
        self.note("free");
    }

    fn realloc(&mut self, via: u8, i: u8, n: usize) {
        let Some(a) = self.pick(i) else { return };
        self.verify(a);
        self.stale.clear();
        match cache::realloc_any(&self.back, self.via(via), ptr(a), n.max(1)) {
            Ok(Some(q)) => {
                let old = self.forget(a);
                let q = q.as_ptr().addr();
                let kept = old.usable.min(n.max(1));
                // SAFETY: `q` is a live block of at least `n` bytes.
                let s = unsafe { std::slice::from_raw_parts(q as *const u8, kept) };
                assert!(
                    filled(s, old.fill),
                    "realloc {a:#x} -> {q:#x} ({n}): contents lost"
                );
                self.adopt(q, n.max(1), MIN_ALIGN);
                if q != a {
                    self.stale.push(a);
                }
                self.note(if q == a {
                    "realloc in place"
                } else {
                    "realloc moved"
                });
            }
            Ok(None) => {
                self.verify(a);
                self.note("realloc: no memory");
            }
            Err(f) => panic!("realloc of live block {a:#x}: {f}"),
        }
    }

    fn usable(&self, i: u8) {
        let Some(a) = self.pick(i) else { return };
        let u = cache::usable_any(&self.back, a).expect("usable_size of a live block");
        assert_eq!(u, self.live[&a].usable, "usable_size of {a:#x} changed");
    }

    /// Adds a caller region. `add_span`'s size threshold is not public, so
    /// its answers must only be consistent (one threshold for the process,
    /// below a page); overlaps and refusals are predicted exactly.
    fn add_region(&mut self, off: u32, len: u32) {
        static SMALLEST_OK: AtomicUsize = AtomicUsize::new(usize::MAX);
        static LARGEST_TOO_SMALL: AtomicUsize = AtomicUsize::new(0);
        let off = off as usize % REGION_BYTES;
        let len = len as usize % (REGION_BYTES - off + 1);
        // SAFETY: inside the buffer (off <= REGION_BYTES).
        let base = unsafe { region_buf().add(off) };
        let start = (base.addr() + MIN_ALIGN - 1) & !(MIN_ALIGN - 1);
        let end = (base.addr() + len) & !(MIN_ALIGN - 1);
        let alen = end.saturating_sub(start);
        let overlap = self.regions.iter().any(|&(s, e)| start < e && s < end);
        // Fresh memory is opened to the heap and marked, so that a refusal
        // can be seen to write nothing.
        let fresh = alen > 0 && !overlap;
        if fresh {
            poison(start as *const u8, alen, false);
            // SAFETY: part of the region buffer nothing else uses.
            unsafe { (start as *mut u8).write_bytes(0xEE, alen) };
        }
        // SAFETY: a range of the buffer; the heap refuses overlaps with
        // what it holds, and the model predicts exactly when.
        let got = self
            .back
            .with(|h, src| unsafe { h.add_span(base, len, SpanKind::Region, src) });
        // A page shared with an earlier region stays with it: the new one
        // is trimmed to whole pages of its own there, so its size verdict
        // depends on its neighbours, not on its length alone.
        let page = |a: usize| a / PAGE;
        let shares = self
            .regions
            .iter()
            .any(|&(s, e)| page(start) <= page(e - 1) && page(s) <= page(end.max(1) - 1));
        let (small_ok, large_small) = (
            SMALLEST_OK.load(Ordering::Relaxed),
            LARGEST_TOO_SMALL.load(Ordering::Relaxed),
        );
        let what = format!(
            "add_span(+{off:#x}, {len:#x}) = {got:?} (aligned {start:#x}..{end:#x}, {alen:#x}; \
             shares a page: {shares}; smallest accepted {small_ok:#x}, largest too small {large_small:#x})"
        );
        if std::env::var_os("HEAP_TRACE").is_some() {
            eprintln!("{what}");
        }
        match got {
            Ok(()) => {
                assert!(!overlap && (shares || alen > large_small), "{what}");
                if !shares {
                    SMALLEST_OK.fetch_min(alen, Ordering::Relaxed);
                }
                self.regions.push((start, end));
                self.note("region added");
                return;
            }
            Err(Error::TooSmall) => {
                if shares {
                    assert!(alen < 2 * PAGE, "{what}");
                } else {
                    assert!(alen < small_ok && alen < PAGE, "{what}");
                    LARGEST_TOO_SMALL.fetch_max(alen, Ordering::Relaxed);
                }
            }
            Err(Error::Overlap) => assert!(overlap, "{what}"),
            // No source for its metadata and too short to hold it itself.
            Err(Error::NoMemory) => assert!(alen < 16 * PAGE, "{what}"),
            Err(_) => panic!("{what}"),
        }
        self.note("region refused");
        if fresh {
            // SAFETY: as above; the heap refused it.
            let s = unsafe { std::slice::from_raw_parts(start as *const u8, alen) };
            assert!(filled(s, 0xEE), "{what} wrote into the region");
            poison(start as *const u8, alen, true);
        }
    }

    /// Runs a misuse: it must fail and change nothing.
    fn misuse(&mut self, bad: usize, how: u8) {
        if bad == 0 || self.live.contains_key(&bad) {
            return;
        }
        let before = self.stats();
        let p = ptr(bad);
        let via = self.via(how >> 2);
        let r = match how % 3 {
            0 => cache::free_any(&self.back, via, p),
            1 => cache::realloc_any(&self.back, via, p, 64).map(|_| ()),
            _ => cache::usable_any(&self.back, bad).map(|_| ()),
        };
        let f = r.expect_err("misuse accepted");
        match f {
            Fault::DoubleFree(x) | Fault::InvalidPointer(x) => {
                assert_eq!(x, bad, "misuse of {bad:#x} reported as {f}")
            }
            Fault::Corrupted { .. } => panic!("misuse of {bad:#x} seen as corruption: {f}"),
        }
        assert_eq!(
            self.stats(),
            before,
            "misuse of {bad:#x} ({f}) changed the heap"
        );
        self.verify_all();
        self.note(match f {
            Fault::DoubleFree(_) => "misuse: double free",
            Fault::InvalidPointer(_) => "misuse: invalid pointer",
            Fault::Corrupted { .. } => "misuse: corrupted",
        });
    }

    fn double_free(&mut self, i: u8, how: u8) {
        if self.stale.is_empty() {
            self.free(how, i);
        }
        if let Some(&a) = self.stale.get(usize::from(i) % self.stale.len().max(1)) {
            let before = self.stats();
            let r = cache::free_any(&self.back, self.via(how >> 1), ptr(a));
            // A span given back to the source makes the pointer foreign, and
            // so does a slab given back to the TLSF (its objects are then
            // inside a free block): still refused, named less precisely.
            match r {
                Err(Fault::DoubleFree(x)) => assert_eq!(x, a),
                Err(Fault::InvalidPointer(x)) => assert_eq!(x, a),
                _ => panic!("double free of {a:#x}: {r:?}"),
            }
            assert_eq!(self.stats(), before);
            self.note("double free");
            if how & 1 != 0 {
                self.misuse(a, how >> 1);
            }
        }
    }

    /// Regions, plus what the source handed out (spans and metadata).
    fn live_spans(&self) -> usize {
        self.regions.len() + self.back.inner.borrow().1.spans.len()
    }

    fn interior(&mut self, i: u8, off: u16, how: u8) {
        let Some(a) = self.pick(i) else { return };
        let usable = self.live[&a].usable as isize;
        let off = isize::from(off as i16) % (usable + 64);
        if off != 0 {
            self.misuse(a.wrapping_add_signed(off), how);
        }
    }

    fn foreign(&mut self, which: u8, how: u8) {
        let local = [0u128; 8];
        let boxed = Box::new([0u128; 8]);
        let bad = match which % 4 {
            0 => std::ptr::from_ref(&local[4]).addr(),
            1 => std::ptr::from_ref(&boxed[4]).addr(),
            // The region buffer: inside a span's record or outside any span.
            2 => region_buf().addr() + usize::from(which) * 16,
            _ => region_buf().addr() + REGION_BYTES - 16,
        };
        self.misuse(bad, how);
    }

    fn huge(&mut self, which: u8) {
        let (n, align) = match which % 4 {
            0 => (usize::MAX - usize::from(which), MIN_ALIGN),
            1 => (1 << 40, MIN_ALIGN),
            2 => (64, 1 << 62),
            _ => (usize::MAX / 2, 1 << 20),
        };
        let before = self.stats();
        let r = cache::alloc_any(&self.back, self.via(which >> 2), n, align);
        assert_eq!(r, None, "alloc({n:#x}, {align:#x})");
        assert_eq!(self.stats().live, before.live);
    }

    /// The heap's own view agrees with the shadow.
    fn audit(&self) {
        assert_eq!(
            self.back.with(|h, _| h.check()),
            0,
            "check() found problems"
        );
        let st: HeapStats = self.stats();
        assert_eq!(st.live, self.live.len(), "live count");
        assert_eq!(st.in_use, self.in_use, "bytes in use");
        assert!(st.spans <= self.live_spans(), "span count");
        assert_eq!(self.fault(), None);
    }

    fn step(&mut self, inp: &mut Input<'_>) {
        match inp.u8() % 16 {
            0..=3 => {
                let n = inp.size();
                let a = inp.u8();
                self.alloc(a >> 4, n, 1usize << (a % 14));
            }
            4 | 5 => {
                let i = inp.u8();
                let n = inp.size();
                self.realloc(i >> 6, i, n);
            }
            6..=8 => {
                let i = inp.u8();
                self.free(i >> 6, i)
            }
            9 => self.usable(inp.u8()),
            10 => {
                let (i, how) = (inp.u8(), inp.u8());
                self.double_free(i, how);
            }
            11 => {
                let (i, off, how) = (inp.u8(), inp.u16(), inp.u8());
                self.interior(i, off, how);
            }
            12 => {
                let (which, how) = (inp.u8(), inp.u8());
                self.foreign(which, how);
            }
            13 => {
                let (off, len) = (inp.u32(), inp.u32());
                self.add_region(off, len);
            }
            14 => self.huge(inp.u8()),
            _ => {
                let b = inp.u8();
                let src = &mut self.back.inner.borrow_mut().1;
                src.keep = b & 1 != 0;
                src.kept |= src.keep;
                src.extra = usize::from(b >> 5);
            }
        }
    }

    /// Frees everything; the caches go dormant and the heap is trimmed: a
    /// source that took spans back has them all, bar metadata.
    fn finish(&mut self) {
        self.verify_all();
        while let Some(&a) = self.order.last() {
            cache::free_any(&self.back, self.caches[0], ptr(a)).expect("final free");
            self.forget(a);
        }
        self.audit();
        for c in self.caches.into_iter().flatten() {
            cache::flush(&self.back, c);
            self.back.with(|h, src| h.detach_cache(src, c));
        }
        self.back.with(|h, src| h.trim(src));
        self.audit();
        let st = self.stats();
        if !self.back.inner.borrow().1.kept {
            assert_eq!(
                st.spans,
                self.regions.len(),
                "wholly free spans not given back"
            );
            assert_eq!(st.slabs, 0, "empty slabs not given back");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input(data);
    let cfg = inp.u8();
    let kinds = [SpanKind::PageHooks, SpanKind::Mmap, SpanKind::Frames];
    // Nothing is the heap's until it is given.
    poison(region_buf(), REGION_BYTES, true);
    poison(pool(), POOL_BYTES, true);
    // The map lives as long as this run's heap: leaked here, freed below.
    let shared: &'static Shared = Box::leak(Box::new(Shared::new()));
    let src = TestSource {
        spans: HashMap::new(),
        taken: vec![false; POOL_BYTES / PAGE],
        kind: kinds[usize::from(cfg % 3)],
        // 0 .. 7.5 MiB of pages from the source.
        budget: usize::from(cfg >> 2) * 128 * 1024,
        used: 0,
        extra: 0,
        keep: false,
        kept: false,
    };
    let back = Back {
        shared,
        inner: RefCell::new((Box::new(Heap::new(shared)), src)),
    };
    let c1 = back.with(|h, src| h.attach_cache(src));
    let c2 = back.with(|h, src| h.attach_cache(src));
    // SAFETY: caches live in the heap's metadata, as long as this run.
    let (c1, c2) = unsafe { (c1.as_ref(), c2.as_ref()) };
    let mut m = Model {
        back,
        caches: [c1, c2, None],
        regions: Vec::new(),
        live: BTreeMap::new(),
        order: Vec::new(),
        stale: Vec::new(),
        in_use: 0,
        next_fill: 0,
        tally: BTreeMap::new(),
    };
    let mut steps = 0;
    while !inp.0.is_empty() {
        m.step(&mut inp);
        m.audit();
        steps += 1;
        if steps % VERIFY_EVERY == 0 {
            m.verify_all();
        }
    }
    m.finish();
    if std::env::var_os("HEAP_DEBUG").is_some() {
        let peak = m.stats().peak_in_use;
        eprintln!(
            "tally: {:?}, peak {peak}, source used {}",
            m.tally,
            m.back.inner.borrow().1.used
        );
    }
    drop(m);
    // SAFETY: leaked above; the heap that used it is gone.
    drop(unsafe { Box::from_raw(std::ptr::from_ref(shared).cast_mut()) });
});
