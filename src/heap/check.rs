//! The heap checker (`memshim_check`) and the text summary (`memshim_dump`).
//!
//! The checker walks every block of every span and every free list and
//! counts what does not hold. It only reads memory proven to lie inside a
//! span, and every walk is bounded, so a corrupted heap yields a count, not
//! a crash or a hang.

use super::block::{self, Header, HDR, MIN_BLOCK};
use super::tlsf::{self, FL_COUNT, SL_COUNT};
use super::{Heap, MIN_ALIGN};
use crate::source::SpanKind;
use core::fmt;

impl Heap {
    /// Walks everything; returns the number of problems found (0 = healthy).
    pub fn check(&self) -> usize {
        let mut problems = 0;
        let (mut free_blocks, mut free_bytes) = (0usize, 0usize);
        let (mut used_blocks, mut used_bytes) = (0usize, 0usize);
        let mut mapped = 0usize;
        let mut prev_end = 0usize;
        for span in self.live_spans() {
            mapped += span.len;
            if span.start() < prev_end || span.start() % MIN_ALIGN != 0 || span.len % MIN_ALIGN != 0
            {
                problems += 1; // the span table is unsorted or overlaps
            }
            prev_end = span.end();
            let sentinel = span.end() - HDR;
            let mut b = span.first();
            let mut prev_was_free = false;
            // SAFETY: blocks are read only while their addresses stay inside the span.
            unsafe {
                while b.addr() < sentinel {
                    if !block::valid(b, self.secret) {
                        problems += 1;
                        break;
                    }
                    let size = block::size(b);
                    if size < MIN_BLOCK || size % MIN_ALIGN != 0 || b.addr() + size > sentinel {
                        problems += 1;
                        break;
                    }
                    if block::prev_free(b) != prev_was_free {
                        problems += 1;
                    }
                    if block::is_free(b) {
                        if prev_was_free {
                            problems += 1; // two free neighbours: a merge was missed
                        }
                        if *block::footer(b) != size {
                            problems += 1;
                        }
                        free_blocks += 1;
                        free_bytes += size;
                    } else {
                        used_blocks += 1;
                        used_bytes += size - HDR;
                    }
                    prev_was_free = block::is_free(b);
                    b = block::next_phys(b);
                }
                if b.addr() == sentinel
                    && (!block::valid(b, self.secret)
                        || block::size(b) != 0
                        || block::prev_free(b) != prev_was_free)
                {
                    problems += 1;
                }
            }
        }
        problems += self.check_lists(free_blocks);
        let st = &self.stats;
        problems += usize::from(st.free != free_bytes)
            + usize::from(st.in_use != used_bytes)
            + usize::from(st.live != used_blocks)
            + usize::from(st.mapped != mapped);
        problems
    }

    /// Every listed block is free, in the right class, doubly linked, and the
    /// bitmaps agree with the lists; the lists hold exactly `expected` blocks.
    fn check_lists(&self, expected: usize) -> usize {
        let mut problems = 0;
        let mut listed = 0usize;
        for fl in 0..FL_COUNT {
            for sl in 0..SL_COUNT {
                let head = self.lists[fl][sl];
                let bit = self.sl_bitmap[fl] & (1 << sl) != 0;
                if bit == head.is_null() {
                    problems += 1;
                }
                let mut prev: *mut Header = core::ptr::null_mut();
                let mut b = head;
                while !b.is_null() {
                    listed += 1;
                    if listed > expected + 1 || !self.in_heap(b) {
                        return problems + 1;
                    }
                    // SAFETY: `b` is proven inside a span.
                    unsafe {
                        if !block::valid(b, self.secret)
                            || !block::is_free(b)
                            || tlsf::class_of(block::size(b)) != (fl, sl)
                            || (*block::links(b)).prev != prev
                        {
                            return problems + 1;
                        }
                        prev = b;
                        b = (*block::links(b)).next;
                    }
                }
            }
            if (self.fl_bitmap & (1 << fl) != 0) != (self.sl_bitmap[fl] != 0) {
                problems += 1;
            }
        }
        problems + usize::from(listed != expected)
    }

    /// A bounded text summary: counters, spans, non-empty free classes.
    pub fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let st = &self.stats;
        writeln!(
            out,
            "heap: {} live blocks, {} bytes in use (peak {}), {} bytes free, {} bytes in {} spans",
            st.live, st.in_use, st.peak_in_use, st.free, st.mapped, st.spans
        )?;
        writeln!(
            out,
            "heap: {} allocations, {} frees since start",
            st.total_allocs, st.total_frees
        )?;
        for span in self.live_spans().iter().take(16) {
            let kind = match span.kind {
                SpanKind::Arena => "static arena",
                SpanKind::Region => "region",
                SpanKind::PageHooks => "page hooks",
                SpanKind::Mmap => "mmap",
                SpanKind::Frames => "frames",
            };
            writeln!(
                out,
                "  span {:#x}..{:#x} ({} bytes, {kind})",
                span.start(),
                span.end(),
                span.len
            )?;
        }
        if st.spans > 16 {
            writeln!(out, "  ... {} more spans", st.spans - 16)?;
        }
        for fl in 0..FL_COUNT {
            for sl in 0..SL_COUNT {
                let mut b = self.lists[fl][sl];
                if b.is_null() {
                    continue;
                }
                let mut count = 0;
                while !b.is_null() && count < 1000 && self.in_heap(b) {
                    count += 1;
                    // SAFETY: `b` is proven inside a span and was filed free.
                    b = unsafe { (*block::links(b)).next };
                }
                let more = if b.is_null() { "" } else { "+" };
                writeln!(
                    out,
                    "  free class >= {} bytes: {count}{more} blocks",
                    tlsf::class_min(fl, sl)
                )?;
            }
        }
        Ok(())
    }
}
