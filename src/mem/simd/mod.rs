//! The vector path of the memory functions for calls the entry points
//! (`super::entry`) do not finish themselves: AVX-512 (64-byte vectors)
//! or AVX2 (32-byte vectors), whichever [`best_simd`](super::cpu::best_simd)
//! allows.
//!
//! Written in assembly (one `global_asm!` per width), so that both builds
//! run the same instructions: `x86_64-unknown-none` is a soft-float
//! target, where LLVM lowers vector intrinsics to general-purpose code
//! even inside `#[target_feature(enable = "avx2")]` functions. The
//! functions follow the System V ABI (every vector and mask register they
//! touch is caller-saved) and use no stack and no data.
//!
//! Shapes, with `V` the vector width:
//!
//! * up to 8 V: both ends loaded before any store, so backward memmove
//!   shares the code;
//! * longer: the first and last 64 bytes are loaded first and stored last;
//!   in between every store goes to a 64-byte aligned block, four vectors
//!   per step (stores never split a cache line; when source and
//!   destination are not equally aligned the loads split instead, which
//!   costs less);
//! * memcpy with equally aligned buffers (`(dst - src) mod 64 == 0`) uses
//!   `rep movsb` from [`COPY_REP_MIN`], where it matches or beats the
//!   loop; any other distance keeps the loop, which is where `rep movsb`
//!   is slow (1.5x at 4-16 KiB on the Intel core measured; 25x on AMD Zen
//!   when `(dst - src) mod 4096` is 1..=63);
//! * memset uses `rep stosb` from [`SET_REP_MIN`];
//! * backward memmove: the same loop from the end;
//! * memcmp/bcmp: 4 V per step from where the first buffer is aligned,
//!   differences merged with XOR and OR into one test; the first
//!   differing byte is then found block by block.

mod avx2;
mod avx512;

/// memcpy with equally aligned buffers uses `rep movsb` from this size:
/// the AVX-512 loop matched it at 64 KiB and lost 4 % at 256 KiB and 7 %
/// at 1 MiB on the Intel core measured.
pub(crate) const COPY_REP_MIN: usize = 1 << 17;
/// memset uses `rep stosb` from this size (the loop and `rep stosb` were
/// level from 16 KiB to 256 KiB).
pub(crate) const SET_REP_MIN: usize = 1 << 17;

// The entry points (`entry`) jump to these; they are never called from
// Rust.
extern "C" {
    pub(crate) fn memshim_simd_avx512_copy_forward(
        dst: *mut u8,
        src: *const u8,
        n: usize,
    ) -> *mut u8;
    pub(crate) fn memshim_simd_avx512_move(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
    pub(crate) fn memshim_simd_avx512_set(dst: *mut u8, c: u32, n: usize) -> *mut u8;
    pub(crate) fn memshim_simd_avx512_compare(a: *const u8, b: *const u8, n: usize) -> i32;
    pub(crate) fn memshim_simd_avx2_copy_forward(dst: *mut u8, src: *const u8, n: usize)
        -> *mut u8;
    pub(crate) fn memshim_simd_avx2_copy_backward(
        dst: *mut u8,
        src: *const u8,
        n: usize,
    ) -> *mut u8;
    pub(crate) fn memshim_simd_avx2_set(dst: *mut u8, c: u32, n: usize) -> *mut u8;
    pub(crate) fn memshim_simd_avx2_compare(a: *const u8, b: *const u8, n: usize) -> i32;
}
