//! Heap tests: unit tests of each behaviour and a model-based test (a shadow
//! map of live ranges driven by random action sequences, `check()` after
//! every step). They run on local heaps over test memory, so they are
//! independent of the global state and run under Miri.

use super::*;
use crate::source::NoSource;
use std::alloc::{alloc as sys_alloc, dealloc as sys_dealloc, Layout};
use std::collections::BTreeMap;

/// Test memory for `add_span`, 16-byte aligned.
struct Mem(Vec<u128>);

impl Mem {
    fn new(bytes: usize) -> Self {
        Mem(vec![0; bytes / 16])
    }
    fn span(&mut self) -> (*mut u8, usize) {
        (self.0.as_mut_ptr().cast(), self.0.len() * 16)
    }
}

fn heap_with(bytes: usize) -> (Heap, Mem) {
    let mut mem = Mem::new(bytes);
    let mut h = Heap::new();
    let (p, len) = mem.span();
    // SAFETY: the test memory outlives the heap in every test.
    unsafe { h.add_span(p, len, SpanKind::Region) }.unwrap();
    (h, mem)
}

/// A source handing out page-aligned spans from the system allocator and
/// recording what is outstanding.
#[derive(Default)]
struct TestSource {
    outstanding: Vec<(usize, usize)>,
    grows: usize,
    limit: Option<usize>,
}

impl Source for TestSource {
    fn grow(&mut self, min: usize) -> Option<(NonNull<u8>, usize, SpanKind)> {
        let held: usize = self.outstanding.iter().map(|s| s.1).sum();
        if self.limit.is_some_and(|l| held + min > l) {
            return None;
        }
        let layout = Layout::from_size_align(min, PAGE).ok()?;
        // SAFETY: non-zero size.
        let p = NonNull::new(unsafe { sys_alloc(layout) })?;
        self.outstanding.push((p.as_ptr().addr(), min));
        self.grows += 1;
        Some((p, min, SpanKind::Mmap))
    }

    unsafe fn shrink(&mut self, base: NonNull<u8>, len: usize, _kind: SpanKind) -> bool {
        let i = self
            .outstanding
            .iter()
            .position(|s| *s == (base.as_ptr().addr(), len))
            .expect("unknown span");
        self.outstanding.swap_remove(i);
        // SAFETY: allocated in grow with this layout.
        unsafe { sys_dealloc(base.as_ptr(), Layout::from_size_align(len, PAGE).unwrap()) };
        true
    }
}

fn alloc(h: &mut Heap, n: usize, align: usize) -> *mut u8 {
    h.alloc(n, align, &mut NoSource)
        .unwrap()
        .map_or(ptr::null_mut(), |p| p.as_ptr())
}

fn free(h: &mut Heap, p: *mut u8) -> Result<(), Fault> {
    // SAFETY: tests pass heap pointers or deliberate bad ones (validated).
    unsafe { h.free(NonNull::new(p).unwrap(), &mut NoSource) }
}

#[test]
fn blocks_are_aligned_distinct_and_usable() {
    let (mut h, _m) = heap_with(64 * 1024);
    let mut ptrs = Vec::new();
    for n in [0usize, 1, 2, 15, 16, 17, 31, 32, 33, 100, 255, 256, 1000] {
        let p = alloc(&mut h, n, 1);
        assert!(!p.is_null());
        assert_eq!(p.addr() % 16, 0, "size {n}");
        // SAFETY: live block.
        let usable = unsafe { h.usable_size(NonNull::new(p).unwrap()) }.unwrap();
        assert!(usable >= n && usable <= n.max(1) + MIN_BLOCK);
        // SAFETY: usable bytes are ours.
        unsafe { ptr::write_bytes(p, 0xAB, usable) };
        ptrs.push(p);
    }
    let mut sorted = ptrs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        ptrs.len(),
        "malloc(0) and others must be unique"
    );
    assert_eq!(h.check(), 0);
    for p in ptrs {
        free(&mut h, p).unwrap();
    }
    assert_eq!(h.check(), 0);
    assert_eq!(h.stats().live, 0);
    assert_eq!(h.stats().in_use, 0);
}

