//! buddy_system_allocator 0.11 as a C allocator, the way a user would wrap
//! it: one lock, a 16-byte header for the layout `free` needs
//! ([`bench_shim::Headered`]), and, when the heap runs out, a new chunk of
//! at least 1 MiB aligned to its own (power-of-two) size, so that the buddy
//! heap can use it as one block. Memory is never returned.

use bench_shim::{export_c_abi, map, unmap, Headered, LayoutHeap};
use buddy_system_allocator::Heap;
use std::alloc::Layout;
use std::ptr::{null_mut, NonNull};

const CHUNK: usize = 1 << 20;

struct Buddy(Heap<32>);

// SAFETY: the heap and its memory are only touched under Headered's lock.
unsafe impl Send for Buddy {}

impl Buddy {
    /// Maps a chunk big enough for `layout`: twice its size, trimmed to the
    /// aligned middle.
    fn grow(&mut self, layout: Layout) -> bool {
        let Some(chunk) = layout
            .size()
            .max(layout.align())
            .checked_next_power_of_two()
        else {
            return false;
        };
        let chunk = chunk.max(CHUNK);
        let Some(span) = chunk.checked_mul(2) else {
            return false;
        };
        let p = map(null_mut(), span, false);
        if p.is_null() {
            return false;
        }
        let start = (p as usize).next_multiple_of(chunk);
        let head = start - p as usize;
        // SAFETY: the parts of the new mapping outside [start, start + chunk).
        unsafe {
            if head > 0 {
                unmap(p, head);
            }
            if chunk - head > 0 {
                unmap((start + chunk) as *mut u8, chunk - head);
            }
            self.0.add_to_heap(start, start + chunk);
        }
        true
    }
}

impl LayoutHeap for Buddy {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        loop {
            if let Ok(p) = self.0.alloc(layout) {
                return p.as_ptr();
            }
            if !self.grow(layout) {
                return null_mut();
            }
        }
    }

    unsafe fn dealloc(&mut self, p: *mut u8, layout: Layout) {
        // SAFETY: p is a live block of `layout` (the caller's contract).
        self.0.dealloc(unsafe { NonNull::new_unchecked(p) }, layout)
    }
}

static HEAP: Headered<Buddy> = Headered::new(Buddy(Heap::new()));

export_c_abi!(HEAP);
