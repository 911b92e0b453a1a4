//! memset (and bzero).

use super::{cpu, returned, store, store_block, Block, Word, SET_REP_MIN};
use core::arch::asm;

/// Fills `n` bytes at `dst` with `c` (memset; bzero with `c = 0`); returns
/// `dst`.
///
/// # Safety
/// `dst` writable for `n` bytes.
#[inline]
pub unsafe fn set(dst: *mut u8, c: u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { set_with(dst, c, n, cpu::fast_strings) }
}

/// [`set`] with the fast-strings decision supplied (tests force both).
/// The long path is out of line and returns `dst`, so it is reached with
/// a jump and the short paths save no registers.
///
/// # Safety
/// As [`set`].
#[inline(always)]
pub(super) unsafe fn set_with<F: Fn() -> bool>(dst: *mut u8, c: u8, n: usize, fast: F) -> *mut u8 {
    // Opaque to LLVM, so the stores below are not turned back into a
    // call to memset or SSE stores of a splat.
    let w = (u64::from(c) * 0x0101_0101_0101_0101).through_gpr();
    // SAFETY: every branch: the stores start at 0 and at n - width, both
    // inside [0, n) because width <= n in that branch.
    unsafe {
        if n <= 16 {
            if n >= 8 {
                store(dst, w);
                store(dst.add(n - 8), w);
            } else if n >= 4 {
                store(dst, w as u32);
                store(dst.add(n - 4), w as u32);
            } else if n >= 2 {
                store(dst, w as u16);
                store(dst.add(n - 2), w as u16);
            } else if n == 1 {
                store(dst, c);
            }
        } else if n <= 32 {
            store(dst, w);
            store(dst.add(8), w);
            store(dst.add(n - 16), w);
            store(dst.add(n - 8), w);
        } else if n <= 64 {
            store_block(dst, [w; 4]);
            store_block(dst.add(n - 32), [w; 4]);
        } else {
            return fill_long(dst, w, n, fast);
        }
    }
    dst
}

/// Fills `n > 64` bytes; returns `dst`.
///
/// # Safety
/// `n > 64`; `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn fill_long<F: Fn() -> bool>(dst: *mut u8, w: u64, n: usize, fast: F) -> *mut u8 {
    // SAFETY: every branch: n > 64 meets each helper's size precondition.
    unsafe {
        #[cfg(target_os = "linux")]
        if super::simd::enabled() {
            return super::simd::set(dst, w as u8, n);
        }
        if n < SET_REP_MIN {
            fill_loop(dst, w, n);
            dst
        } else {
            fill_large(dst, w, n, fast)
        }
    }
}

/// 32-byte blocks, then one block ending exactly at `n`.
///
/// # Safety
/// `n > 32`; `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn fill_loop(dst: *mut u8, w: u64, n: usize) {
    let b: Block = [w; 4];
    let mut i = 0;
    while i < n - 32 {
        // SAFETY: i + 32 < n.
        unsafe { store_block(dst.add(i), b) };
        i += 32;
    }
    // SAFETY: n > 32.
    unsafe { store_block(dst.add(n - 32), b) };
}

/// Long fill: `rep stosb` with fast strings; otherwise `rep stosq` to an
/// 8-aligned body between overlapping head and tail words. Returns `dst`.
///
/// # Safety
/// `n >= 16`; `dst` writable for `n` bytes.
#[inline(never)]
unsafe fn fill_large<F: Fn() -> bool>(dst: *mut u8, w: u64, n: usize, fast: F) -> *mut u8 {
    // SAFETY: both instructions write inside [0, n): stosb exactly n bytes;
    // stosq from skip <= 8 for (n - skip) / 8 words, and the head and tail
    // words at 0 and n - 8 (n >= 16).
    unsafe {
        if fast() {
            asm!("rep stosb",
                 inout("rcx") n => _, inout("rdi") dst => _, in("al") w as u8,
                 options(nostack, preserves_flags));
        } else {
            let skip = 8 - (dst as usize & 7);
            asm!("rep stosq",
                 inout("rcx") (n - skip) / 8 => _, inout("rdi") dst.add(skip) => _, in("rax") w,
                 options(nostack, preserves_flags));
            store(dst, w);
            store(dst.add(n - 8), w);
        }
    }
    returned(dst)
}