#[test]
fn freeing_everything_coalesces_back_to_one_block() {
    let (mut h, _m) = heap_with(64 * 1024);
    let initial = h.stats().free;
    let ptrs: Vec<_> = (0..100).map(|i| alloc(&mut h, 16 + i * 8, 16)).collect();
    // Free in an order that exercises merges with the previous, the next and both.
    for p in ptrs.iter().step_by(2) {
        free(&mut h, *p).unwrap();
    }
    assert_eq!(h.check(), 0);
    for p in ptrs.iter().skip(1).step_by(2) {
        free(&mut h, *p).unwrap();
    }
    assert_eq!(h.check(), 0);
    assert_eq!(h.stats().free, initial);
    // One block again: the largest possible allocation fits.
    let big = alloc(&mut h, initial - HDR, 16);
    assert!(!big.is_null());
}

#[test]
fn aligned_allocations_up_to_2_mib() {
    let mut h = Heap::new();
    let mut src = TestSource::default();
    let top = if cfg!(miri) { 13 } else { 21 };
    for shift in 4..=top {
        let align = 1usize << shift;
        for n in [1usize, 100, align] {
            let p = h.alloc(n, align, &mut src).unwrap().unwrap().as_ptr();
            assert_eq!(p.addr() % align, 0, "align {align}");
            assert_eq!(h.check(), 0);
            // SAFETY: n bytes are ours.
            unsafe { ptr::write_bytes(p, 0x5A, n) };
            // SAFETY: live block.
            unsafe { h.free(NonNull::new(p).unwrap(), &mut src) }.unwrap();
            assert_eq!(h.check(), 0);
        }
    }
    assert!(src.outstanding.is_empty(), "every span went back");
}

#[test]
fn aligned_front_piece_is_reused_not_wasted() {
    let (mut h, _m) = heap_with(64 * 1024);
    let free_before = h.stats().free;
    let p = alloc(&mut h, 100, 4096);
    assert_eq!(p.addr() % 4096, 0);
    // Only the block itself is taken: the cut-off front is free again.
    assert!(free_before - h.stats().free <= 128);
    assert_eq!(h.check(), 0);
}

#[test]
fn exhaustion_and_huge_sizes_return_none() {
    let (mut h, _m) = heap_with(16 * 1024);
    assert!(alloc(&mut h, 1 << 20, 16).is_null());
    assert!(alloc(&mut h, usize::MAX, 16).is_null());
    assert!(alloc(&mut h, usize::MAX - 8, 16).is_null());
    assert!(alloc(&mut h, 100, 1 << 62).is_null());
    let mut n = 0;
    while !alloc(&mut h, 100, 16).is_null() {
        n += 1;
    }
    assert!(n > 16 * 1024 / 128 - 5);
    assert_eq!(h.check(), 0);
}

#[test]
fn realloc_in_place_and_moving() {
    let (mut h, _m) = heap_with(64 * 1024);
    let mut src = NoSource;
    let p = alloc(&mut h, 100, 16);
    // SAFETY: 100 bytes are ours.
    unsafe { ptr::write_bytes(p, 7, 100) };
    // Grow into the free space after it: same address.
    // SAFETY: live block.
    let q = unsafe { h.realloc(NonNull::new(p).unwrap(), 1000, &mut src) }
        .unwrap()
        .unwrap()
        .as_ptr();
    assert_eq!(q, p);
    // Shrink in place.
    // SAFETY: live block.
    let r = unsafe { h.realloc(NonNull::new(q).unwrap(), 50, &mut src) }
        .unwrap()
        .unwrap()
        .as_ptr();
    assert_eq!(r, p);
    assert_eq!(h.check(), 0);
    // Block the neighbour, then grow: it must move and keep the contents.
    let wall = alloc(&mut h, 16, 16);
    // SAFETY: live block.
    let s = unsafe { h.realloc(NonNull::new(r).unwrap(), 5000, &mut src) }
        .unwrap()
        .unwrap()
        .as_ptr();
    assert_ne!(s, r);
    // SAFETY: the first 50 bytes were preserved.
    assert!(unsafe { std::slice::from_raw_parts(s, 50) }
        .iter()
        .all(|&b| b == 7));
    assert_eq!(h.check(), 0);
    // A failed realloc leaves the block intact.
    // SAFETY: live block.
    let failed = unsafe { h.realloc(NonNull::new(s).unwrap(), 1 << 30, &mut src) };
    assert_eq!(failed, Ok(None));
    // SAFETY: still ours.
    assert!(unsafe { std::slice::from_raw_parts(s, 50) }
        .iter()
        .all(|&b| b == 7));
    free(&mut h, s).unwrap();
    free(&mut h, wall).unwrap();
    assert_eq!(h.check(), 0);
    assert_eq!(h.stats().live, 0);
}

