//! talc 5 as a C allocator, the way a user would wrap it: one lock, a
//! 16-byte header for the layout `free` needs ([`bench_shim::Headered`]),
//! realloc in place where talc can, and a memory source that maps at
//! least 1 MiB (as talc's own `GlobalAllocSource` does) whenever talc runs
//! out, claimed as a heap of its own. Memory is never returned.

use bench_shim::{export_c_abi, map, pages, unmap, Headered, LayoutHeap};
use std::alloc::Layout;
use std::ptr::{null_mut, NonNull};
use talc::base::binning::Binning;
use talc::base::Talc;
use talc::source::Source;
use talc::{min_first_heap_size, DefaultBinning};

const CHUNK: usize = 1 << 20;

/// Maps a new heap for talc when it runs out.
#[derive(Debug)]
struct Mmap;

// SAFETY: `acquire` calls mmap only, never an allocator.
unsafe impl Source for Mmap {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        let need = layout
            .size()
            .checked_add(layout.align())
            .and_then(|n| n.checked_add(min_first_heap_size::<B>()))
            .and_then(pages)
            .ok_or(())?;
        let len = need.max(CHUNK);
        let p = map(null_mut(), len, false);
        if p.is_null() {
            return Err(());
        }
        // SAFETY: a new mapping nothing else uses, talc's from now on.
        if unsafe { talc.claim(p, len) }.is_some() {
            Ok(())
        } else {
            // SAFETY: talc did not take it.
            unsafe { unmap(p, len) };
            Err(())
        }
    }
}

struct TalcHeap(Talc<Mmap, DefaultBinning>);

impl LayoutHeap for TalcHeap {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        // SAFETY: Headered never asks for zero bytes.
        unsafe { self.0.allocate(layout) }.map_or(null_mut(), NonNull::as_ptr)
    }

    unsafe fn dealloc(&mut self, p: *mut u8, layout: Layout) {
        // SAFETY: p was allocated with `layout` (the caller's contract).
        unsafe { self.0.deallocate(p, layout) }
    }

    unsafe fn resize_in_place(&mut self, p: *mut u8, layout: Layout, new_size: usize) -> bool {
        // SAFETY: p was allocated with `layout`; new_size > 0.
        unsafe { self.0.try_realloc_in_place(p, layout, new_size) }
    }
}

static HEAP: Headered<TalcHeap> = Headered::new(TalcHeap(Talc::new(Mmap)));

export_c_abi!(HEAP);
