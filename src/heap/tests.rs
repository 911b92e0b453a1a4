//! Heap tests: unit tests of each behaviour and model-based tests (a shadow
//! map of live ranges driven by random action sequences, `check()` after
//! every step), single- and multi-threaded. They run on local heaps over
//! test memory through the same generic front end as the global heap, so
//! they are independent of the global state and run under Miri.

use super::cache::{self, Backend, Cache};
use super::*;
use crate::source::NoSource;
use core::sync::atomic::AtomicUsize;
use std::alloc::{alloc as sys_alloc, dealloc as sys_dealloc, Layout};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Test memory for `add_span`, page-aligned.
struct Mem {
    p: *mut u8,
    len: usize,
}

impl Mem {
    fn new(bytes: usize) -> Self {
        let len = bytes.next_multiple_of(PAGE);
        // SAFETY: non-zero size, page alignment.
        let p = unsafe { std::alloc::alloc_zeroed(Layout::from_size_align(len, PAGE).unwrap()) };
        Mem { p, len }
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { sys_dealloc(self.p, Layout::from_size_align(self.len, PAGE).unwrap()) };
    }
}

/// A source handing out page-aligned spans from the system allocator and
/// recording what is outstanding.
#[derive(Default)]
struct TestSource {
    outstanding: Vec<(usize, usize)>,
    grows: usize,
    shrinks: usize,
    limit: Option<usize>,
    off: bool,
}

impl Source for TestSource {
    fn grow(&mut self, min: usize) -> Option<(NonNull<u8>, usize, SpanKind)> {
        let held: usize = self.outstanding.iter().map(|s| s.1).sum();
        if self.off || self.limit.is_some_and(|l| held + min > l) {
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
        let (a, end) = (base.as_ptr().addr(), base.as_ptr().addr() + len);
        // The end of a span whose front pages the heap keeps as metadata
        // (as mmap and the frame manager take it): the front stays out.
        if let Some(o) = self
            .outstanding
            .iter_mut()
            .find(|s| s.0 < a && s.0 + s.1 == end)
        {
            o.1 = a - o.0;
            self.shrinks += 1;
            return true;
        }
        let i = self
            .outstanding
            .iter()
            .position(|s| *s == (a, len))
            .expect("unknown span");
        self.outstanding.swap_remove(i);
        self.shrinks += 1;
        // SAFETY: allocated in grow with this layout.
        unsafe { sys_dealloc(base.as_ptr(), Layout::from_size_align(len, PAGE).unwrap()) };
        true
    }
}

/// A local heap behind a mutex: the test's stand-in for the global lock.
struct TestHeap {
    shared: &'static Shared,
    inner: Mutex<(Heap, TestSource)>,
}

impl Backend for TestHeap {
    fn shared(&self) -> &Shared {
        self.shared
    }
    fn locked<R>(&self, f: impl FnOnce(&mut Heap, &mut dyn Source) -> R) -> Option<R> {
        let mut g = self.inner.lock().unwrap();
        let (h, s) = &mut *g;
        Some(f(h, s))
    }
}

impl TestHeap {
    /// `locked`, which cannot fail here.
    fn with<R>(&self, f: impl FnOnce(&mut Heap, &mut dyn Source) -> R) -> R {
        Backend::locked(self, f).unwrap()
    }

    fn new(src: TestSource) -> Self {
        let shared: &'static Shared = Box::leak(Box::new(Shared::new()));
        TestHeap {
            shared,
            inner: Mutex::new((Heap::new(shared), src)),
        }
    }

    /// A heap over `bytes` of test memory and no page source.
    fn with_region(bytes: usize) -> (Self, Mem) {
        let h = Self::new(TestSource {
            off: true,
            ..Default::default()
        });
        let m = Mem::new(bytes);
        // SAFETY: the test memory outlives the heap in every test.
        h.with(|heap, src| unsafe { heap.add_span(m.p, m.len, SpanKind::Region, src) })
            .unwrap();
        (h, m)
    }

    fn cache(&self) -> &'static Cache {
        let c = self.with(|h, src| h.attach_cache(src));
        // SAFETY: caches are never freed while the heap (leaked) lives.
        unsafe { &*c }
    }

    fn alloc(&self, c: Option<&Cache>, n: usize, align: usize) -> *mut u8 {
        cache::alloc_any(self, c, n, align).map_or(ptr::null_mut(), NonNull::as_ptr)
    }

    fn free(&self, c: Option<&Cache>, p: *mut u8) -> Result<(), Fault> {
        cache::free_any(self, c, NonNull::new(p).unwrap())
    }

    fn check(&self) -> usize {
        self.with(|h, _| h.check())
    }

    fn stats(&self) -> HeapStats {
        self.with(|h, _| h.stats())
    }

    fn fault(&self) -> Option<Fault> {
        self.with(|h, _| h.take_fault())
    }

    fn secret(&self) -> usize {
        self.with(|h, _| h.tlsf.secret)
    }

    fn outstanding(&self) -> usize {
        self.with(|_, _| ());
        self.inner.lock().unwrap().1.outstanding.len()
    }

    fn trim(&self) {
        self.with(|h, src| h.trim(src))
    }
}

/// A size above the slab classes: a TLSF block, with a header in front.
const BIG: usize = SMALL_MAX + 1000;

fn usable(h: &TestHeap, p: *mut u8) -> usize {
    cache::usable_any(h, p.addr()).unwrap()
}

