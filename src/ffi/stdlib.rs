//! The C standard / POSIX allocation functions.

use crate::global::{self, ReallocError};
use crate::heap::MIN_ALIGN;
use crate::platform::{set_errno, EINVAL, ENOMEM};
use core::ffi::{c_int, c_void};
use core::ptr::{self, NonNull};

const PAGE: usize = 4096;

#[inline]
fn oom<T>(p: *mut T) -> *mut T {
    if p.is_null() {
        set_errno(ENOMEM);
    }
    p
}

/// Allocates `size` bytes aligned to 16 (C11 7.22.3.4). `malloc(0)` returns a
/// unique pointer that must be freed. Returns NULL with errno ENOMEM when
/// memory is exhausted or `size` is too large.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    global::malloc(size).cast()
}

/// Frees a block from any memshim allocation function (C11 7.22.3.3).
/// `free(NULL)` does nothing; errno is never changed. A double free, or a
/// pointer memshim did not return, is reported through the panic handler
/// (default: message and abort/halt); if the handler returns, nothing is freed.
///
/// # Safety
/// `ptr` must be NULL or a live block from memshim.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: forwarded contract; the heap validates the pointer (and keeps
    // errno on every path that could change it).
    unsafe { global::free(ptr.cast()) };
}

/// Allocates `nmemb * size` zeroed bytes (C11 7.22.3.2). Overflow of the
/// product returns NULL with errno ENOMEM.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn calloc(nmemb: usize, size: usize) -> *mut c_void {
    oom(global::alloc_zeroed(nmemb, size)).cast()
}

/// Resizes a block (C11 7.22.3.5), in place when the next block is free.
/// `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and returns
/// NULL (as glibc does). On failure returns NULL with errno ENOMEM and `ptr`
/// is left intact. The contents up to the smaller size are preserved; the
/// result is 16-byte aligned (a larger alignment of `ptr` is not kept).
///
/// # Safety
/// `ptr` must be NULL or a live block from memshim.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    let Some(p) = NonNull::new(ptr.cast::<u8>()) else {
        return malloc(size);
    };
    if size == 0 {
        // SAFETY: forwarded contract.
        unsafe { free(ptr) };
        return ptr::null_mut();
    }
    // SAFETY: forwarded contract; the heap validates the pointer.
    match unsafe { global::realloc(p, size) } {
        Ok(q) => q.as_ptr().cast(),
        Err(ReallocError::NoMemory) => {
            set_errno(ENOMEM);
            ptr::null_mut()
        }
        Err(ReallocError::Fault) => {
            set_errno(EINVAL);
            ptr::null_mut()
        }
    }
}

/// `realloc(ptr, nmemb * size)` with the product checked (POSIX 2024):
/// overflow returns NULL with errno ENOMEM and leaves `ptr` intact.
///
/// # Safety
/// As for `realloc`.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, nmemb: usize, size: usize) -> *mut c_void {
    match nmemb.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(total) => unsafe { realloc(ptr, total) },
        None => {
            set_errno(ENOMEM);
            ptr::null_mut()
        }
    }
}

/// Allocates `size` bytes aligned to `alignment`, stored in `*memptr` (POSIX).
/// Returns 0, EINVAL if `alignment` is not a power of two multiple of
/// `sizeof(void *)` (or `memptr` is NULL), or ENOMEM; errno is not changed and
/// `*memptr` is untouched on failure.
///
/// # Safety
/// `memptr` must be NULL or valid for a pointer write.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(
    memptr: *mut *mut c_void,
    alignment: usize,
    size: usize,
) -> c_int {
    if memptr.is_null()
        || !alignment.is_power_of_two()
        || alignment % core::mem::size_of::<*mut c_void>() != 0
    {
        return EINVAL;
    }
    let p = global::alloc(size, alignment.max(MIN_ALIGN));
    if p.is_null() {
        return ENOMEM;
    }
    // SAFETY: memptr is non-null and valid per the contract.
    unsafe { *memptr = p.cast() };
    0
}

/// C11 `aligned_alloc`: `alignment` must be a power of two (else NULL with
/// errno EINVAL); `size` need not be a multiple of it (C17 DR 460).
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn aligned_alloc(alignment: usize, size: usize) -> *mut c_void {
    if !alignment.is_power_of_two() {
        set_errno(EINVAL);
        return ptr::null_mut();
    }
    oom(global::alloc(size, alignment.max(MIN_ALIGN))).cast()
}

/// Obsolete `memalign`, as glibc: an alignment that is not a power of two is
/// rounded up to one; one too large to round returns NULL with errno EINVAL.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn memalign(alignment: usize, size: usize) -> *mut c_void {
    let Some(align) = memalign_alignment(alignment) else {
        set_errno(EINVAL);
        return ptr::null_mut();
    };
    oom(global::alloc(size, align)).cast()
}

/// `memalign`'s alignment rule: at least 16, rounded up to a power of two;
/// `None` when too large to round (EINVAL). Shared with `_memalign_r`.
pub(super) fn memalign_alignment(alignment: usize) -> Option<usize> {
    alignment.max(MIN_ALIGN).checked_next_power_of_two()
}

/// Obsolete `valloc`: `size` bytes aligned to the page size (4096).
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    oom(global::alloc(size, PAGE)).cast()
}

/// Obsolete `pvalloc`: `size` rounded up to whole pages, page-aligned;
/// overflow of the rounding returns NULL with errno ENOMEM.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    let Some(rounded) = size.max(1).checked_add(PAGE - 1) else {
        set_errno(ENOMEM);
        return ptr::null_mut();
    };
    oom(global::alloc(rounded & !(PAGE - 1), PAGE)).cast()
}

/// Bytes usable in a block (at least what was asked); 0 for NULL.
///
/// # Safety
/// `ptr` must be NULL or a live block from memshim.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    // SAFETY: forwarded contract; the heap validates the pointer.
    unsafe { global::usable_size(ptr.cast()) }
}
