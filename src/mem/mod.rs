//! memcpy, memmove, memset, memcmp and bcmp for kernels: general-purpose
//! registers and `rep movsb`/`rep stosb` only, so they are safe in ring 0
//! code that never saves FPU state (`x86_64-unknown-none` is soft-float).
//! The same code runs, and is tested and measured, in the host build.
//!
//! Size bands (figures for AMD Zen 5 in `/work/shared/notes/memfns.md`):
//!
//! * up to 64 bytes: two overlapping loads from each end, stored after all
//!   loads, so memcpy and memmove share one branch-light path;
//! * up to `COPY_REP_MIN` / `SET_REP_MIN`: a 32-byte register loop whose
//!   last 32 bytes are loaded before the loop and stored after it;
//! * above: `rep movsb`/`rep stosb` when CPUID reports ERMS or FSRM (checked
//!   once, see [`cpu`]), otherwise a `rep movsq`/`rep stosq` body between
//!   overlapping head and tail words;
//! * backward memmove never uses `std; rep movsb` (4 GB/s): it copies
//!   32-byte register blocks from the end, or, when the distance between
//!   the buffers is large, distance-sized blocks forward with `rep movsb`;
//! * memcmp/bcmp: 32 bytes per step as eight 8-byte loads; the order comes
//!   from the byte-swapped differing word.
//!
//! Every access goes through `load`/`store`, and every loaded value
//! through an empty asm statement that pins it to a general-purpose
//! register. LLVM can then rewrite the loops neither into calls to memcpy
//! (the crate's `#![no_builtins]` forbids that too, but only for code
//! generated in this crate, and these functions are inlined into others)
//! nor into SSE moves in the host build. `make test-mem-calls` checks the
//! finished archives for both.
//!
//! These are Rust functions; `crate::ffi::string` exports them under the C
//! names.

mod cmp;
mod copy;
pub mod cpu;
mod set;
#[cfg(target_os = "linux")]
pub mod simd;

#[cfg(test)]
mod tests;

pub use cmp::{compare, equal};
pub use copy::{copy, copy_forward};
pub use set::set;

use core::arch::asm;

/// Copies at least this many bytes with `rep movsb` (when the CPU has fast
/// strings); below it the 32-byte register loop wins (memfns.md: 767 B).
pub(crate) const COPY_REP_MIN: usize = 768;
/// Fills at least this many bytes with `rep stosb`.
pub(crate) const SET_REP_MIN: usize = 768;

/// A value that passes through a general-purpose register: the empty asm
/// statement is opaque to LLVM, so a loop built from [`load`] and [`store`]
/// can neither be recognised as a memcpy idiom (becoming a call to
/// memcpy) nor vectorised into SSE moves in the host build. It costs no
/// instruction.
trait Word: Copy {
    fn through_gpr(self) -> Self;
}

macro_rules! word {
    ($t:ty, $class:ident, $template:literal) => {
        impl Word for $t {
            #[inline(always)]
            fn through_gpr(mut self) -> Self {
                // SAFETY: an empty asm statement that only names the register.
                unsafe { asm!($template, inout($class) self, options(pure, nomem, nostack, preserves_flags)) };
                self
            }
        }
    };
}
word!(u8, reg_byte, "/* {0} */");
word!(u16, reg, "/* {0:x} */");
word!(u32, reg, "/* {0:e} */");
word!(u64, reg, "/* {0:r} */");

/// `dst`, hidden from LLVM. The out-of-line long paths return it so that
/// the entry points reach them with a jump; seeing that they return their
/// argument, LLVM would instead keep `dst` in a saved register across a
/// call, making the short paths save and restore it too.
#[inline(always)]
#[allow(clippy::pointers_in_nomem_asm_block)] // the asm touches no memory
fn returned(mut dst: *mut u8) -> *mut u8 {
    // SAFETY: an empty asm statement that only names the register.
    unsafe { asm!("/* {0} */", inout(reg) dst, options(pure, nomem, nostack, preserves_flags)) };
    dst
}

/// Reads a word at any alignment.
///
/// # Safety
/// `p` readable for `size_of::<T>()` bytes.
#[inline(always)]
unsafe fn load<T: Word>(p: *const u8) -> T {
    // SAFETY: readable per the contract; an unaligned read has no
    // alignment requirement.
    unsafe { p.cast::<T>().read_unaligned() }.through_gpr()
}

/// Writes a word at any alignment.
///
/// # Safety
/// `p` writable for `size_of::<T>()` bytes.
#[inline(always)]
unsafe fn store<T: Word>(p: *mut u8, v: T) {
    // SAFETY: writable per the contract.
    unsafe { p.cast::<T>().write_unaligned(v) }
}

/// Four words: the 32-byte unit of the register loops.
type Block = [u64; 4];

/// # Safety
/// `p` readable for 32 bytes.
#[inline(always)]
unsafe fn load_block(p: *const u8) -> Block {
    // SAFETY: the four words lie inside the 32 readable bytes.
    unsafe { [load(p), load(p.add(8)), load(p.add(16)), load(p.add(24))] }
}

/// # Safety
/// `p` writable for 32 bytes.
#[inline(always)]
unsafe fn store_block(p: *mut u8, b: Block) {
    // SAFETY: the four words lie inside the 32 writable bytes.
    unsafe {
        store(p, b[0]);
        store(p.add(8), b[1]);
        store(p.add(16), b[2]);
        store(p.add(24), b[3]);
    }
}
