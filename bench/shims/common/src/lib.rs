//! What the benchmark's C-ABI wrappers share (`make bench-heap` loads each
//! wrapper as a shared object exporting the malloc family).
//!
//! A Rust allocator crate offers `alloc(Layout)`/`dealloc(ptr, Layout)`;
//! a C program calls `malloc(n)`/`free(p)`. Bridging the two is what a user
//! of such a crate has to write, and these wrappers are written that way:
//! one lock around the allocator ([`std::sync::Mutex`], a futex), memory
//! from `mmap` when the allocator runs out, and, where `free` needs the
//! size back, a 16-byte header in front of each block ([`Headered`]).
//! [`export_c_abi!`] turns a [`CHeap`] into the C functions, with the C
//! standard's edge cases (`malloc(0)`, `calloc` overflow, `realloc(p, 0)`,
//! alignment checks, errno).

use std::alloc::Layout;
use std::ffi::{c_int, c_void};
use std::ptr::{self, null_mut};
use std::sync::Mutex;

/// Every block is aligned at least this much (`max_align_t`).
pub const MIN_ALIGN: usize = 16;

/// An allocator with the C model: `free` and `realloc` get only the pointer.
///
/// # Safety
///
/// `alloc` returns NULL or a block of at least `size` bytes aligned to
/// `align` that no other live block overlaps.
pub unsafe trait CHeap: Sync {
    /// A block of `size` > 0 bytes aligned to `align` (a power of two,
    /// at least [`MIN_ALIGN`]), or NULL.
    fn alloc(&self, size: usize, align: usize) -> *mut u8;

    /// Frees a block.
    ///
    /// # Safety
    ///
    /// `p` came from this heap's `alloc` or `realloc` and is not yet freed.
    unsafe fn free(&self, p: *mut u8);

    /// Moves or resizes a block to `size` > 0 bytes (alignment [`MIN_ALIGN`]),
    /// keeping its contents; NULL (and `p` intact) when out of memory.
    ///
    /// # Safety
    ///
    /// As for [`CHeap::free`].
    unsafe fn realloc(&self, p: *mut u8, size: usize) -> *mut u8;
}

/// An allocator with the Rust model: `dealloc` needs the layout back.
pub trait LayoutHeap: Send {
    /// A block for `layout` (size > 0), or NULL when the allocator and its
    /// memory source are exhausted.
    fn alloc(&mut self, layout: Layout) -> *mut u8;

    /// Frees a block.
    ///
    /// # Safety
    ///
    /// `p` came from `alloc(layout)` (or a successful `resize` to
    /// `layout`) on this heap and is not yet freed.
    unsafe fn dealloc(&mut self, p: *mut u8, layout: Layout);

    /// Resizes a block where it is, if the allocator can: true when done.
    ///
    /// # Safety
    ///
    /// As for [`LayoutHeap::dealloc`]; `new_size` > 0.
    unsafe fn resize_in_place(&mut self, p: *mut u8, layout: Layout, new_size: usize) -> bool {
        let _ = (p, layout, new_size);
        false
    }
}

/// A [`LayoutHeap`] behind a lock, with each block's layout kept in a
/// header: the 16 bytes before the returned pointer hold the underlying
/// block's size and alignment. A block aligned to `a` > 16 starts `a`
/// bytes into its underlying block, so the header still fits in front.
pub struct Headered<H>(pub Mutex<H>);

const HEADER: usize = 16;

