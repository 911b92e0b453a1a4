//! memset (and bzero) above 64 bytes on the register path: a 32-byte
//! register loop, `rep stosb` (or `rep stosq`) for long fills.

use super::cpu;
use super::{store, store_block, Block, Word, SET_REP_MIN};
use core::arch::asm;

/// memset above 64 bytes on the register path; returns `dst`. Reached from
/// the entry points (`entry`) with the path bits in `path`.
///
/// # Safety
/// `n > 64`; `dst` writable for `n` bytes; `path` from `cpu` (or forced
/// by a test) without a vector bit.
pub(crate) unsafe extern "C" fn set_long(dst: *mut u8, c: i32, n: usize, path: u32) -> *mut u8 {
    // Opaque to LLVM, so the stores below are not turned back into a
    // call to memset or SSE stores of a splat.
    let w = (u64::from(c as u8) * 0x0101_0101_0101_0101).through_gpr();
    // SAFETY: both: n > 64 meets each helper's size precondition.
    unsafe {
        if n < SET_REP_MIN {
            fill_loop(dst, w, n);
        } else {
            fill_large(dst, w, n, cpu::fast_strings(path as u8));
        }
    }
    dst
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
/// 8-aligned body between overlapping head and tail words.
///
/// # Safety
/// `n >= 16`; `dst` writable for `n` bytes.
unsafe fn fill_large(dst: *mut u8, w: u64, n: usize, fast: bool) {
    // SAFETY: both instructions write inside [0, n): stosb exactly n bytes;
    // stosq from skip <= 8 for (n - skip) / 8 words, and the head and tail
    // words at 0 and n - 8 (n >= 16).
    unsafe {
        if fast {
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
}
