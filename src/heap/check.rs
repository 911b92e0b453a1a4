//! The heap checker (`memshim_check`) and the text summary (`memshim_dump`).
//!
//! The checker walks every span's blocks, every free list, every slab
//! descriptor (the heap's own and every cache's) and the page map entries
//! behind them, and counts what does not hold. Objects held free in caches
//! count as free; a cache is not drained or stopped by a check, so bitmap
//! counts are compared only for slabs no running thread owns.

use super::pagemap::{PAGE, TAG_MASK, TAG_SLAB, TAG_SPAN};
use super::slab::{place, Slab, WORDS};
use super::spans::Span;
use super::tlsf::check::Walk;
use super::{Heap, CLASS, CLASSES, HDR};
use crate::source::SpanKind;
use core::fmt;
use core::sync::atomic::Ordering::Relaxed;

impl Heap {
    /// Walks everything; returns the number of problems found (0 = healthy).
    pub fn check(&self) -> usize {
        let map = self.map();
        let mut w = Walk::default();
        let (mut mapped, mut count) = (0usize, 0usize);
        for span in self.spans.iter() {
            mapped += span.len;
            count += 1;
            if span.base % super::MIN_ALIGN != 0 || span.len % super::MIN_ALIGN != 0 {
                w.problems += 1;
            }
            w.problems += self.check_span_map(span);
            self.tlsf.walk_span(span, &mut w);
        }
        w.problems += self.tlsf.check_lists(map, w.free_blocks);
        let t = &self.tlsf;
        w.problems += usize::from(t.free_bytes != w.free_bytes)
            + usize::from(t.used_bytes != w.used_bytes)
            + usize::from(t.used_blocks != w.used_blocks)
            + usize::from(t.internal_bytes != w.internal_bytes)
            + usize::from(self.spans.mapped != mapped)
            + usize::from(self.spans.count != count);
        // SAFETY: the lock is held while owner lists are walked.
        unsafe {
            for s in self.slabs.owned.iter() {
                w.problems += self.check_slab(&*s, core::ptr::null());
            }
            for c in self.caches() {
                for s in c.owned.iter() {
                    w.problems += self.check_slab(&*s, c);
                }
                // Hints name the cache's own slabs only. (Read while the
                // owner may change them: a hint is one word, read whole, and
                // a slab leaves the cache only under the lock held here.)
                for h in c.hinted() {
                    w.problems += usize::from(!c.owned.iter().any(|s| s == h));
                }
            }
        }
        w.problems + self.check_heap_lists()
    }

    /// Every page of `span` maps to it, or to a slab carved from it.
    fn check_span_map(&self, span: &Span) -> usize {
        let me = core::ptr::from_ref(span).addr();
        let mut problems = 0;
        let mut a = span.map_lo;
        while a < span.map_hi {
            let e = self.map().get(a);
            let ok = match e & TAG_MASK {
                TAG_SPAN => e & !TAG_MASK == me,
                // SAFETY: slab entries point at live descriptors.
                TAG_SLAB => unsafe {
                    (*core::ptr::with_exposed_provenance::<Slab>(e & !TAG_MASK))
                        .span()
                        .addr()
                        == me
                },
                _ => e & TAG_MASK == super::TAG_META,
            };
            problems += usize::from(!ok);
            a += PAGE;
        }
        problems
    }