impl<H: LayoutHeap> Headered<H> {
    /// Wraps a heap.
    pub const fn new(heap: H) -> Self {
        Headered(Mutex::new(heap))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, H> {
        // Poisoning needs a panic, and a panic aborts in this workspace.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The layout a block of `size` bytes aligned to `align` is carved from,
/// and how far into it the caller's pointer is.
fn underlying(size: usize, align: usize) -> Option<(Layout, usize)> {
    let offset = align.max(HEADER);
    let layout = Layout::from_size_align(size.checked_add(offset)?, align).ok()?;
    Some((layout, offset))
}

/// Reads the header of a block [`Headered`] returned: the underlying layout
/// and the offset of `p` into it.
///
/// # Safety
///
/// `p` is a live block of a [`Headered`] heap.
unsafe fn header(p: *mut u8) -> (Layout, usize) {
    // SAFETY: the caller's block has its header in the 16 bytes in front.
    let (size, align) = unsafe { *p.sub(HEADER).cast::<(usize, usize)>() };
    // SAFETY: the header was written from a valid Layout.
    let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
    (layout, align.max(HEADER))
}

/// Writes the header of a block at `p` carved from `layout`.
///
/// # Safety
///
/// `p` is `align.max(16)` bytes into a live underlying block of `layout`.
unsafe fn set_header(p: *mut u8, layout: Layout) {
    // SAFETY: the 16 bytes in front of `p` are inside its underlying block,
    // 16-aligned (p and the block start are both aligned to at least 16).
    unsafe { *p.sub(HEADER).cast::<(usize, usize)>() = (layout.size(), layout.align()) };
}

// SAFETY: blocks come from the underlying allocator, offset inside them.
unsafe impl<H: LayoutHeap> CHeap for Headered<H> {
    fn alloc(&self, size: usize, align: usize) -> *mut u8 {
        let Some((layout, offset)) = underlying(size, align) else {
            return null_mut();
        };
        let base = self.lock().alloc(layout);
        if base.is_null() {
            return base;
        }
        // SAFETY: `offset` < layout.size(), so p is inside the new block.
        let p = unsafe { base.add(offset) };
        // SAFETY: p is `offset` into a block of `layout`.
        unsafe { set_header(p, layout) };
        p
    }

    unsafe fn free(&self, p: *mut u8) {
        // SAFETY: p is a live block (the caller's contract).
        let (layout, offset) = unsafe { header(p) };
        // SAFETY: the underlying block starts `offset` before p.
        unsafe { self.lock().dealloc(p.sub(offset), layout) };
    }

    unsafe fn realloc(&self, p: *mut u8, size: usize) -> *mut u8 {
        // SAFETY: p is a live block (the caller's contract).
        let (old, offset) = unsafe { header(p) };
        let Some((new, new_offset)) = underlying(size, MIN_ALIGN) else {
            return null_mut();
        };
        let mut heap = self.lock();
        // SAFETY: the underlying block starts `offset` before p.
        let base = unsafe { p.sub(offset) };
        // In place only when the offset stays (an over-aligned block moves).
        // SAFETY: `base` is a live block of `old`.
        if offset == new_offset && unsafe { heap.resize_in_place(base, old, new.size()) } {
            // SAFETY: p is still `offset` into its (resized) underlying block.
            unsafe {
                set_header(
                    p,
                    Layout::from_size_align_unchecked(new.size(), old.align()),
                )
            };
            return p;
        }
        let moved = heap.alloc(new);
        if moved.is_null() {
            return moved;
        }
        // SAFETY: new_offset < new.size(); both blocks are live and apart,
        // and the copy is no longer than either caller-visible part.
        unsafe {
            let q = moved.add(new_offset);
            ptr::copy_nonoverlapping(p, q, (old.size() - offset).min(size));
            set_header(q, new);
            heap.dealloc(base, old);
            q
        }
    }
}

/// The C functions over a [`CHeap`], for [`export_c_abi!`].
pub mod c {
    use super::*;

    extern "C" {
        fn __errno_location() -> *mut c_int;
    }

    const ENOMEM: c_int = 12;
    const EINVAL: c_int = 22;

    fn set_errno(e: c_int) {
        // SAFETY: glibc's errno location for this thread.
        unsafe { *__errno_location() = e };
    }

    fn nomem(p: *mut u8) -> *mut c_void {
        if p.is_null() {
            set_errno(ENOMEM);
        }
        p.cast()
    }

    /// `malloc(n)`: `malloc(0)` returns a unique freeable pointer.
    pub fn malloc(h: &impl CHeap, n: usize) -> *mut c_void {
        nomem(h.alloc(n.max(1), MIN_ALIGN))
    }

    /// `calloc(count, size)`: NULL + ENOMEM when the product overflows.
    pub fn calloc(h: &impl CHeap, count: usize, size: usize) -> *mut c_void {
        let Some(n) = count.checked_mul(size) else {
            set_errno(ENOMEM);
            return null_mut();
        };
        let p = h.alloc(n.max(1), MIN_ALIGN);
        if !p.is_null() {
            // SAFETY: a fresh block of at least n bytes.
            unsafe { ptr::write_bytes(p, 0, n) };
        }
        nomem(p)
    }

    /// `free(p)`; `free(NULL)` does nothing.
    ///
    /// # Safety
    ///
    /// `p` is NULL or a live block of `h`.
    pub unsafe fn free(h: &impl CHeap, p: *mut c_void) {
        if !p.is_null() {
            // SAFETY: a live block of h (the caller's contract).
            unsafe { h.free(p.cast()) };
        }
    }

    /// `realloc(p, n)`: `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)`
    /// frees `p` and returns NULL, as glibc does.
    ///
    /// # Safety
    ///
    /// `p` is NULL or a live block of `h`.
    pub unsafe fn realloc(h: &impl CHeap, p: *mut c_void, n: usize) -> *mut c_void {
        if p.is_null() {
            return malloc(h, n);
        }
        if n == 0 {
            // SAFETY: a live block of h (the caller's contract).
            unsafe { h.free(p.cast()) };
            return null_mut();
        }
        // SAFETY: a live block of h (the caller's contract).
        nomem(unsafe { h.realloc(p.cast(), n) })
    }

    /// `aligned_alloc(align, n)`: NULL + EINVAL unless `align` is a power of two.
    pub fn aligned_alloc(h: &impl CHeap, align: usize, n: usize) -> *mut c_void {
        if !align.is_power_of_two() {
            set_errno(EINVAL);
            return null_mut();
        }
        nomem(h.alloc(n.max(1), align.max(MIN_ALIGN)))
    }

    /// `posix_memalign(out, align, n)`: EINVAL unless `align` is a power of
    /// two multiple of `sizeof(void *)`, ENOMEM when out of memory.
    ///
    /// # Safety
    ///
    /// `out` is valid for a pointer write.
    pub unsafe fn posix_memalign(
        h: &impl CHeap,
        out: *mut *mut c_void,
        align: usize,
        n: usize,
    ) -> c_int {
        if !align.is_power_of_two() || !align.is_multiple_of(size_of::<usize>()) {
            return EINVAL;
        }
        let p = h.alloc(n.max(1), align.max(MIN_ALIGN));
        if p.is_null() {
            return ENOMEM;
        }
        // SAFETY: the caller's out-pointer.
        unsafe { *out = p.cast() };
        0
    }
}

/// Exports `malloc`, `free`, `calloc`, `realloc`, `aligned_alloc` and
/// `posix_memalign` over the [`CHeap`] static `$heap`.
#[macro_export]
macro_rules! export_c_abi {
    ($heap:expr) => {
        /// C `malloc`.
        #[no_mangle]
        pub extern "C" fn malloc(n: usize) -> *mut ::std::ffi::c_void {
            $crate::c::malloc(&$heap, n)
        }

        /// C `calloc`.
        #[no_mangle]
        pub extern "C" fn calloc(count: usize, size: usize) -> *mut ::std::ffi::c_void {
            $crate::c::calloc(&$heap, count, size)
        }

        /// C `free`.
        ///
        /// # Safety
        ///
        /// `p` is NULL or a live block from this library.
        #[no_mangle]
        pub unsafe extern "C" fn free(p: *mut ::std::ffi::c_void) {
            // SAFETY: the caller's contract.
            unsafe { $crate::c::free(&$heap, p) }
        }

        /// C `realloc`.
        ///
        /// # Safety
        ///
        /// `p` is NULL or a live block from this library.
        #[no_mangle]
        pub unsafe extern "C" fn realloc(
            p: *mut ::std::ffi::c_void,
            n: usize,
        ) -> *mut ::std::ffi::c_void {
            // SAFETY: the caller's contract.
            unsafe { $crate::c::realloc(&$heap, p, n) }
        }

        /// C11 `aligned_alloc`.
        #[no_mangle]
        pub extern "C" fn aligned_alloc(align: usize, n: usize) -> *mut ::std::ffi::c_void {
            $crate::c::aligned_alloc(&$heap, align, n)
        }

        /// POSIX `posix_memalign`.
        ///
        /// # Safety
        ///
        /// `out` is valid for a pointer write.
        #[no_mangle]
        pub unsafe extern "C" fn posix_memalign(
            out: *mut *mut ::std::ffi::c_void,
            align: usize,
            n: usize,
        ) -> ::std::ffi::c_int {
            // SAFETY: the caller's contract.
            unsafe { $crate::c::posix_memalign(&$heap, out, align, n) }
        }
    };
}

/// Anonymous memory from the kernel: `len` bytes (a multiple of the page
/// size), at `hint` exactly when `fixed` (failing rather than replacing a
/// mapping), or NULL.
pub fn map(hint: *mut u8, len: usize, fixed: bool) -> *mut u8 {
    extern "C" {
        fn mmap(
            addr: *mut c_void,
            len: usize,
            prot: c_int,
            flags: c_int,
            fd: c_int,
            off: i64,
        ) -> *mut c_void;
    }
    const PROT_RW: c_int = 0x1 | 0x2;
    const MAP_PRIVATE_ANON: c_int = 0x02 | 0x20;
    const MAP_FIXED_NOREPLACE: c_int = 0x10_0000;
    let flags = MAP_PRIVATE_ANON | if fixed { MAP_FIXED_NOREPLACE } else { 0 };
    // SAFETY: a new private anonymous mapping; NOREPLACE never unmaps anything.
    let p: *mut u8 = unsafe { mmap(hint.cast(), len, PROT_RW, flags, -1, 0) }.cast();
    if p as isize == -1 {
        return null_mut();
    }
    if fixed && p != hint {
        // A kernel older than Linux 4.17 took NOREPLACE for a hint.
        // SAFETY: the mapping just made, unused.
        unsafe { unmap(p, len) };
        return null_mut();
    }
    p
}

/// Gives back what [`map`] returned (or part of it, page-aligned).
///
/// # Safety
///
/// Nothing uses `p..p + len` any more.
pub unsafe fn unmap(p: *mut u8, len: usize) {
    extern "C" {
        fn munmap(addr: *mut c_void, len: usize) -> c_int;
    }
    // SAFETY: the caller's range, no longer used.
    unsafe { munmap(p.cast(), len) };
}

/// `n` rounded up to whole 4 KiB pages, or None on overflow.
pub fn pages(n: usize) -> Option<usize> {
    Some(n.checked_add(4095)? & !4095)
}
