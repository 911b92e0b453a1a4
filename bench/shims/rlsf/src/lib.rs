//! rlsf 0.2 as a C allocator. rlsf ships what a C wrapper needs itself:
//! `GlobalTlsf` (a TLSF behind a pthread mutex, growing by mmap in 64 KiB
//! units and merging adjacent mappings) and its `CAlloc` trait, whose
//! `deallocate` needs no layout, so no header is added.

use bench_shim::{export_c_abi, CHeap, MIN_ALIGN};
use rlsf::{CAlloc, GlobalTlsf};
use std::alloc::Layout;
use std::ptr::{null_mut, NonNull};

struct Rlsf(GlobalTlsf);

// SAFETY: blocks come from rlsf's allocate/reallocate as they are.
unsafe impl CHeap for Rlsf {
    fn alloc(&self, size: usize, align: usize) -> *mut u8 {
        Layout::from_size_align(size, align)
            .ok()
            .and_then(|l| self.0.allocate(l))
            .map_or(null_mut(), NonNull::as_ptr)
    }

    unsafe fn free(&self, p: *mut u8) {
        // SAFETY: p is a live block of this allocator (the caller's
        // contract), so not null.
        unsafe { self.0.deallocate(NonNull::new_unchecked(p)) }
    }

    unsafe fn realloc(&self, p: *mut u8, size: usize) -> *mut u8 {
        let Ok(layout) = Layout::from_size_align(size, MIN_ALIGN) else {
            return null_mut();
        };
        // SAFETY: p is a live block of this allocator (the caller's contract).
        unsafe { self.0.reallocate(NonNull::new_unchecked(p), layout) }
            .map_or(null_mut(), NonNull::as_ptr)
    }
}

static HEAP: Rlsf = Rlsf(GlobalTlsf::new());

export_c_abi!(HEAP);
