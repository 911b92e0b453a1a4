//! memcpy, memmove, memset, memcmp for kernels: general-purpose registers
//! and `rep movs/stos` only (no SSE/AVX). Simple versions; the memory
//! functions issue replaces them with tuned ones.
//!
//! These are Rust functions; `ffi` exports them under the C names.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dst` (non-overlapping).
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes; the ranges do not overlap.
#[inline]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: per the contract; rep movsb copies exactly n bytes forward.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags))
    };
}

/// Copies `n` bytes from `src` to `dst`; the ranges may overlap.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: dst is below src or past its end: a forward copy is safe.
        unsafe { copy_forward(dst, src, n) };
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: i < n, inside both ranges; copying backward handles overlap.
            unsafe { *dst.add(i) = *src.add(i) };
        }
    }
}

/// Fills `n` bytes at `dst` with `c`.
///
/// # Safety
/// `dst` writable for `n` bytes.
#[inline]
pub unsafe fn set(dst: *mut u8, c: u8, n: usize) {
    // SAFETY: per the contract; rep stosb writes exactly n bytes.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c,
             options(nostack, preserves_flags))
    };
}

/// Compares `n` bytes as unsigned chars: <0, 0 or >0.
///
/// # Safety
/// Both readable for `n` bytes.
#[inline]
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}
