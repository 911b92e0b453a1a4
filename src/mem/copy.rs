//! memcpy and memmove.

use super::{cpu, load, load_block, returned, store, store_block, COPY_REP_MIN};
use core::arch::asm;

/// A forward `rep movsb` is only fast when the destination is at least
/// this far below an overlapping source.
const REP_MIN_DISTANCE: usize = 64;
/// Backward memmove copies blocks of the distance with `rep movsb` when
/// they are at least this long; shorter ones lose to the register loop.
const BACKWARD_BLOCK_MIN: usize = 1024;

/// Copies `n` bytes from `src` to `dst` (memcpy); returns `dst`.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes; the ranges do not
/// overlap (C11 7.24.2.1; use [`copy`] when they may).
#[inline]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { forward_with(dst, src, n, cpu::fast_strings) }
}

/// Copies `n` bytes from `src` to `dst`; the ranges may overlap (memmove).
/// Returns `dst`.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { move_with(dst, src, n, cpu::fast_strings) }
}

// The long paths are out of line and return `dst`, so the short paths
// reach them with a jump and need no saved registers of their own. The
// fast-strings test is a parameter so that tests can force both answers.

/// [`copy_forward`] with the fast-strings decision supplied.
///
/// # Safety
/// As [`copy_forward`].
#[inline(always)]
pub(super) unsafe fn forward_with<F: Fn() -> bool>(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    fast: F,
) -> *mut u8 {
    // SAFETY: all three: the size bands are each helper's precondition;
    // the memory contract is the caller's.
    unsafe {
        if n > 32 && n <= 64 {
            // Disjoint: one block at a time, so no register is held over.
            store_block(dst, load_block(src));
            store_block(dst.add(n - 32), load_block(src.add(n - 32)));
            return dst;
        }
        if n <= 64 {
            small(dst, src, n);
            return dst;
        }
        #[cfg(target_os = "linux")]
        if super::simd::enabled() {
            return super::simd::copy_forward(dst, src, n);
        }
        if n < COPY_REP_MIN {
            disjoint_loop(dst, src, n);
            dst
        } else {
            forward_large(dst, src, n, fast)
        }
    }
}

/// [`copy`] with the fast-strings decision supplied.
///
/// # Safety
/// As [`copy`].
#[inline(always)]
pub(super) unsafe fn move_with<F: Fn() -> bool>(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    fast: F,
) -> *mut u8 {
    // One comparison decides the direction: `dst - src` (mod 2^64) is at
    // least `n` exactly when a forward copy never reads a byte it wrote.
    let ahead = (dst as usize).wrapping_sub(src as usize);
    let behind = (src as usize).wrapping_sub(dst as usize);
    // SAFETY: every branch: each helper's size and direction precondition
    // is the branch condition; the memory contract is the caller's.
    unsafe {
        if n <= 64 {
            // `small` loads everything before storing: any overlap is fine.
            small(dst, src, n);
            return dst;
        }
        #[cfg(target_os = "linux")]
        if super::simd::enabled() {
            return if ahead < n {
                super::simd::copy_backward(dst, src, n)
            } else {
                super::simd::copy_forward(dst, src, n)
            };
        }
        if ahead < n {
            backward(dst, src, n, ahead, fast)
        } else if n < COPY_REP_MIN || behind < REP_MIN_DISTANCE {
            forward_loop(dst, src, n);
            dst
        } else {
            forward_large(dst, src, n, fast)
        }
    }
}

/// Copies `n <= 64` bytes: every load happens before the first store.
///
/// # Safety
/// `n <= 64`; `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
unsafe fn small(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: every branch: the two accesses start at 0 and at n - width,
    // both inside [0, n) because width <= n in that branch.
    unsafe {
        if n <= 16 {
            if n >= 8 {
                let (a, b): (u64, u64) = (load(src), load(src.add(n - 8)));
                store(dst, a);
                store(dst.add(n - 8), b);
            } else if n >= 4 {
                let (a, b): (u32, u32) = (load(src), load(src.add(n - 4)));
                store(dst, a);
                store(dst.add(n - 4), b);
            } else if n >= 2 {
                let (a, b): (u16, u16) = (load(src), load(src.add(n - 2)));
                store(dst, a);
                store(dst.add(n - 2), b);
            } else if n == 1 {
                store(dst, load::<u8>(src));
            }
        } else if n <= 32 {
            let (a0, a1): (u64, u64) = (load(src), load(src.add(8)));
            let (b0, b1): (u64, u64) = (load(src.add(n - 16)), load(src.add(n - 8)));
            store(dst, a0);
            store(dst.add(8), a1);
            store(dst.add(n - 16), b0);
            store(dst.add(n - 8), b1);
        } else {
            let (a, b) = (load_block(src), load_block(src.add(n - 32)));
            store_block(dst, a);
            store_block(dst.add(n - 32), b);
        }
    }
}

/// 32-byte blocks from the start, then the 32 bytes that end at `n`. With
/// disjoint buffers nothing has to be held across the loop, so memcpy needs
/// no callee-saved registers (whose saving would cost every short copy).
///
/// # Safety
/// `n > 32`; `src` readable and `dst` writable for `n` bytes; the ranges do
/// not overlap.
#[inline(always)]
unsafe fn disjoint_loop(dst: *mut u8, src: *const u8, n: usize) {
    let mut i = 0;
    while i < n - 32 {
        // SAFETY: i + 32 < n.
        unsafe { store_block(dst.add(i), load_block(src.add(i))) };
        i += 32;
    }
    // SAFETY: n > 32, so [n - 32, n) is in range.
    unsafe { store_block(dst.add(n - 32), load_block(src.add(n - 32))) };
}

