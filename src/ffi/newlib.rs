//! newlib's reentrant entry points, which newlib's own code calls
//! (`strdup`, stdio buffers, `%f` conversions). Errors set `reent->_errno`,
//! the first `int` of newlib's `struct _reent`.

use super::stdlib;
use crate::platform::{EINVAL, ENOMEM};
use core::ffi::{c_int, c_void};

fn set_reent_errno(reent: *mut c_void, value: c_int) {
    if !reent.is_null() {
        // SAFETY: newlib passes its `struct _reent *`, whose first member is `int _errno`.
        unsafe { *reent.cast::<c_int>() = value };
    }
}

fn reent_oom(reent: *mut c_void, p: *mut c_void) -> *mut c_void {
    if p.is_null() {
        set_reent_errno(reent, ENOMEM);
    }
    p
}

/// `malloc` for newlib; errors go to `reent->_errno`.
#[cfg(not(memshim_no_newlib_decls))]
#[no_mangle]
pub extern "C" fn _malloc_r(reent: *mut c_void, size: usize) -> *mut c_void {
    reent_oom(reent, stdlib::malloc(size))
}

/// `free` for newlib.
///
/// # Safety
/// As for `free`.
#[cfg(not(memshim_no_newlib_decls))]
#[no_mangle]
pub unsafe extern "C" fn _free_r(reent: *mut c_void, ptr: *mut c_void) {
    let _ = reent;
    // SAFETY: forwarded contract.
    unsafe { stdlib::free(ptr) }
}

/// `calloc` for newlib; errors go to `reent->_errno`.
#[cfg(not(memshim_no_newlib_decls))]
#[no_mangle]
pub extern "C" fn _calloc_r(reent: *mut c_void, nmemb: usize, size: usize) -> *mut c_void {
    reent_oom(reent, stdlib::calloc(nmemb, size))
}

/// `realloc` for newlib; errors go to `reent->_errno`.
///
/// # Safety
/// As for `realloc`.
#[cfg(not(memshim_no_newlib_decls))]
#[no_mangle]
pub unsafe extern "C" fn _realloc_r(
    reent: *mut c_void,
    ptr: *mut c_void,
    size: usize,
) -> *mut c_void {
    // SAFETY: forwarded contract.
    let q = unsafe { stdlib::realloc(ptr, size) };
    if q.is_null() && size != 0 {
        set_reent_errno(reent, ENOMEM);
    }
    q
}

/// `memalign` for newlib; errors go to `reent->_errno`.
#[cfg(not(memshim_no_newlib_decls))]
#[no_mangle]
pub extern "C" fn _memalign_r(reent: *mut c_void, alignment: usize, size: usize) -> *mut c_void {
    if stdlib::memalign_alignment(alignment).is_none() {
        set_reent_errno(reent, EINVAL);
        return core::ptr::null_mut();
    }
    reent_oom(reent, stdlib::memalign(alignment, size))
}

/// `malloc_usable_size` for newlib.
///
/// # Safety
/// As for `malloc_usable_size`.
#[cfg(not(memshim_no_newlib_decls))]
#[no_mangle]
pub unsafe extern "C" fn _malloc_usable_size_r(reent: *mut c_void, ptr: *mut c_void) -> usize {
    let _ = reent;
    // SAFETY: forwarded contract.
    unsafe { stdlib::malloc_usable_size(ptr) }
}
