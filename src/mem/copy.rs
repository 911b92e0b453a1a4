//! memcpy and memmove above 64 bytes on the register path: 32-byte
//! register loops, `rep movsb` (or `rep movsq`) for long copies.

use super::cpu::{self, SHORT_PAGE_DISTANCE_SLOW};
use super::{load, load_block, store, store_block, COPY_REP_MIN};
use core::arch::asm;

/// A forward `rep movsb` is only fast when the destination is at least
/// this far below an overlapping source.
const REP_MIN_DISTANCE: usize = 64;
/// Backward memmove copies blocks of the distance with `rep movsb` when
/// they are at least this long; shorter ones lose to the register loop.
const BACKWARD_BLOCK_MIN: usize = 1024;

/// memcpy above 64 bytes on the register path; returns `dst`. Reached
/// from the entry points (`entry`) with the path bits in `path`.
///
/// # Safety
/// `n > 64`; `src` readable and `dst` writable for `n` bytes; the ranges
/// do not overlap; `path` from `cpu` (or forced by a test) without a
/// vector bit.
pub(crate) unsafe extern "C" fn copy_forward_long(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    path: u32,
) -> *mut u8 {
    // SAFETY: both: the size is each helper's precondition; the memory
    // contract is the caller's.
    unsafe {
        if n < COPY_REP_MIN {
            disjoint_loop(dst, src, n);
            dst
        } else {
            forward_large(dst, src, n, path as u8)
        }
    }
}

/// memmove above 64 bytes on the register path; returns `dst`.
///
/// # Safety
/// `n > 64`; `src` readable and `dst` writable for `n` bytes; `path` as
/// for [`copy_forward_long`].
pub(crate) unsafe extern "C" fn move_long(
    dst: *mut u8,
    src: *const u8,
    n: usize,
    path: u32,
) -> *mut u8 {
    // One comparison decides the direction: `dst - src` (mod 2^64) is at
    // least `n` exactly when a forward copy never reads a byte it wrote.
    let ahead = (dst as usize).wrapping_sub(src as usize);
    let behind = (src as usize).wrapping_sub(dst as usize);
    let p = path as u8;
    // SAFETY: every branch: each helper's size and direction precondition
    // is the branch condition; the memory contract is the caller's.
    unsafe {
        if ahead < n {
            backward(dst, src, n, ahead, p)
        } else if n < COPY_REP_MIN || behind < REP_MIN_DISTANCE {
            forward_loop(dst, src, n);
            dst
        } else {
            forward_large(dst, src, n, p)
        }
    }
}

/// Whether `rep movsb` from `src` to `dst` would hit the short page
/// distance cliff of CPUs with [`SHORT_PAGE_DISTANCE_SLOW`]: the
/// destination 1 to 63 bytes past the source within a page.
#[inline(always)]
fn short_page_distance(p: u8, dst: *const u8, src: *const u8) -> bool {
    let d = (dst as usize).wrapping_sub(src as usize) & 4095;
    p & SHORT_PAGE_DISTANCE_SLOW != 0 && d != 0 && d < 64
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

/// Long forward copy; returns `dst`. `rep movsb` with fast strings,
/// except at a short page distance where it is slow ([`short_page_distance`]):
/// there the register loop, backward when the buffers are disjoint (its
/// loads then never follow a store to the same page offset).
///
/// # Safety
/// `n > 64`; `src` readable and `dst` writable for `n` bytes; `dst` is not
/// inside `(src - 64, src + n)`.
unsafe fn forward_large(dst: *mut u8, src: *const u8, n: usize, p: u8) -> *mut u8 {
    // SAFETY: all: forwarded contract; backward_loop only when the source
    // does not start inside the destination, forward_loop's precondition
    // is the contract's.
    unsafe {
        if !cpu::fast_strings(p) {
            rep_movsq_between(dst, src, n)
        } else if !short_page_distance(p, dst, src) {
            rep_movsb(dst, src, n)
        } else if (src as usize).wrapping_sub(dst as usize) >= n {
            backward_loop(dst, src, n)
        } else {
            forward_loop(dst, src, n)
        }
    }
    dst
}

/// Backward memmove (`dst` is `ahead` bytes above `src`, inside it);
/// returns `dst`. Never `std; rep movsb` (4 GB/s here).
///
/// # Safety
/// `n > 64`, `ahead < n`, `dst == src + ahead`; `src` readable and `dst`
/// writable for `n` bytes.
unsafe fn backward(dst: *mut u8, src: *const u8, n: usize, ahead: usize, p: u8) -> *mut u8 {
    // SAFETY: both: forwarded contract; 0 < ahead < n for the blocks.
    unsafe {
        if ahead >= BACKWARD_BLOCK_MIN && cpu::fast_strings(p) && !short_page_distance(p, dst, src)
        {
            backward_blocks(dst, src, n, ahead)
        } else if ahead != 0 {
            backward_loop(dst, src, n)
        }
    }
    dst
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