#[test]
fn misuse_is_reported_not_followed() {
    let (mut h, _m) = heap_with(64 * 1024);
    let a = alloc(&mut h, 64, 16);
    let b = alloc(&mut h, 64, 16);
    let c = alloc(&mut h, 64, 16);
    free(&mut h, b).unwrap();
    assert_eq!(free(&mut h, b), Err(Fault::DoubleFree(b.addr())));
    // Interior and misaligned pointers.
    // SAFETY: pointer arithmetic inside a live block.
    let inner = unsafe { a.add(32) };
    assert_eq!(
        free(&mut h, inner),
        Err(Fault::InvalidPointer(inner.addr()))
    );
    // SAFETY: as above.
    let odd = unsafe { a.add(1) };
    assert_eq!(free(&mut h, odd), Err(Fault::InvalidPointer(odd.addr())));
    // Foreign pointers: the stack, and a heap block of another allocator.
    let mut local = [0u128; 4];
    let foreign = local.as_mut_ptr().cast::<u8>();
    assert_eq!(
        free(&mut h, foreign),
        Err(Fault::InvalidPointer(foreign.addr()))
    );
    let boxed = Box::into_raw(Box::new([0u128; 8])).cast::<u8>();
    assert!(matches!(free(&mut h, boxed), Err(Fault::InvalidPointer(_))));
    // SAFETY: it came from Box::into_raw above.
    drop(unsafe { Box::from_raw(boxed.cast::<[u128; 8]>()) });
    // Nothing was changed by the failed calls.
    assert_eq!(h.check(), 0);
    // An overrun of `a` that tramples the header of the block after it is
    // caught when `a` is freed (its successor's header no longer checks).
    // SAFETY: deliberately writing past the end of `a` (into heap memory we own).
    unsafe { ptr::write_bytes(a, 0x41, 64 + 24) };
    assert!(matches!(free(&mut h, a), Err(Fault::Corrupted { .. })));
    assert!(h.check() > 0);
    let _ = c;
}

#[test]
fn use_after_free_write_into_links_is_caught_on_alloc() {
    let (mut h, _m) = heap_with(64 * 1024);
    let a = alloc(&mut h, 64, 16);
    let _guard = alloc(&mut h, 64, 16);
    free(&mut h, a).unwrap();
    // SAFETY: deliberately scribbling on the freed block's links (test memory we own).
    unsafe { ptr::write_bytes(a, 0x99, 16) };
    assert!(h.check() > 0);
    let r = h.alloc(64, 16, &mut NoSource);
    assert!(matches!(r, Err(Fault::Corrupted { .. })), "{r:?}");
}

#[test]
fn regions_are_checked() {
    let mut h = Heap::new();
    let mut m = Mem::new(4096);
    let (p, len) = m.span();
    // SAFETY: test memory.
    unsafe {
        assert_eq!(h.add_span(p, 32, SpanKind::Region), Err(Error::TooSmall));
        h.add_span(p, len, SpanKind::Region).unwrap();
        assert_eq!(
            h.add_span(p.add(1024), 1024, SpanKind::Region),
            Err(Error::Overlap)
        );
        assert_eq!(
            h.add_span(p, usize::MAX, SpanKind::Region),
            Err(Error::Invalid)
        );
    }
    // Unaligned start and end are trimmed, not refused.
    let mut m2 = Mem::new(4096);
    let (p2, len2) = m2.span();
    // SAFETY: test memory, trimmed inside.
    unsafe { h.add_span(p2.add(3), len2 - 5, SpanKind::Region) }.unwrap();
    assert_eq!(h.stats().spans, 2);
    assert_eq!(h.check(), 0);
}