/// 32-byte blocks from the start; the last 32 bytes are loaded first and
/// stored last, so the final partial block needs no byte loop and a source
/// just above an overlapping destination is still read intact.
///
/// # Safety
/// `n > 32`; `src` readable and `dst` writable for `n` bytes; `dst` is not
/// inside `(src, src + n)`.
#[inline(always)]
unsafe fn forward_loop(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: n > 32, so [n - 32, n) is in range.
    let tail = unsafe { load_block(src.add(n - 32)) };
    let mut i = 0;
    while i < n - 32 {
        // SAFETY: i + 32 < n.
        unsafe { store_block(dst.add(i), load_block(src.add(i))) };
        i += 32;
    }
    // SAFETY: as for the load.
    unsafe { store_block(dst.add(n - 32), tail) };
}

/// 32-byte blocks from the end; the first 32 bytes are loaded first and
/// stored last.
///
/// # Safety
/// `n > 32`; `src` readable and `dst` writable for `n` bytes; `dst` is not
/// below `src` when they overlap.
#[inline(always)]
unsafe fn backward_loop(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: n > 32.
    let head = unsafe { load_block(src) };
    let mut end = n;
    while end > 32 {
        end -= 32;
        // SAFETY: 0 < end and end + 32 <= n. The stores so far went above
        // `dst + end + 32` >= `src + end + 32`, so this source block is intact.
        unsafe { store_block(dst.add(end), load_block(src.add(end))) };
    }
    // SAFETY: n > 32.
    unsafe { store_block(dst, head) };
}

/// Long forward copy; returns `dst`.
///
/// # Safety
/// `n >= 16`; `src` readable and `dst` writable for `n` bytes; `dst` is not
/// inside `(src - 64, src + n)`.
#[inline(never)]
unsafe fn forward_large<F: Fn() -> bool>(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    fast: F,
) -> *mut u8 {
    // SAFETY: both: forwarded contract.
    unsafe {
        if fast() {
            rep_movsb(dst, src, n)
        } else {
            rep_movsq_between(dst, src, n)
        }
    }
    returned(dst)
}

/// Backward memmove (`dst` is `ahead` bytes above `src`, inside it);
/// returns `dst`. Never `std; rep movsb` (4 GB/s here).
///
/// # Safety
/// `n > 64`, `ahead < n`, `dst == src + ahead`; `src` readable and `dst`
/// writable for `n` bytes.
#[inline(never)]
unsafe fn backward<F: Fn() -> bool>(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    ahead: usize,
    fast: F,
) -> *mut u8 {
    // SAFETY: both: forwarded contract; 0 < ahead < n for the blocks.
    unsafe {
        if ahead >= BACKWARD_BLOCK_MIN && fast() {
            backward_blocks(dst, src, n, ahead)
        } else if ahead != 0 {
            backward_loop(dst, src, n)
        }
    }
    returned(dst)
}

/// Without fast strings `rep movsb` moves a byte per step, but `rep movsq`
/// to an aligned destination is fast on every x86_64: an 8-aligned body,
/// with overlapping head and tail words loaded up front.
///
/// # Safety
/// As [`forward_large`].
unsafe fn rep_movsq_between(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: n >= 16, so both words are in range, and so is the body:
    // skip <= 8 and skip + 8 * words <= n.
    unsafe {
        let (head, tail): (u64, u64) = (load(src), load(src.add(n - 8)));
        let skip = 8 - (dst as usize & 7);
        let words = (n - skip) / 8;
        asm!("rep movsq",
             inout("rcx") words => _, inout("rdi") dst.add(skip) => _, inout("rsi") src.add(skip) => _,
             options(nostack, preserves_flags));
        store(dst, head);
        store(dst.add(n - 8), tail);
    }
}

/// Backward memmove as forward `rep movsb` copies of `ahead`-byte blocks
/// from the end: a block never overlaps its own destination, and it is
/// read before the next block's copy overwrites it.
///
/// # Safety
/// `0 < ahead < n`, `dst == src + ahead`; `src` readable and `dst` writable
/// for `n` bytes.
unsafe fn backward_blocks(dst: *mut u8, src: *const u8, n: usize, ahead: usize) {
    let mut end = n;
    while end > ahead {
        end -= ahead;
        // SAFETY: end + ahead <= n; source [end, end + ahead) and
        // destination [end + ahead, end + 2 * ahead) are disjoint.
        unsafe { rep_movsb(dst.add(end), src.add(end), ahead) };
    }
    // SAFETY: end <= ahead: [0, end) and [ahead, ahead + end) are disjoint.
    unsafe { rep_movsb(dst, src, end) };
}

/// # Safety
/// `src` readable and `dst` writable for `n` bytes; `dst` not inside
/// `(src, src + n)`.
#[inline(always)]
unsafe fn rep_movsb(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: per the contract; the ABI guarantees DF = 0, so this copies
    // forward exactly n bytes.
    unsafe {
        asm!("rep movsb",
             inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
             options(nostack, preserves_flags))
    };
}
