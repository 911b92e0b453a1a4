//! memcpy, memmove, memset, memcmp, bcmp and bzero.
//!
//! Three paths, chosen per call by one byte (`cpu`): general-purpose
//! registers and `rep movsb`/`rep stosb` only (the freestanding build's
//! default: safe in ring 0 code that never saves vector state), AVX2, and
//! AVX-512. The host build switches to the widest vector path the CPU and
//! OS allow on its own; the freestanding build only when the kernel asks
//! (`cpu::set_simd`, C: `memshim_enable_simd`).
//!
//! * `entry`: the entry points, in assembly: sizes below 64 bytes (all
//!   loads before any store, so memmove needs no direction test), up to
//!   256 bytes of the AVX-512 path inline, and the dispatch;
//! * `simd`: the AVX2 and AVX-512 functions for longer calls;
//! * `copy`, `set`, `cmp`: the register path above 64 bytes, in Rust:
//!   32-byte register loops up to `COPY_REP_MIN` / `SET_REP_MIN`, then
//!   `rep movsb`/`rep stosb` when CPUID reports ERMS or FSRM (otherwise a
//!   `rep movsq`/`rep stosq` body between overlapping head and tail words).
//!   Backward memmove never uses `std; rep movsb` (4 GB/s): 32-byte blocks
//!   from the end, or distance-sized blocks copied forward with `rep movsb`
//!   when the buffers are far apart. On AMD, where `rep movsb` falls off a
//!   cliff when `(dst - src) mod 4096` is 1..=63, those distances take the
//!   register loop instead;
//! * `cpu`: CPUID and XGETBV, read once, and the path byte.
//!
//! In the Rust code every access goes through `load`/`store`, and
//! every loaded value through an empty asm statement that pins it to a
//! general-purpose register. LLVM can then rewrite the loops neither into
//! calls to memcpy (the crate's `#![no_builtins]` forbids that too, but
//! only for code generated in this crate) nor into SSE moves.
//! `make test-mem-calls` checks the finished archives: no memory function
//! reaches another, and vector registers appear only behind a test of the
//! path byte's vector bits.

pub(crate) mod cmp;
pub(crate) mod copy;
pub mod cpu;
pub(crate) mod entry;
pub(crate) mod set;
pub(crate) mod simd;

#[cfg(test)]
mod tests;

pub use cpu::{active_simd, best_simd, set_simd, Simd};

use core::ffi::c_int;

/// The entry points as C functions, for callers that want them by address
/// (a benchmark calling through a function pointer, as C code does): the
/// exported symbols with the `c-api` feature, otherwise hidden copies of
/// the same code. The functions below call them.
pub mod c_abi {
    #[cfg(feature = "c-api")]
    pub use crate::ffi::string::{bcmp, memcmp, memcpy, memmove, memset};
    #[cfg(not(feature = "c-api"))]
    pub use hidden::{
        memshim_mem_bcmp as bcmp, memshim_mem_memcmp as memcmp, memshim_mem_memcpy as memcpy,
        memshim_mem_memmove as memmove, memshim_mem_memset as memset,
    };

    #[cfg(not(feature = "c-api"))]
    mod hidden {
        use core::ffi::{c_int, c_void};
        // Named as their symbols (defined in `entry`), which cbindgen.toml
        // keeps out of the header.
        extern "C" {
            /// memcpy (see `crate::ffi::string`).
            pub fn memshim_mem_memcpy(
                dest: *mut c_void,
                src: *const c_void,
                n: usize,
            ) -> *mut c_void;
            /// memmove.
            pub fn memshim_mem_memmove(
                dest: *mut c_void,
                src: *const c_void,
                n: usize,
            ) -> *mut c_void;
            /// memset.
            pub fn memshim_mem_memset(s: *mut c_void, c: c_int, n: usize) -> *mut c_void;
            /// memcmp.
            pub fn memshim_mem_memcmp(s1: *const c_void, s2: *const c_void, n: usize) -> c_int;
            /// bcmp.
            pub fn memshim_mem_bcmp(s1: *const c_void, s2: *const c_void, n: usize) -> c_int;
        }
    }
}
use c_abi::{bcmp, memcmp, memcpy, memmove, memset};

/// Copies `n` bytes from `src` to `dst` (memcpy); returns `dst`.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes; the ranges do not
/// overlap (C11 7.24.2.1; use [`copy`] when they may).
#[inline(always)]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { memcpy(dst.cast(), src.cast(), n).cast() }
}

/// Copies `n` bytes from `src` to `dst`; the ranges may overlap (memmove).
/// Returns `dst`.
///
/// # Safety
/// `src` readable and `dst` writable for `n` bytes.
#[inline(always)]
pub unsafe fn copy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { memmove(dst.cast(), src.cast(), n).cast() }
}

/// Fills `n` bytes at `dst` with `c` (memset); returns `dst`.
///
/// # Safety
/// `dst` writable for `n` bytes.
#[inline(always)]
pub unsafe fn set(dst: *mut u8, c: u8, n: usize) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { memset(dst.cast(), c_int::from(c), n).cast() }
}

/// Compares `n` bytes as unsigned chars (memcmp): negative, zero or
/// positive as the first differing byte of `a` is below, absent or above
/// that of `b`.
///
/// # Safety
/// `a` and `b` readable for `n` bytes.
#[inline(always)]
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { memcmp(a.cast(), b.cast(), n) }
}

/// Whether `n` bytes are equal (bcmp is `!equal`).
///
/// # Safety
/// `a` and `b` readable for `n` bytes.
#[inline(always)]
pub unsafe fn equal(a: *const u8, b: *const u8, n: usize) -> bool {
    // SAFETY: forwarded contract.
    unsafe { bcmp(a.cast(), b.cast(), n) == 0 }
}

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
