//! The global heap as a Rust API: what the C functions and `GlobalAlloc` use.
//!
//! Faults (double free, bad pointer, corrupted metadata) are detected under
//! the lock, which is released before they are reported through the panic
//! hook; if the hook returns, the faulting call has done nothing.

use crate::heap::MIN_ALIGN;
use crate::state::STATE;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

/// Allocates `size` bytes aligned to `align` (a power of two). Null on failure.
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    let r = STATE.with(|s| {
        let (heap, mut src) = s.heap();
        heap.alloc(size, align, &mut src)
    });
    if let Some(bad) = crate::source::hooks::take_misaligned() {
        crate::panic::report(format_args!(
            "page hook returned {bad:#x}, which is not page-aligned: given back with free_pages and not used"
        ));
    }
    match r {
        Ok(p) => p.map_or(ptr::null_mut(), NonNull::as_ptr),
        Err(fault) => {
            crate::panic::report(format_args!("{}", fault));
            ptr::null_mut()
        }
    }
}

/// Allocates `count * size` zeroed bytes; null on overflow or exhaustion.
pub fn alloc_zeroed(count: usize, size: usize) -> *mut u8 {
    let Some(total) = count.checked_mul(size) else {
        return ptr::null_mut();
    };
    let p = alloc(total, MIN_ALIGN);
    if !p.is_null() {
        // SAFETY: `p` points to at least `total` writable bytes just allocated.
        unsafe { ptr::write_bytes(p, 0, total) };
    }
    p
}

/// Frees a block; null does nothing.
///
/// # Safety
/// `p` must be null or a pointer memshim returned and not yet freed; anything
/// else is detected where possible and reported, never acted on.
pub unsafe fn free(p: *mut u8) {
    let Some(p) = NonNull::new(p) else { return };
    let r = STATE.with(|s| {
        let (heap, mut src) = s.heap();
        // SAFETY: forwarded contract; the heap validates the pointer first.
        unsafe { heap.free(p, &mut src) }
    });
    if let Err(fault) = r {
        crate::panic::report(format_args!("{}", fault));
    }
}

/// Outcome of [`realloc`] when it does not return a block.
#[derive(Debug, PartialEq, Eq)]
pub enum ReallocError {
    /// No memory; the old block is intact.
    NoMemory,
    /// The pointer was invalid (already reported through the panic hook).
    Fault,
}

/// Resizes a block, in place when the neighbour allows. `p` must not be null
/// and `size` must not be 0 (the C wrapper handles both cases).
///
/// # Safety
/// As for [`free`].
pub unsafe fn realloc(p: NonNull<u8>, size: usize) -> Result<NonNull<u8>, ReallocError> {
    let r = STATE.with(|s| {
        let (heap, mut src) = s.heap();
        // SAFETY: forwarded contract; the heap validates the pointer first.
        unsafe { heap.realloc(p, size, &mut src) }
    });
    match r {
        Ok(Some(q)) => Ok(q),
        Ok(None) => Err(ReallocError::NoMemory),
        Err(fault) => {
            crate::panic::report(format_args!("{}", fault));
            Err(ReallocError::Fault)
        }
    }
}

/// Usable size of a block (0 for null).
///
/// # Safety
/// As for [`free`].
pub unsafe fn usable_size(p: *mut u8) -> usize {
    let Some(p) = NonNull::new(p) else { return 0 };
    // SAFETY: forwarded contract; the heap validates the pointer first.
    let r = STATE.with(|s| unsafe { s.heap().0.usable_size(p) });
    match r {
        Ok(n) => n,
        Err(fault) => {
            crate::panic::report(format_args!("{}", fault));
            0
        }
    }
}

/// memshim's heap as a Rust global allocator:
///
/// ```ignore
/// #[global_allocator]
/// static A: memshim::MemShim = memshim::MemShim;
/// ```
pub struct MemShim;

// SAFETY: alloc returns blocks of at least `layout.size()` bytes aligned to
// `layout.align()` or null; dealloc/realloc only accept what alloc returned.
unsafe impl GlobalAlloc for MemShim {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        alloc(layout.size(), layout.align())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = alloc(layout.size(), layout.align());
        if !p.is_null() {
            // SAFETY: just allocated, `layout.size()` bytes writable.
            unsafe { ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: GlobalAlloc's contract: `p` came from this allocator.
        unsafe { free(p) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() > MIN_ALIGN {
            // The heap's realloc keeps only the default alignment: move by hand.
            let q = alloc(new_size, layout.align());
            if !q.is_null() {
                // SAFETY: both blocks are live and at least min(old, new) long.
                unsafe {
                    ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                    free(p);
                }
            }
            return q;
        }
        let Some(nn) = NonNull::new(p) else {
            return ptr::null_mut();
        };
        // SAFETY: GlobalAlloc's contract: `p` came from this allocator.
        unsafe { realloc(nn, new_size.max(1)) }.map_or(ptr::null_mut(), NonNull::as_ptr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The global heap through `GlobalAlloc`, as a Rust kernel would use it.
    #[test]
    fn global_alloc_honours_layouts() {
        let a = MemShim;
        for align in [1usize, 8, 16, 64, 4096, 1 << 21] {
            for size in [1usize, 24, 1000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero size layout.
                let p = unsafe { a.alloc_zeroed(layout) };
                assert!(!p.is_null());
                assert_eq!(p.addr() % align, 0);
                // SAFETY: `size` zeroed bytes at p.
                assert!(unsafe { core::slice::from_raw_parts(p, size) }
                    .iter()
                    .all(|&b| b == 0));
                // SAFETY: p is live with `layout`.
                unsafe { p.write_bytes(0x5A, size) };
                // SAFETY: p is live with `layout`; the new size is non-zero.
                let q = unsafe { a.realloc(p, layout, size * 3) };
                assert!(!q.is_null());
                assert_eq!(q.addr() % align, 0, "realloc keeps the layout's alignment");
                // SAFETY: the first `size` bytes were preserved.
                assert!(unsafe { core::slice::from_raw_parts(q, size) }
                    .iter()
                    .all(|&b| b == 0x5A));
                // SAFETY: q is live with the new layout.
                unsafe { a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap()) };
            }
        }
        assert_eq!(crate::check(), 0);
    }
}