    /// One slab descriptor against its class, its span, its block and the
    /// page map.
    fn check_slab(&self, s: &Slab, owner: *const super::Cache) -> usize {
        let mut problems = 0;
        let class = s.class();
        if class >= CLASSES || s.owner.load(Relaxed).cast_const() != owner {
            return 1;
        }
        let c = &CLASS[class];
        let base = s.base.load(Relaxed);
        let bytes = c.pages as usize * PAGE;
        let count = s.count.load(Relaxed) as u32;
        if base % PAGE != 0
            || count != c.count
            || s.size.load(Relaxed) != c.size
            || s.limit.load(Relaxed) != u64::from(c.count * c.size)
        {
            return 1;
        }
        // SAFETY: a slab's span pointer is a live record (checked against the list).
        let span = unsafe { s.span().as_ref() };
        let in_list = span.is_some_and(|sp| self.spans.iter().any(|x| core::ptr::eq(x, sp)));
        match span {
            Some(sp) if in_list && base - HDR >= sp.base && base + bytes - HDR <= sp.sentinel() => {
            }
            _ => return 1,
        }
        let me = core::ptr::from_ref(s).addr() | TAG_SLAB;
        let mut a = base;
        while a < base + bytes {
            problems += usize::from(self.map().get(a) != me);
            a += PAGE;
        }
        for w in 0..WORDS {
            let f = s.free[w].load(Relaxed);
            let r = s.remote[w].load(Relaxed);
            let valid = match (count as usize).saturating_sub(w * 64) {
                0 => 0,
                n if n >= 64 => !0u64,
                n => (1u64 << n) - 1,
            };
            problems += usize::from((f | r) & !valid != 0) + usize::from(f & r != 0);
        }
        problems
    }

    /// The heap's partial and empty lists hold heap-owned slabs of their
    /// class, placed as the list says.
    fn check_heap_lists(&self) -> usize {
        let mut problems = 0;
        for class in 0..CLASSES {
            for (list, want, limit) in [
                (&self.slabs.partial[class], place::PARTIAL, usize::MAX),
                (
                    &self.slabs.empty[class],
                    place::EMPTY,
                    self.slabs.nempty[class],
                ),
            ] {
                let mut s = list.head.load(Relaxed);
                let mut n = 0usize;
                while !s.is_null() {
                    n += 1;
                    // SAFETY: listed descriptors are live while the lock is held.
                    let slab = unsafe { &*s };
                    if n > self.slabs.owned.len.load(Relaxed)
                        || slab.class() != class
                        || slab.place.load(Relaxed) != want
                        || !slab.owner.load(Relaxed).is_null()
                    {
                        return problems + 1;
                    }
                    s = slab.next.load(Relaxed);
                }
                if limit != usize::MAX && n != limit {
                    problems += 1;
                }
            }
        }
        problems
    }

    /// A bounded text summary: counters, spans, slabs, caches, free classes.
    pub fn dump(&mut self, out: &mut dyn fmt::Write) -> fmt::Result {
        let st = self.stats();
        writeln!(
            out,
            "heap: {} live blocks, {} bytes in use (peak {}), {} bytes free, {} bytes in {} spans",
            st.live, st.in_use, st.peak_in_use, st.free, st.mapped, st.spans
        )?;
        writeln!(
            out,
            "heap: {} allocations, {} frees since start; {} slabs; {} bytes of metadata; \
             blocks from {} bytes get spans of their own",
            st.total_allocs, st.total_frees, st.slabs, st.metadata, self.huge
        )?;
        for span in self.spans.iter().take(16) {
            let kind = match span.kind {
                SpanKind::Arena => "static arena",
                SpanKind::Region => "region",
                SpanKind::PageHooks => "page hooks",
                SpanKind::Mmap => "mmap",
                SpanKind::Frames => "frames",
            };
            let kept = if span.kept { ", kept empty" } else { "" };
            writeln!(
                out,
                "  span {:#x}..{:#x} ({} bytes, {kind}{kept})",
                span.base,
                span.end(),
                span.len
            )?;
        }
        if st.spans > 16 {
            writeln!(out, "  ... {} more spans", st.spans - 16)?;
        }
        let (mut attached, mut dormant) = (0, 0);
        for c in self.caches() {
            if c.attached.load(Relaxed) != 0 {
                attached += 1;
            } else {
                dormant += 1;
            }
        }
        writeln!(out, "  caches: {attached} in use, {dormant} dormant")?;
        self.tlsf.dump_lists(self.map(), out)
    }
}