#[test]
fn span_records_live_outside_user_memory() {
    // Two adjacent regions: an overrun of the last block of the first runs
    // over its sentinel into the first header of the second. The heap's
    // record of the spans is out of band, so this is reported, never followed.
    let mut h = Heap::new();
    let mut m = Mem::new(8192);
    let (p, _) = m.span();
    // SAFETY: test memory, two disjoint halves.
    unsafe {
        h.add_span(p, 4096, SpanKind::Region).unwrap();
        h.add_span(p.add(4096), 4096, SpanKind::Region).unwrap();
    }
    // Fill both regions; `last` is the highest block of the first one.
    let mut last = ptr::null_mut::<u8>();
    while let Some(q) = h.alloc(64, 16, &mut NoSource).unwrap() {
        let q = q.as_ptr();
        if q.addr() < p.addr() + 4096 && q.addr() > last.addr() {
            last = q;
        }
    }
    assert!(!last.is_null());
    assert_eq!(h.check(), 0);
    // SAFETY: deliberately overrunning into the heap's own (test) memory.
    unsafe { ptr::write_bytes(last, 0x41, 4096 - (last.addr() - p.addr()) + 32) };
    assert!(h.check() > 0);
    assert!(matches!(free(&mut h, last), Err(Fault::Corrupted { .. })));
    assert_eq!(h.stats().spans, 2);
}

#[test]
fn span_table_full_is_no_memory() {
    let mut h = Heap::new();
    let mut m = Mem::new(64 * (MAX_SPANS + 1));
    let (p, _) = m.span();
    for i in 0..MAX_SPANS {
        // SAFETY: disjoint 64-byte pieces of test memory.
        unsafe { h.add_span(p.add(64 * i), 64, SpanKind::Region) }.unwrap();
    }
    // SAFETY: as above.
    let r = unsafe { h.add_span(p.add(64 * MAX_SPANS), 64, SpanKind::Region) };
    assert_eq!(r, Err(Error::NoMemory));
    // Growth is refused the same way, and the source gets its span back.
    let mut src = TestSource::default();
    assert_eq!(h.alloc(1 << 20, 16, &mut src), Ok(None));
    assert!(src.outstanding.is_empty());
    assert_eq!(h.check(), 0);
}

#[test]
fn growth_from_a_source_and_spans_go_back() {
    let mut h = Heap::new();
    let mut src = TestSource::default();
    let mut ptrs = Vec::new();
    let count = if cfg!(miri) { 400 } else { 2000 };
    for i in 0..count {
        let p = h.alloc(100 + i % 700, 16, &mut src).unwrap().unwrap();
        ptrs.push(p);
    }
    let big = h.alloc(3 << 20, 16, &mut src).unwrap().unwrap();
    assert!(src.grows >= 2);
    assert!(
        h.stats().spans < 12,
        "growth is geometric: {} spans",
        h.stats().spans
    );
    assert_eq!(h.check(), 0);
    // SAFETY: live blocks.
    unsafe { h.free(big, &mut src) }.unwrap();
    for p in ptrs {
        // SAFETY: live blocks.
        unsafe { h.free(p, &mut src) }.unwrap();
    }
    assert_eq!(h.check(), 0);
    assert!(
        src.outstanding.is_empty(),
        "all spans returned: {:?}",
        src.outstanding
    );
    assert_eq!(h.stats().mapped, 0);
}

