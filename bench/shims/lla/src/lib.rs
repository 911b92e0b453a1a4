//! linked_list_allocator 0.10 as a C allocator, the way a user would wrap
//! it: one lock, a 16-byte header for the layout `free` needs
//! ([`bench_shim::Headered`]). Its heap is one contiguous range that only
//! grows at the top (`Heap::extend`), so the wrapper maps it at an address
//! nothing else uses (16 TiB) and maps more right above when it runs out,
//! at least 1 MiB at a time.

use bench_shim::{export_c_abi, map, pages, Headered, LayoutHeap};
use linked_list_allocator::Heap;
use std::alloc::Layout;
use std::ptr::{null_mut, NonNull};

const BASE: usize = 0x1000_0000_0000;
const CHUNK: usize = 1 << 20;

struct Lla {
    heap: Heap,
    /// The end of the range mapped so far (null before the first).
    end: *mut u8,
}

// SAFETY: the heap and its memory are only touched under Headered's lock.
unsafe impl Send for Lla {}

impl Lla {
    /// Maps more memory for `layout` at the top of the heap.
    fn grow(&mut self, layout: Layout) -> bool {
        let Some(need) = layout
            .size()
            .checked_add(layout.align() + 64)
            .and_then(pages)
        else {
            return false;
        };
        let len = need.max(CHUNK);
        if self.end.is_null() {
            let p = map(BASE as *mut u8, len, true);
            let p = if p.is_null() {
                map(null_mut(), len, false)
            } else {
                p
            };
            if p.is_null() {
                return false;
            }
            // SAFETY: a new mapping, the heap's from now on.
            unsafe { self.heap.init(p, len) };
            // SAFETY: the end of that mapping.
            self.end = unsafe { p.add(len) };
        } else {
            if map(self.end, len, true).is_null() {
                return false;
            }
            // SAFETY: the new mapping starts right at the heap's end.
            unsafe { self.heap.extend(len) };
            // SAFETY: the end of the new mapping.
            self.end = unsafe { self.end.add(len) };
        }
        true
    }
}

impl LayoutHeap for Lla {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        loop {
            if !self.end.is_null() {
                if let Ok(p) = self.heap.allocate_first_fit(layout) {
                    return p.as_ptr();
                }
            }
            if !self.grow(layout) {
                return null_mut();
            }
        }
    }

    unsafe fn dealloc(&mut self, p: *mut u8, layout: Layout) {
        // SAFETY: p is a live block of `layout` (the caller's contract).
        unsafe { self.heap.deallocate(NonNull::new_unchecked(p), layout) }
    }
}

static HEAP: Headered<Lla> = Headered::new(Lla {
    heap: Heap::empty(),
    end: null_mut(),
});

export_c_abi!(HEAP);
