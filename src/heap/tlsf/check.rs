//! The TLSF half of the heap checker: every block of every span, every
//! free list. It only reads memory proven to lie inside a span, and every
//! walk is bounded, so a corrupted heap yields a count, not a crash.

use super::block::{self, Header, HDR, MIN_BLOCK};
use super::index::{self, FL_COUNT, SL_COUNT};
use super::{Tlsf, ALIGN};
use crate::heap::pagemap::PageMap;
use crate::heap::spans::Span;
use core::fmt;

/// What a walk of the blocks found.
#[derive(Default)]
pub struct Walk {
    /// Problems found.
    pub problems: usize,
    /// Free blocks and their bytes.
    pub free_blocks: usize,
    /// See `free_blocks`.
    pub free_bytes: usize,
    /// User blocks and their usable bytes.
    pub used_blocks: usize,
    /// See `used_blocks`.
    pub used_bytes: usize,
    /// Bytes of internal blocks (slabs, metadata).
    pub internal_bytes: usize,
}

impl Tlsf {
    /// Walks the blocks of `span`, adding to `w`.
    pub fn walk_span(&self, span: &Span, w: &mut Walk) {
        let sentinel = span.sentinel();
        let mut b = core::ptr::with_exposed_provenance_mut::<Header>(span.base);
        let mut prev_was_free = false;
        // SAFETY: blocks are read only while their addresses stay inside the span.
        unsafe {
            while b.addr() < sentinel {
                if !block::valid(b, self.secret) {
                    w.problems += 1;
                    return;
                }
                let size = block::size(b);
                if size < MIN_BLOCK || size % ALIGN != 0 || b.addr() + size > sentinel {
                    w.problems += 1;
                    return;
                }
                if block::prev_free(b) != prev_was_free {
                    w.problems += 1;
                }
                if block::is_free(b) {
                    if prev_was_free {
                        w.problems += 1; // two free neighbours: a merge was missed
                    }
                    if block::footer_before(block::next_phys(b)) != size {
                        w.problems += 1;
                    }
                    w.free_blocks += 1;
                    w.free_bytes += size;
                } else if block::is_internal(b) {
                    w.internal_bytes += size;
                } else {
                    w.used_blocks += 1;
                    w.used_bytes += size - HDR;
                }
                prev_was_free = block::is_free(b);
                b = block::next_phys(b);
            }
            if b.addr() != sentinel
                || !block::valid(b, self.secret)
                || block::size(b) != 0
                || block::prev_free(b) != prev_was_free
            {
                w.problems += 1;
            }
        }
    }

    /// Every listed block is free, in the right class, doubly linked, and the
    /// bitmaps agree with the lists; the lists hold exactly `expected`
    /// blocks. Returns the problems found.
    pub fn check_lists(&self, map: &PageMap, expected: usize) -> usize {
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
                    if listed > expected + 1 || !Self::in_heap(map, b) {
                        return problems + 1;
                    }
                    // SAFETY: `b` is proven inside a span.
                    unsafe {
                        if !block::valid(b, self.secret)
                            || !block::is_free(b)
                            || index::class_of(block::size(b)) != (fl, sl)
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
        problems + usize::from(listed != expected) + self.quarantined
    }

    /// The non-empty free classes, bounded.
    pub fn dump_lists(&self, map: &PageMap, out: &mut dyn fmt::Write) -> fmt::Result {
        for fl in 0..FL_COUNT {
            for sl in 0..SL_COUNT {
                let mut b = self.lists[fl][sl];
                if b.is_null() {
                    continue;
                }
                let mut count = 0;
                while !b.is_null() && count < 1000 && Self::in_heap(map, b) {
                    count += 1;
                    // SAFETY: `b` is proven inside a span and was filed free.
                    b = unsafe { (*block::links(b)).next };
                }
                let more = if b.is_null() { "" } else { "+" };
                writeln!(
                    out,
                    "  free class >= {} bytes: {count}{more} blocks",
                    index::class_min(fl, sl)
                )?;
            }
        }
        Ok(())
    }
}
