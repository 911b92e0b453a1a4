//! dlmalloc (the crates.io port) as a C allocator: one lock around
//! `Dlmalloc` and its layout-free `c_*` functions, which need no header.
//! Memory comes from dlmalloc's own mmap source.

use bench_shim::{export_c_abi, CHeap};
use dlmalloc::Dlmalloc;
use std::sync::{Mutex, MutexGuard};

struct Dl(Mutex<Dlmalloc>);

impl Dl {
    fn lock(&self) -> MutexGuard<'_, Dlmalloc> {
        // Poisoning needs a panic, and a panic aborts in this workspace.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// SAFETY: blocks come from dlmalloc as they are.
unsafe impl CHeap for Dl {
    fn alloc(&self, size: usize, align: usize) -> *mut u8 {
        // SAFETY: align is a power of two (CHeap's contract).
        unsafe { self.lock().c_memalign(align, size) }
    }

    unsafe fn free(&self, p: *mut u8) {
        // SAFETY: p is a live block of this allocator (the caller's contract).
        unsafe { self.lock().c_free(p) }
    }

    unsafe fn realloc(&self, p: *mut u8, size: usize) -> *mut u8 {
        // SAFETY: p is a live block of this allocator (the caller's contract).
        unsafe { self.lock().c_realloc(p, size) }
    }
}

static HEAP: Dl = Dl(Mutex::new(Dlmalloc::new()));

export_c_abi!(HEAP);