#[test]
fn source_exhaustion_is_none_not_fault() {
    let mut h = Heap::new();
    let mut src = TestSource {
        limit: Some(1 << 20),
        ..Default::default()
    };
    assert_eq!(h.alloc(2 << 20, 16, &mut src), Ok(None));
    let p = h.alloc(1000, 16, &mut src).unwrap().unwrap();
    // SAFETY: live block.
    unsafe { h.free(p, &mut src) }.unwrap();
    assert!(src.outstanding.is_empty());
}

/// xorshift64*: deterministic, dependency-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fill(p: *mut u8, n: usize, seed: u8) {
    for i in 0..n {
        // SAFETY: p..p+n is a live block of the model.
        unsafe { *p.add(i) = seed.wrapping_add(i as u8) };
    }
}

fn verify(p: *mut u8, n: usize, seed: u8) {
    for i in 0..n {
        // SAFETY: p..p+n is a live block of the model.
        let v = unsafe { *p.add(i) };
        assert_eq!(
            v,
            seed.wrapping_add(i as u8),
            "contents changed at {p:p}+{i}"
        );
    }
}

/// The model: random malloc/calloc/realloc/aligned/free against a shadow
/// map of live ranges; contents, alignment and disjointness are checked,
/// and `check()` must stay 0 after every step.
#[test]
fn model_random_sequences() {
    let (steps, seeds) = if cfg!(miri) {
        (150, &[7u64][..])
    } else {
        (6000, &[1u64, 0xDEAD_BEEF, 42][..])
    };
    for &seed in seeds {
        let mut rng = Rng(seed);
        let mut h = Heap::new();
        let mut src = TestSource::default();
        let mut m = Mem::new(256 * 1024);
        let (p, len) = m.span();
        // SAFETY: test memory outlives the heap.
        unsafe { h.add_span(p, len, SpanKind::Arena) }.unwrap();
        // address -> (size, seed)
        let mut live: BTreeMap<usize, (usize, u8, *mut u8)> = BTreeMap::new();
        for step in 0..steps {
            let action = rng.below(100);
            let big = if cfg!(miri) { 20_000 } else { 200_000 };
            let size = match rng.below(10) {
                0..=5 => rng.below(128) as usize,
                6..=8 => rng.below(4096) as usize,
                _ => rng.below(big) as usize,
            };
            if action < 45 || live.is_empty() {
                let align = if rng.below(5) == 0 {
                    1usize << rng.below(14)
                } else {
                    16
                };
                let p = h.alloc(size, align, &mut src).unwrap().unwrap().as_ptr();
                assert_eq!(p.addr() % align.max(16), 0);
                let s = rng.next() as u8;
                fill(p, size, s);
                live.insert(p.addr(), (size, s, p));
            } else {
                let k = rng.below(live.len() as u64) as usize;
                let (&addr, &(n, s, p)) = live.iter().nth(k).unwrap();
                verify(p, n, s);
                live.remove(&addr);
                if action < 75 {
                    // SAFETY: live block of the model.
                    unsafe { h.free(NonNull::new(p).unwrap(), &mut src) }.unwrap();
                } else {
                    // SAFETY: live block of the model.
                    let q = unsafe { h.realloc(NonNull::new(p).unwrap(), size.max(1), &mut src) }
                        .unwrap()
                        .unwrap()
                        .as_ptr();
                    verify(q, n.min(size.max(1)), s);
                    fill(q, size.max(1), s);
                    live.insert(q.addr(), (size.max(1), s, q));
                }
            }
            // Live ranges never overlap.
            let mut end = 0;
            for (&a, &(n, _, _)) in &live {
                assert!(a >= end, "overlap at step {step}");
                end = a + n;
            }
            assert_eq!(h.check(), 0, "seed {seed} step {step}");
            assert_eq!(h.stats().live, live.len());
        }
        for (_, (n, s, p)) in std::mem::take(&mut live) {
            verify(p, n, s);
            // SAFETY: live block of the model.
            unsafe { h.free(NonNull::new(p).unwrap(), &mut src) }.unwrap();
        }
        assert_eq!(h.check(), 0);
        assert!(src.outstanding.is_empty());
    }
}