#[test]
fn blocks_are_aligned_distinct_and_usable() {
    let (h, _m) = TestHeap::with_region(1024 * 1024);
    let c = h.cache();
    let mut ptrs = Vec::new();
    for via in [Some(c), None] {
        for n in [
            0usize, 1, 2, 15, 16, 17, 31, 32, 33, 100, 255, 256, 1000, 1024, 1025, 5000, 8192,
            8193, 20_000,
        ] {
            let p = h.alloc(via, n, 1);
            assert!(!p.is_null());
            assert_eq!(p.addr() % 16, 0, "size {n}");
            let u = usable(&h, p);
            assert!(
                u >= n && u <= n.max(1) + n / 8 + MIN_BLOCK,
                "size {n}: usable {u}"
            );
            // SAFETY: usable bytes are ours.
            unsafe { ptr::write_bytes(p, 0xAB, u) };
            ptrs.push(p);
        }
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
    assert_eq!(h.stats().live, ptrs.len());
    for p in ptrs {
        h.free(Some(c), p).unwrap();
    }
    assert_eq!(h.check(), 0);
    let st = h.stats();
    assert_eq!((st.live, st.in_use), (0, 0));
    assert_eq!(st.total_allocs, st.total_frees);
}

#[test]
fn freeing_everything_coalesces_back_to_one_block() {
    let (h, _m) = TestHeap::with_region(512 * 1024);
    let initial = h.stats().free;
    let ptrs: Vec<_> = (0..40).map(|i| h.alloc(None, BIG + i * 64, 16)).collect();
    // Free in an order that exercises merges with the previous, the next and both.
    for p in ptrs.iter().step_by(2) {
        h.free(None, *p).unwrap();
    }
    assert_eq!(h.check(), 0);
    for p in ptrs.iter().skip(1).step_by(2) {
        h.free(None, *p).unwrap();
    }
    assert_eq!(h.check(), 0);
    assert_eq!(h.stats().free, initial);
    // One block again: the largest possible allocation fits.
    let big = h.alloc(None, initial - HDR, 16);
    assert!(!big.is_null());
}

#[test]
fn aligned_allocations_up_to_2_mib() {
    let h = TestHeap::new(TestSource::default());
    let c = h.cache();
    let top = if cfg!(miri) { 12 } else { 21 };
    for shift in 4..=top {
        let align = 1usize << shift;
        for n in [1usize, 100, align] {
            for via in [Some(c), None] {
                let p = h.alloc(via, n, align);
                assert_eq!(p.addr() % align, 0, "align {align}");
                // SAFETY: n bytes are ours.
                unsafe { ptr::write_bytes(p, 0x5A, n) };
                assert_eq!(h.check(), 0);
                h.free(via, p).unwrap();
            }
        }
    }
    assert_eq!(h.check(), 0);
    h.with(|heap, src| heap.detach_cache(src, c));
    h.trim();
    let chunks = h.with(|heap, _| heap.meta.chunks);
    assert_eq!(h.outstanding(), chunks, "every span went back");
}

#[test]
fn aligned_front_piece_is_reused_not_wasted() {
    let (h, _m) = TestHeap::with_region(64 * 1024);
    let free_before = h.stats().free;
    let p = h.alloc(None, BIG, 4096);
    assert_eq!(p.addr() % 4096, 0);
    // Only the block itself is taken: the cut-off front is free again.
    assert!(free_before - h.stats().free <= BIG + 128);
    assert_eq!(h.check(), 0);
}

#[test]
fn exhaustion_and_huge_sizes_return_none() {
    let region = if cfg!(miri) { 96 * 1024 } else { 256 * 1024 };
    let (h, _m) = TestHeap::with_region(region);
    let c = h.cache();
    assert!(h.alloc(None, 1 << 20, 16).is_null());
    assert!(h.alloc(None, usize::MAX, 16).is_null());
    assert!(h.alloc(Some(c), usize::MAX - 8, 16).is_null());
    assert!(h.alloc(None, 100, 1 << 62).is_null());
    let mut n = 0;
    while !h.alloc(Some(c), 100, 16).is_null() {
        n += 1;
    }
    // Slabs, then TLSF blocks once no slab fits: most of the region is used
    // (the metadata's first chunk is a larger share of Miri's small region).
    let share = if cfg!(miri) { 6 } else { 8 };
    assert!(
        n * 112 > region * share / 10,
        "only {n} blocks of 100 bytes in {} KiB",
        region / 1024
    );
    assert_eq!(h.check(), 0);
}

#[test]
fn realloc_in_place_and_moving() {
    let (h, _m) = TestHeap::with_region(256 * 1024);
    let r = |p: *mut u8, n| {
        cache::realloc_any(&h, None, NonNull::new(p).unwrap(), n)
            .unwrap()
            .map_or(ptr::null_mut(), NonNull::as_ptr)
    };
    // A TLSF block grows into the free space after it: same address.
    let p = h.alloc(None, BIG, 16);
    // SAFETY: BIG bytes are ours.
    unsafe { ptr::write_bytes(p, 7, BIG) };
    let q = r(p, 3 * BIG);
    assert_eq!(q, p);
    // Shrink in place.
    let q = r(q, 1500);
    assert_eq!(q, p);
    // A slab object stays put within its class, moves beyond it.
    let s = h.alloc(None, 100, 16);
    assert_eq!(r(s, 110), s);
    // SAFETY: 112 bytes are ours.
    unsafe { ptr::write_bytes(s, 3, 112) };
    let s2 = r(s, 3000);
    assert_ne!(s2, s);
    // SAFETY: the first 112 bytes moved along.
    assert!(unsafe { std::slice::from_raw_parts(s2, 112) }
        .iter()
        .all(|&b| b == 3));
    assert_eq!(h.check(), 0);
    // Block the neighbour, then grow: it must move and keep the contents.
    let wall = h.alloc(None, BIG, 16);
    let m = r(q, 50_000);
    assert_ne!(m, q);
    // SAFETY: the first 1500 bytes were preserved.
    assert!(unsafe { std::slice::from_raw_parts(m, 1500) }
        .iter()
        .all(|&b| b == 7));
    assert_eq!(h.check(), 0);
    // A failed realloc leaves the block intact.
    let failed = cache::realloc_any(&h, None, NonNull::new(m).unwrap(), 1 << 30);
    assert_eq!(failed, Ok(None));
    // SAFETY: still ours.
    assert!(unsafe { std::slice::from_raw_parts(m, 1500) }
        .iter()
        .all(|&b| b == 7));
    for p in [m, wall, s2] {
        h.free(None, p).unwrap();
    }
    assert_eq!(h.check(), 0);
    assert_eq!(h.stats().live, 0);
}

#[test]
fn misuse_is_reported_not_followed() {
    let (h, _m) = TestHeap::with_region(256 * 1024);
    let c = h.cache();
    for (via, n) in [(Some(c), 64usize), (None, 64), (Some(c), BIG), (None, BIG)] {
        let a = h.alloc(via, n, 16);
        let b = h.alloc(via, n, 16);
        let _guard = h.alloc(via, n, 16);
        h.free(via, b).unwrap();
        assert_eq!(h.free(via, b), Err(Fault::DoubleFree(b.addr())), "{n}");
        assert_eq!(h.free(None, b), Err(Fault::DoubleFree(b.addr())), "{n}");
        // Interior and misaligned pointers.
        // SAFETY: pointer arithmetic inside a live block.
        let inner = unsafe { a.add(32) };
        assert_eq!(h.free(via, inner), Err(Fault::InvalidPointer(inner.addr())));
        // SAFETY: as above.
        let odd = unsafe { a.add(1) };
        assert_eq!(h.free(via, odd), Err(Fault::InvalidPointer(odd.addr())));
        // Foreign pointers: the stack, and a heap block of another allocator.
        let mut local = [0u128; 4];
        let foreign = local.as_mut_ptr().cast::<u8>();
        assert_eq!(
            h.free(via, foreign),
            Err(Fault::InvalidPointer(foreign.addr()))
        );
        let boxed = Box::into_raw(Box::new([0u128; 8])).cast::<u8>();
        assert!(matches!(h.free(via, boxed), Err(Fault::InvalidPointer(_))));
        // SAFETY: it came from Box::into_raw above.
        drop(unsafe { Box::from_raw(boxed.cast::<[u128; 8]>()) });
        // Nothing was changed by the failed calls.
        assert_eq!(h.check(), 0);
        assert_eq!(
            cache::usable_any(&h, b.addr()),
            Err(Fault::DoubleFree(b.addr()))
        );
        h.free(via, a).unwrap();
    }
}

#[test]
fn a_remote_double_free_is_exact() {
    let (h, _m) = TestHeap::with_region(256 * 1024);
    let (c1, c2) = (h.cache(), h.cache());
    let p = h.alloc(Some(c1), 48, 16);
    h.free(Some(c2), p).unwrap();
    // Freed remotely, not merged yet: every path knows.
    assert_eq!(h.free(Some(c2), p), Err(Fault::DoubleFree(p.addr())));
    assert_eq!(h.free(Some(c1), p), Err(Fault::DoubleFree(p.addr())));
    assert_eq!(h.free(None, p), Err(Fault::DoubleFree(p.addr())));
    // The owner merges the remote free when it needs room.
    cache::drain_pending(&h, c1);
    assert_eq!(h.free(Some(c2), p), Err(Fault::DoubleFree(p.addr())));
    assert_eq!(h.check(), 0);
    assert_eq!(h.stats().live, 0);
}

#[test]
fn a_stale_header_is_a_double_free_and_carries_no_secret() {
    let (h, _m) = TestHeap::with_region(128 * 1024);
    // Fill the region, so the one free block later is x1 + x2.
    let mut blocks = Vec::new();
    loop {
        let p = h.alloc(None, BIG, 16);
        if p.is_null() {
            break;
        }
        blocks.push(p);
    }
    let (x1, x2) = (blocks[3], blocks[4]);
    assert_eq!(
        x2.addr() - x1.addr(),
        block_size_for(BIG).unwrap(),
        "adjacent blocks"
    );
    h.free(None, x2).unwrap();
    h.free(None, x1).unwrap(); // merges with x2: x2's header is inside the free block
    assert_eq!(h.free(None, x2), Err(Fault::DoubleFree(x2.addr())));
    let p = h.alloc(None, 2 * BIG, 16);
    assert_eq!(p, x1);
    let secret = h.secret();
    // No 16-byte pair in the block is a header sealed with the secret.
    for off in (0..2 * BIG - 16).step_by(8) {
        // SAFETY: inside the live block.
        let (w, k) = unsafe { (*p.add(off).cast::<usize>(), *p.add(off + 8).cast::<usize>()) };
        let at = p.addr() + off;
        assert_ne!(
            k,
            w ^ at ^ secret,
            "a sealed header at offset {off} exposes the secret"
        );
    }
}

#[test]
fn a_forged_neighbour_size_cannot_lead_outside_the_span() {
    let (h, _m) = TestHeap::with_region(64 * 1024);
    let a = h.alloc(None, BIG, 16);
    let b = h.alloc(None, BIG, 16);
    let _guard = h.alloc(None, BIG, 16);
    h.free(None, b).unwrap();
    // The attacker knows the secret and forges b's header as a free block
    // reaching far beyond the span (the worst case of an overrun of a).
    let secret = h.secret();
    let hb = b.wrapping_sub(HDR).cast::<usize>();
    let size = 1usize << 40;
    let word = size | 1; // FREE
                         // SAFETY: writing into the heap's own test memory, deliberately.
    unsafe {
        *hb = word;
        *hb.add(1) = word ^ hb.addr() ^ secret;
    }
    assert!(matches!(h.free(None, a), Err(Fault::Corrupted { .. })));
    let r = cache::realloc_any(&h, None, NonNull::new(a).unwrap(), 2 * BIG);
    assert!(matches!(r, Err(Fault::Corrupted { .. })));
    assert!(h.check() > 0);
}

/// Where a forged link would make an unchecked unlink write.
static TARGET: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

/// Forges a free block's links at `p` (its payload) to point at `TARGET`.
fn forge_links(p: *mut u8) {
    let t = TARGET.as_ptr().addr();
    // SAFETY: writing into the heap's own test memory, deliberately (a use
    // after free).
    unsafe {
        *p.cast::<usize>() = t;
        *p.cast::<usize>().add(1) = t;
    }
}

/// Objects of 16 B filling several slabs, and the index of a slab's last
/// object whose slab is followed directly by another whole slab of them.
fn tiled_slabs(h: &TestHeap, c: &Cache) -> (Vec<*mut u8>, usize) {
    let count = CLASS[class::of(16)].count as usize;
    let ptrs: Vec<_> = (0..count * 4).map(|_| h.alloc(Some(c), 16, 16)).collect();
    let last = (count..count * 2)
        .find(|&i| ptrs[i + 1] == ptrs[i].wrapping_add(32))
        .expect("two slabs one after the other");
    (ptrs, last)
}

#[test]
fn an_overrun_past_a_slab_is_caught_when_the_heap_frees_the_next_slab() {
    let (h, _m) = TestHeap::with_region(1 << 20);
    let c = h.cache();
    let count = CLASS[class::of(16)].count as usize;
    let (ptrs, last) = tiled_slabs(&h, c);
    // The second slab's header, just after the first one's last object.
    let hdr = ptrs[last].wrapping_add(16).cast::<usize>();
    let secret = h.secret();
    // An overrun that knows the secret forges the header as a used internal
    // block whose predecessor is "free", with a footer leading to TARGET.
    // SAFETY: writing into the heap's own test memory, deliberately.
    unsafe {
        let word = *hdr | 2; // PREV_FREE
        *hdr = word;
        *hdr.add(1) = word ^ hdr.addr() ^ secret;
        *ptrs[last].add(8).cast::<usize>() = hdr.addr().wrapping_sub(TARGET.as_ptr().addr());
    }
    // The second slab empties and the heap gives it back to the TLSF.
    for p in &ptrs[last + 1..last + 1 + count] {
        h.free(Some(c), *p).unwrap();
    }
    h.with(|heap, src| heap.detach_cache(src, c));
    h.trim();
    assert!(matches!(h.fault(), Some(Fault::Corrupted { .. })));
    assert!(
        TARGET.iter().all(|t| t.load(Relaxed) == 0),
        "wrote through a forged header"
    );
    assert!(h.check() > 0);
}

#[test]
fn a_use_after_free_into_a_free_neighbour_is_caught_when_a_slab_goes_back() {
    let (h, _m) = TestHeap::with_region(1 << 20);
    let c = h.cache();
    let count = CLASS[class::of(16)].count as usize;
    let (ptrs, _) = tiled_slabs(&h, c);
    // The last slab carved, and a TLSF block carved right after it.
    let slab = &ptrs[3 * count..];
    let l = h.alloc(None, BIG, 16);
    assert_eq!(
        l.addr(),
        slab[count - 1].addr() + 32,
        "the block follows the slab"
    );
    for p in &slab[1..] {
        h.free(Some(c), *p).unwrap();
    }
    let guard = h.alloc(None, BIG, 16);
    h.free(None, l).unwrap();
    forge_links(l);
    h.free(Some(c), slab[0]).unwrap();
    h.with(|heap, src| heap.detach_cache(src, c));
    h.trim();
    assert!(matches!(h.fault(), Some(Fault::Corrupted { .. })));
    assert!(
        TARGET.iter().all(|t| t.load(Relaxed) == 0),
        "unlinked through forged links"
    );
    let _ = guard;
}

#[test]
fn a_use_after_free_into_a_kept_span_is_caught_before_it_goes_back() {
    let h = TestHeap::new(TestSource::default());
    let p = h.alloc(None, 600 << 10, 16);
    h.free(None, p).unwrap();
    // The span is wholly free and kept; its one block's links are forged.
    forge_links(p);
    h.trim();
    assert!(matches!(h.fault(), Some(Fault::Corrupted { .. })));
    assert!(
        TARGET.iter().all(|t| t.load(Relaxed) == 0),
        "unlinked through forged links"
    );
    assert!(
        h.outstanding() > h.with(|heap, _| heap.meta.chunks),
        "the span went back"
    );
}

#[test]
fn trim_gives_back_the_callers_empty_slabs_and_the_spans_they_held() {
    let h = TestHeap::new(TestSource::default());
    let c = h.cache();
    // One small block in a slab carved from a large span, then freed: the
    // empty slab is still the cache's active one and pins the span.
    let big = h.alloc(None, 600 << 10, 16);
    let p = h.alloc(Some(c), 16, 16);
    h.free(None, big).unwrap();
    h.free(Some(c), p).unwrap();
    assert_eq!(h.stats().slabs, 1);
    cache::release_empty(&h, c);
    h.trim();
    assert_eq!(h.stats().slabs, 0);
    assert_eq!(
        h.outstanding(),
        h.with(|heap, _| heap.meta.chunks),
        "a span stayed"
    );
    // The cache works on afterwards.
    let q = h.alloc(Some(c), 16, 16);
    assert!(!q.is_null());
    h.free(Some(c), q).unwrap();
    assert_eq!(h.check(), 0);
}

#[test]
fn a_corrupt_free_list_head_does_not_jam_its_class() {
    let (h, _m) = TestHeap::with_region(256 * 1024);
    let mut blocks = Vec::new();
    loop {
        let p = h.alloc(None, BIG, 16);
        if p.is_null() {
            break;
        }
        blocks.push(p);
    }
    // Two free blocks of one class, apart; the head of the list is blocks[8].
    h.free(None, blocks[4]).unwrap();
    h.free(None, blocks[8]).unwrap();
    // A use-after-free write over the head's links.
    // SAFETY: deliberately scribbling on a freed block (test memory we own).
    unsafe { ptr::write_bytes(blocks[8], 0x99, 16) };
    assert!(h.check() > 0);
    // The class is taken out of service, reported once; nothing is left.
    assert!(h.alloc(None, BIG, 16).is_null());
    assert!(matches!(h.fault(), Some(Fault::Corrupted { .. })));
    // The class works again for blocks freed later: never jammed.
    for i in [12, 16, 20] {
        h.free(None, blocks[i]).unwrap();
        let p = h.alloc(None, BIG, 16);
        assert_eq!(p, blocks[i]);
        assert_eq!(h.fault(), None);
    }
}

#[test]
fn regions_are_checked() {
    let h = TestHeap::new(TestSource {
        off: true,
        ..Default::default()
    });
    let m = Mem::new(64 * 1024);
    let add = |off: usize, len| {
        let p = m.p.wrapping_add(off);
        // SAFETY: pieces of the test memory (or a length the heap refuses).
        h.with(|heap, src| unsafe { heap.add_span(p, len, SpanKind::Region, src) })
    };
    assert_eq!(add(0, 32), Err(Error::TooSmall));
    add(0, 32 * 1024).unwrap();
    assert_eq!(add(1024, 1024), Err(Error::Overlap));
    assert_eq!(add(0, usize::MAX), Err(Error::Invalid));
    // Unaligned start and end are trimmed, not refused; a page shared with
    // the region before stays with it.
    add(32 * 1024 + 3, 32 * 1024 - 5).unwrap();
    assert_eq!(h.stats().spans, 2);
    assert_eq!(h.check(), 0);
}

#[test]
fn an_overrun_across_spans_is_reported_not_followed() {
    // Two adjacent regions: an overrun of the last block of the first runs
    // over its sentinel into the first header of the second. Span records
    // are out of band, so this is reported, never followed.
    let h = TestHeap::new(TestSource {
        off: true,
        ..Default::default()
    });
    let m = Mem::new(64 * 1024);
    // SAFETY: two disjoint halves of test memory.
    h.with(|heap, src| unsafe {
        heap.add_span(m.p, 32 * 1024, SpanKind::Region, src)
            .unwrap();
        heap.add_span(m.p.add(32 * 1024), 32 * 1024, SpanKind::Region, src)
            .unwrap();
    });
    let mut last = ptr::null_mut::<u8>();
    loop {
        let q = h.alloc(None, 2000, 16);
        if q.is_null() {
            break;
        }
        if q.addr() < m.p.addr() + 32 * 1024 && q.addr() > last.addr() {
            last = q;
        }
    }
    assert!(!last.is_null());
    assert_eq!(h.check(), 0);
    let end = m.p.addr() + 32 * 1024;
    // SAFETY: deliberately overrunning into the heap's own (test) memory.
    unsafe { ptr::write_bytes(last, 0x41, end - last.addr() + 32) };
    assert!(h.check() > 0);
    assert!(matches!(h.free(None, last), Err(Fault::Corrupted { .. })));
    assert_eq!(h.stats().spans, 2);
}

#[test]
fn an_emptied_span_is_kept_not_thrashed() {
    let h = TestHeap::new(TestSource::default());
    let keep = h.alloc(None, 1000 << 10, 16);
    let rounds = if cfg!(miri) { 20 } else { 1000 };
    for _ in 0..rounds {
        let p = h.alloc(None, 200 << 10, 16);
        assert!(!p.is_null());
        h.free(None, p).unwrap();
    }
    let (grows, shrinks) = {
        let g = h.inner.lock().unwrap();
        (g.1.grows, g.1.shrinks)
    };
    assert!(
        grows <= 4 && shrinks <= 2,
        "{grows} grows, {shrinks} shrinks"
    );
    h.free(None, keep).unwrap();
    h.trim();
    assert_eq!(h.outstanding(), h.with(|heap, _| heap.meta.chunks));
}

#[test]
fn several_emptied_spans_are_kept_within_the_budget() {
    let h = TestHeap::new(TestSource::default());
    let n = 600 << 10;
    let blocks = |h: &TestHeap| {
        [
            h.alloc(None, n, 16),
            h.alloc(None, n, 16),
            h.alloc(None, n, 16),
        ]
    };
    let first = blocks(&h);
    let grows = h.inner.lock().unwrap().1.grows;
    let mut spans: Vec<_> = first
        .iter()
        .map(|p| h.with(|heap, _| spans::span_ptr(heap.map(), p.addr()).unwrap()))
        .collect();
    spans.dedup();
    assert!(
        spans.len() >= 2,
        "the blocks share one span: the test needs several"
    );
    for p in first {
        h.free(None, p).unwrap();
    }
    // Every span emptied is kept (well within the budget), so the same
    // blocks again, many times over, take no memory from the source and
    // give none back.
    for _ in 0..if cfg!(miri) { 5 } else { 100 } {
        let again = blocks(&h);
        assert!(again.iter().all(|p| !p.is_null()));
        for p in again {
            h.free(None, p).unwrap();
        }
    }
    let g = h.inner.lock().unwrap();
    assert_eq!((g.1.grows, g.1.shrinks), (grows, 0));
    drop(g);
    // A budget of one span's worth keeps one.
    h.with(|heap, _| heap.set_keep_max(2 * n));
    let again = blocks(&h);
    for p in again {
        h.free(None, p).unwrap();
    }
    assert!(h.inner.lock().unwrap().1.shrinks >= 1);
    assert!(h.with(|heap, _| heap.spans.kept_bytes) <= 2 * n);
    assert_eq!(h.check(), 0);
}

#[test]
fn huge_blocks_get_spans_of_their_own_and_give_them_back() {
    let h = TestHeap::new(TestSource::default());
    let c = h.cache();
    let small = h.alloc(Some(c), 64, 16);
    let big = h.alloc(None, 8 << 20, 16);
    let mapped = h.stats().mapped;
    h.free(None, big).unwrap();
    // The whole span went back at once (not kept: it held one huge block).
    assert!(
        h.stats().mapped <= mapped - (8 << 20),
        "{} -> {}",
        mapped,
        h.stats().mapped
    );
    let bigger = h.alloc(None, 9 << 20, 16);
    assert!(!bigger.is_null());
    assert!(
        h.stats().mapped < mapped + (2 << 20),
        "the freed pages did not linger"
    );
    h.free(None, bigger).unwrap();
    h.free(Some(c), small).unwrap();
    assert_eq!(h.check(), 0);
}

#[test]
fn bad_alignment_is_refused() {
    let (h, _m) = TestHeap::with_region(64 * 1024);
    let c = h.cache();
    for align in [0usize, 3, 20, 48, 1000, usize::MAX] {
        assert!(h.alloc(Some(c), 100, align).is_null(), "align {align}");
        assert!(h.alloc(None, 100, align).is_null(), "align {align}");
        assert!(h.with(|heap, src| heap.alloc(100, align, src)).is_none());
    }
    assert_eq!(h.check(), 0);
}

#[test]
fn growth_from_a_source_and_everything_goes_back() {
    let h = TestHeap::new(TestSource::default());
    let c = h.cache();
    let mut ptrs = Vec::new();
    let count = if cfg!(miri) { 300 } else { 3000 };
    for i in 0..count {
        ptrs.push(h.alloc(Some(c), 16 + i % 1500, 16));
    }
    let big = h.alloc(Some(c), 3 << 20, 16);
    assert!(
        h.stats().spans < 20,
        "growth is geometric: {} spans",
        h.stats().spans
    );
    assert_eq!(h.check(), 0);
    h.free(Some(c), big).unwrap();
    for p in ptrs {
        h.free(Some(c), p).unwrap();
    }
    assert_eq!(h.check(), 0);
    h.with(|heap, src| heap.detach_cache(src, c));
    h.trim();
    let st = h.stats();
    assert_eq!((st.mapped, st.slabs, st.live), (0, 0, 0));
    // Only metadata chunks stay with the heap.
    assert_eq!(h.outstanding(), h.with(|heap, _| heap.meta.chunks));
}

#[test]
fn a_span_whose_front_became_metadata_is_not_lost() {
    // The source has room for the span but not for separate metadata, so
    // the span's front becomes metadata and the block no longer fits in
    // it: that span is filed as emptied (kept, given back under pressure)
    // and growth tries again for the room the metadata took.
    let h = TestHeap::new(TestSource {
        limit: Some(256 << 10),
        ..Default::default()
    });
    let held = |h: &TestHeap| {
        h.with(|_, _| ());
        let g = h.inner.lock().unwrap();
        g.1.outstanding.iter().map(|s| s.1).sum::<usize>()
    };
    let n = 200 << 10;
    let p = h.alloc(None, n, 16);
    assert!(!p.is_null());
    // SAFETY: `n` bytes just allocated.
    unsafe { ptr::write_bytes(p, 0x5a, n) };
    assert_eq!(h.check(), 0);
    h.free(None, p).unwrap();
    h.trim();
    // Everything but metadata went back.
    let meta = h.stats().metadata;
    assert!(
        held(&h) <= meta,
        "{} bytes held, {meta} of metadata",
        held(&h)
    );
    assert_eq!(h.stats().mapped, 0);
    assert_eq!((h.check(), h.fault()), (0, None));
}

#[test]
fn source_exhaustion_is_none_not_fault() {
    let h = TestHeap::new(TestSource {
        limit: Some(1 << 20),
        ..Default::default()
    });
    assert!(h.alloc(None, 2 << 20, 16).is_null());
    let p = h.alloc(None, 1000, 16);
    assert!(!p.is_null());
    h.free(None, p).unwrap();
    assert_eq!(h.fault(), None);
}

#[test]
fn metadata_lives_at_the_front_of_a_region_without_a_source() {
    let (h, m) = TestHeap::with_region(64 * 1024);
    let p = h.alloc(None, 16, 16);
    let st = h.stats();
    assert!(st.metadata > 0 && st.metadata < 32 * 1024);
    // Every block lies above the metadata pages.
    assert!(p.addr() >= m.p.addr() + st.metadata);
    let meta_page = m.p;
    assert_eq!(
        h.free(None, meta_page),
        Err(Fault::InvalidPointer(meta_page.addr()))
    );
}

#[test]
fn caches_give_slabs_back_when_detached_and_are_reused() {
    let (h, _m) = TestHeap::with_region(512 * 1024);
    let c = h.cache();
    let ptrs: Vec<_> = (0..500)
        .map(|i| h.alloc(Some(c), 16 + i % 300, 16))
        .collect();
    let owned = c.owned.len.load(Relaxed);
    assert!(owned > 0);
    // Another thread frees half of them (remote frees, merged later).
    let other = h.cache();
    for p in ptrs.iter().step_by(2) {
        h.free(Some(other), *p).unwrap();
    }
    h.with(|heap, src| heap.detach_cache(src, c));
    assert_eq!(c.owned.len.load(Relaxed), 0);
    assert_eq!(h.check(), 0);
    // The rest are freed through the heap (no cache) and all is well.
    for p in ptrs.iter().skip(1).step_by(2) {
        h.free(None, *p).unwrap();
    }
    assert_eq!(h.check(), 0);
    assert_eq!(h.stats().live, 0);
    // A dormant cache is what the next thread gets.
    assert!(ptr::eq(h.cache(), c));
}

#[test]
fn slabs_tile_their_span_with_no_page_between() {
    let (h, _m) = TestHeap::with_region(1 << 20);
    let c = h.cache();
    let class = class::of(48);
    let (count, pages) = (CLASS[class].count as usize, CLASS[class].pages as usize);
    let free_before = h.with(|heap, _| heap.tlsf.free_bytes);
    let slabs = 40;
    let ptrs: Vec<_> = (0..count * slabs)
        .map(|_| h.alloc(Some(c), 48, 16))
        .collect();
    assert!(ptrs.iter().all(|p| !p.is_null()));
    // Each slab takes its own pages and nothing more (one page may go to
    // align the first one, and one metadata chunk to the descriptors).
    let taken = free_before - h.with(|heap, _| heap.tlsf.free_bytes);
    let metadata = h.stats().metadata;
    assert!(
        taken <= (slabs * pages + 1) * PAGE + metadata,
        "{slabs} slabs of {pages} page(s) took {taken} bytes ({metadata} of metadata)"
    );
    for p in ptrs {
        h.free(Some(c), p).unwrap();
    }
    assert_eq!(h.check(), 0);
}

#[test]
fn a_free_into_a_full_slab_is_taken_back_first_and_still_checked() {
    let (h, _m) = TestHeap::with_region(1 << 20);
    let c = h.cache();
    let count = CLASS[class::of(64)].count as usize;
    // Four full slabs (the last one still the active one).
    let ptrs: Vec<_> = (0..count * 4).map(|_| h.alloc(Some(c), 64, 16)).collect();
    // Objects freed into full slabs come back newest first, without a
    // slab switch.
    h.free(Some(c), ptrs[3]).unwrap();
    h.free(Some(c), ptrs[count + 7]).unwrap();
    assert_eq!(h.alloc(Some(c), 64, 16), ptrs[count + 7]);
    assert_eq!(h.alloc(Some(c), 64, 16), ptrs[3]);
    // A hinted object is free in its slab: a second free is caught.
    h.free(Some(c), ptrs[5]).unwrap();
    assert_eq!(
        h.free(Some(c), ptrs[5]),
        Err(Fault::DoubleFree(ptrs[5].addr()))
    );
    // A hint whose object was taken another way is skipped: the slab of
    // ptrs[5] is filed as partial once more frees than hints arrive, and
    // its objects are allocated from there.
    for p in &ptrs[6..count] {
        h.free(Some(c), *p).unwrap();
    }
    // Emptying a slab with hints gives it back with them gone.
    for p in &ptrs[..5] {
        h.free(Some(c), *p).unwrap();
    }
    assert_eq!(h.check(), 0);
    let mut again: Vec<_> = (0..count * 2).map(|_| h.alloc(Some(c), 64, 16)).collect();
    again.sort();
    again.dedup();
    assert_eq!(again.len(), count * 2, "an object handed out twice");
    assert_eq!(h.check(), 0);
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

/// The model: random malloc/realloc/aligned/free through three caches (as
/// if three threads) and the locked path, against a shadow map of live
/// ranges; contents, alignment and disjointness are checked, and `check()`
/// must stay 0 after every step.
#[test]
fn model_random_sequences() {
    // Under Miri: fewer steps, and the full check every eighth one.
    let (steps, seeds, every) = if cfg!(miri) {
        (80, &[7u64][..], 8)
    } else {
        (6000, &[1u64, 0xDEAD_BEEF, 42][..], 1)
    };
    for &seed in seeds {
        let mut rng = Rng(seed);
        let h = TestHeap::new(TestSource::default());
        let m = Mem::new(256 * 1024);
        // SAFETY: test memory outlives the heap's use of it.
        h.with(|heap, src| unsafe { heap.add_span(m.p, m.len, SpanKind::Arena, src) })
            .unwrap();
        let caches = [Some(h.cache()), Some(h.cache()), Some(h.cache()), None];
        // address -> (size, seed, ptr)
        let mut live: BTreeMap<usize, (usize, u8, *mut u8)> = BTreeMap::new();
        for step in 0..steps {
            let action = rng.below(100);
            let via = caches[rng.below(4) as usize];
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
                let p = h.alloc(via, size, align);
                assert!(!p.is_null());
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
                    h.free(via, p).unwrap();
                } else {
                    let q = cache::realloc_any(&h, via, NonNull::new(p).unwrap(), size.max(1))
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
            if step % every == 0 {
                assert_eq!(h.check(), 0, "seed {seed} step {step}");
                assert_eq!(h.stats().live, live.len(), "seed {seed} step {step}");
            }
            assert_eq!(h.fault(), None);
        }
        for (_, (n, s, p)) in std::mem::take(&mut live) {
            verify(p, n, s);
            h.free(caches[0], p).unwrap();
        }
        assert_eq!(h.check(), 0);
        for c in caches.into_iter().flatten() {
            cache::flush(&h, c);
            h.with(|heap, src| heap.detach_cache(src, c));
        }
        h.trim();
        assert_eq!(h.stats().slabs, 0);
        assert_eq!(h.outstanding(), h.with(|heap, _| heap.meta.chunks));
    }
}

/// Threads, each with its own cache, allocate, fill, and hand half their
/// blocks to the next thread, which checks and frees them; the rest they
/// free themselves. At the end every block is back and the heap is whole.
#[test]
fn model_threads_free_each_others_blocks() {
    let threads = 4;
    let (rounds, per) = if cfg!(miri) { (2, 20) } else { (200, 300) };
    let h = Arc::new(TestHeap::new(TestSource::default()));
    type Batch = Vec<(usize, usize, u8)>;
    let boxes: Arc<Vec<Mutex<Vec<Batch>>>> =
        Arc::new((0..threads).map(|_| Mutex::new(Vec::new())).collect());
    let joins: Vec<_> = (0..threads)
        .map(|t| {
            let h = Arc::clone(&h);
            let boxes = Arc::clone(&boxes);
            std::thread::spawn(move || {
                let c = h.cache();
                let mut rng = Rng(0x1234 + t as u64);
                for _ in 0..rounds {
                    let mut mine = Vec::new();
                    let mut give = Vec::new();
                    for _ in 0..per {
                        let n = match rng.below(10) {
                            0..=7 => rng.below(200) as usize,
                            _ => rng.below(3000) as usize,
                        };
                        let p = h.alloc(Some(c), n, 16);
                        assert!(!p.is_null());
                        let s = rng.next() as u8;
                        fill(p, n, s);
                        if rng.below(2) == 0 {
                            give.push((p.addr(), n, s));
                        } else {
                            mine.push((p.addr(), n, s));
                        }
                    }
                    boxes[(t + 1) % threads].lock().unwrap().push(give);
                    let got: Vec<Batch> = std::mem::take(&mut *boxes[t].lock().unwrap());
                    for (a, n, s) in got.into_iter().flatten().chain(mine) {
                        verify(a as *mut u8, n, s);
                        h.free(Some(c), a as *mut u8).unwrap();
                    }
                }
                c as *const Cache as usize
            })
        })
        .collect();
    let caches: Vec<usize> = joins.into_iter().map(|j| j.join().unwrap()).collect();
    // What is still in the boxes is freed by the main thread (no cache).
    for b in boxes.iter() {
        for (a, n, s) in std::mem::take(&mut *b.lock().unwrap())
            .into_iter()
            .flatten()
        {
            verify(a as *mut u8, n, s);
            h.free(None, a as *mut u8).unwrap();
        }
    }
    assert_eq!(h.fault(), None);
    for c in caches {
        // SAFETY: caches live as long as the (leaked) heap.
        let c = unsafe { &*(c as *const Cache) };
        h.with(|heap, src| heap.detach_cache(src, c));
    }
    assert_eq!(h.check(), 0);
    let st = h.stats();
    assert_eq!(st.live, 0);
    assert_eq!(st.in_use, 0);
    assert_eq!(st.total_allocs, st.total_frees);
    h.trim();
    assert_eq!(h.stats().slabs, 0);
}

#[test]
fn heap_methods_work_without_any_cache_or_source() {
    let shared: &'static Shared = Box::leak(Box::new(Shared::new()));
    let mut heap = Heap::new(shared);
    let m = Mem::new(64 * 1024);
    // SAFETY: test memory outlives the heap.
    unsafe { heap.add_span(m.p, m.len, SpanKind::Region, &mut NoSource) }.unwrap();
    let p = heap.alloc(40, 16, &mut NoSource).unwrap();
    assert_eq!(heap.usable_size(p.as_ptr().addr()), Ok(48));
    heap.free_block(p.as_ptr().addr(), &mut NoSource).unwrap();
    assert_eq!(heap.check(), 0);
}

#[test]
fn big_and_big_aligned_blocks_fit_their_dedicated_spans() {
    let h = TestHeap::new(TestSource::default());
    let sizes: &[(usize, usize)] = if cfg!(miri) {
        &[(2 << 20, 4096)]
    } else {
        &[
            (8 << 20, 4096),
            (32 << 20, 4096),
            (32 << 20, 16),
            (64 << 20, 1 << 21),
        ]
    };
    for &(n, a) in sizes {
        let p = h.alloc(None, n, a);
        assert!(!p.is_null(), "{n} bytes aligned to {a}");
        assert_eq!(p.addr() % a, 0);
        h.free(None, p).unwrap();
    }
    assert_eq!(h.check(), 0);
}
