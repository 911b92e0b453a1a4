//! The global heap as a Rust API: what the C functions and `GlobalAlloc` use.
//!
//! Small blocks go through the caller's cache ([`crate::local`]) without
//! the lock; everything else, and every call made while the cache is busy
//! (a signal handler or an interrupt inside memshim), takes the heap under
//! the global lock. Faults (double free, bad pointer, corrupted metadata)
//! are detected before anything is written and reported through the panic
//! hook after the lock is released; if the hook returns, the faulting call
//! has done nothing.

use crate::heap::cache::{self, Backend, FastFree};
use crate::heap::{Fault, MIN_ALIGN};
use crate::local::{self, Local};
use crate::state::Global;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

/// Allocates `size` bytes aligned to `align`. Null on failure, or when
/// `align` is not a power of two.
#[inline]
pub fn alloc(size: usize, align: usize) -> *mut u8 {
    if align <= MIN_ALIGN && align.is_power_of_two() && size <= crate::heap::SMALL_MAX {
        if let Some(l) = Local::enter() {
            let class = crate::heap::class::of(size);
            return match cache::alloc_fast(l.cache(), class) {
                Some(p) => p.as_ptr(),
                None => refill(l, class, false),
            };
        }
    }
    alloc_slow(size, align)
}

/// `malloc`: [`alloc`] with 16-byte alignment, and errno ENOMEM on failure.
#[inline]
pub fn malloc(size: usize) -> *mut u8 {
    if size <= crate::heap::SMALL_MAX {
        if let Some(l) = Local::enter() {
            let class = crate::heap::class::of(size);
            return match cache::alloc_fast(l.cache(), class) {
                Some(p) => p.as_ptr(),
                None => refill(l, class, true),
            };
        }
    }
    malloc_slow(size)
}

/// A small allocation the cache's fast path could not serve: its other
/// slabs, hints and the heap, with the cache still entered (it is left
/// here, so the fast path ends in a jump). `errno`: set ENOMEM on failure.
#[cold]
#[inline(never)]
fn refill(l: Local, class: usize, errno: bool) -> *mut u8 {
    let p = cache::alloc_slow(&Global, l.cache(), class).map_or(ptr::null_mut(), NonNull::as_ptr);
    drop(l);
    if p.is_null() && errno {
        no_memory();
    }
    p
}

#[cold]
#[inline(never)]
fn no_memory() {
    crate::platform::set_errno(crate::platform::ENOMEM);
}

#[cold]
#[inline(never)]
fn malloc_slow(size: usize) -> *mut u8 {
    let p = alloc_slow(size, MIN_ALIGN);
    if p.is_null() {
        no_memory();
    }
    p
}

#[inline(never)]
fn alloc_slow(size: usize, align: usize) -> *mut u8 {
    if size > crate::heap::SMALL_MAX {
        // No cache serves it: straight to the heap.
        return Global
            .locked(|h, src| h.alloc(size, align, src))
            .flatten()
            .map_or(ptr::null_mut(), NonNull::as_ptr);
    }
    let mut l = Local::enter();
    if l.is_none() && local::attach() {
        // A thread's (or CPU's) first small allocation attaches its cache.
        l = Local::enter();
    }
    cache::alloc_any(&Global, l.as_ref().map(Local::cache), size, align)
        .map_or(ptr::null_mut(), NonNull::as_ptr)
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
#[inline(always)]
pub unsafe fn free(p: *mut u8) {
    if p.is_null() {
        return;
    }
    if let Some(l) = Local::enter() {
        match cache::free_fast(Global.shared(), l.cache(), p.addr()) {
            FastFree::Done => return,
            FastFree::Marked(s, idx) => return marked(l, s, idx),
            FastFree::Slow => {}
        }
    }
    free_slow(p);
}

/// A free into a slab with marks (see [`cache::marked`]), with the cache
/// still entered (it is left here, so the fast path ends in a jump).
#[cold]
#[inline(never)]
fn marked(l: Local, s: *mut crate::heap::slab::Slab, idx: usize) {
    // SAFETY: just returned by `free_fast` for this cache, still entered.
    let r = unsafe { cache::marked(&Global, l.cache(), s, idx) };
    drop(l);
    if let Err(fault) = r {
        report(fault);
    }
}

/// [`free`] for everything the fast path does not take: other owners'
/// slabs, TLSF blocks, faults, a thread without a cache.
#[cold]
#[inline(never)]
fn free_slow(p: *mut u8) {
    // SAFETY: checked non-null by the caller.
    let p = unsafe { NonNull::new_unchecked(p) };
    let r = match Local::enter() {
        Some(l) => cache::free(&Global, l.cache(), p),
        None => Global
            .locked(|h, src| h.free_block(p.as_ptr().addr(), src))
            .unwrap_or(Ok(())),
    };
    if let Err(fault) = r {
        report(fault);
    }
}

#[cold]
#[inline(never)]
fn report(fault: Fault) {
    keep_errno(|| crate::panic::report(format_args!("{fault}")));
}

/// [`report`] for a call that uses a block rather than freeing it: a freed
/// block is named a use after free there, not a double free.
#[cold]
#[inline(never)]
fn report_use(call: &str, fault: Fault) {
    match fault {
        Fault::DoubleFree(p) => crate::panic::report(format_args!(
            "{call} of {p:#x}, which is already free (use after free)"
        )),
        f => crate::panic::report(format_args!("{call}: {f}")),
    }
}

/// Runs `f` with errno saved and restored: `free` never changes errno
/// (POSIX 2024), so a report (a user's handler) must not either. (The one
/// other call on a free path that could, `munmap`, keeps it itself.)
fn keep_errno<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_os = "linux")]
    let saved = crate::platform::host::errno();
    let r = f();
    #[cfg(target_os = "linux")]
    crate::platform::host::set_errno(saved);
    r
}

/// Outcome of [`realloc`] when it does not return a block.
#[derive(Debug, PartialEq, Eq)]
pub enum ReallocError {
    /// No memory; the old block is intact.
    NoMemory,
    /// The pointer was invalid (already reported through the panic hook).
    Fault,
}

/// Resizes a block (see [`cache::realloc_any`]). `p` must not be null and
/// `size` must not be 0 (the C wrapper handles both cases).
///
/// # Safety
/// As for [`free`].
pub unsafe fn realloc(p: NonNull<u8>, size: usize) -> Result<NonNull<u8>, ReallocError> {
    let l = Local::enter();
    match cache::realloc_any(&Global, l.as_ref().map(Local::cache), p, size) {
        Ok(Some(q)) => Ok(q),
        Ok(None) => Err(ReallocError::NoMemory),
        Err(f) => {
            drop(l);
            report_use("realloc", f);
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
    match cache::usable_any(&Global, p.as_ptr().addr()) {
        Ok(n) => n,
        Err(fault) => {
            report_use("malloc_usable_size", fault);
            0
        }
    }
}

/// Gives back what the heap holds only for speed: the calling thread's
/// wholly free slabs (after merging what other threads freed into them),
/// the slabs of threads that ended, kept empty slabs and kept empty spans.
/// The partly used slabs of live threads' caches stay with them.
pub fn trim() {
    if let Some(l) = Local::enter() {
        cache::release_empty(&Global, l.cache());
    }
    let _ = Global.locked(|h, src| h.trim(src));
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

    /// Safe functions refuse an alignment that is not a power of two.
    #[test]
    fn bad_alignment_is_refused_in_release_too() {
        for align in [0usize, 3, 20, 48, 1000, usize::MAX] {
            assert!(alloc(100, align).is_null(), "align {align}");
        }
        assert_eq!(crate::check(), 0);
    }
}
