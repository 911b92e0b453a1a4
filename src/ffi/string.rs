//! The memory functions under their C names; the code is in `crate::mem`.

use crate::mem;
use core::ffi::{c_int, c_void};

/// Copies `n` bytes (C11 7.24.2.1); the regions must not overlap. Returns `dest`.
///
/// # Safety
/// `src` readable and `dest` writable for `n` bytes, not overlapping.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { mem::copy_forward(dest.cast(), src.cast(), n).cast() }
}

/// Copies `n` bytes; the regions may overlap (C11 7.24.2.2). Returns `dest`.
///
/// # Safety
/// `src` readable and `dest` writable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { mem::copy(dest.cast(), src.cast(), n).cast() }
}

/// Fills `n` bytes with `(unsigned char)c` (C11 7.24.6.1). Returns `s`.
///
/// # Safety
/// `s` writable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn memset(s: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { mem::set(s.cast(), c as u8, n).cast() }
}

/// Compares `n` bytes as `unsigned char` (C11 7.24.4.1): the sign of the
/// first difference, or 0.
///
/// # Safety
/// Both readable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn memcmp(s1: *const c_void, s2: *const c_void, n: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { mem::compare(s1.cast(), s2.cast(), n) }
}

/// Zero if the `n` bytes are equal, non-zero otherwise (POSIX legacy `bcmp`;
/// compilers emit calls to it for equality-only memcmp).
///
/// # Safety
/// Both readable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn bcmp(s1: *const c_void, s2: *const c_void, n: usize) -> c_int {
    // SAFETY: forwarded contract.
    c_int::from(unsafe { !mem::equal(s1.cast(), s2.cast(), n) })
}

/// Sets `n` bytes to zero (POSIX legacy `bzero`).
///
/// # Safety
/// `s` writable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn bzero(s: *mut c_void, n: usize) {
    // SAFETY: forwarded contract.
    unsafe { mem::set(s.cast(), 0, n) };
}

/// Turns on the opt-in AVX2 path of memcpy, memmove, memset, memcmp and
/// bcmp (host build only), used for calls above 64 bytes. Returns 1 when
/// the path is on, 0 when the CPU or OS lacks AVX2 (the default
/// general-purpose-register path stays). Safe to call at any time, from any
/// thread; the default in every build is the register path, which never
/// touches SSE/AVX state.
#[cfg(target_os = "linux")]
#[no_mangle]
pub extern "C" fn memshim_enable_simd() -> c_int {
    c_int::from(mem::simd::set_enabled(true))
}
