//! The memory functions under their C names; the code is in `crate::mem`.

//!
//! memcpy, memmove, memset, memcmp, bcmp and bzero are naked functions
//! made of the assembly bodies in `crate::mem::entry` (see there for why).

use crate::mem;
use crate::mem::entry::{entry_asm, load_path, path_byte};
use core::ffi::{c_int, c_void};

/// The first line of each body: aligns the function to 64 bytes. rustc
/// puts every function in its own section and the function starts it, so
/// this adds no padding before the first instruction; it raises the
/// section's alignment.
macro_rules! align {
    () => {
        ".p2align 6\n"
    };
}

/// Copies `n` bytes (C11 7.24.2.1); the regions must not overlap. Returns `dest`.
///
/// # Safety
/// `src` readable and `dest` writable for `n` bytes, not overlapping.
#[cfg(not(memshim_no_std_decls))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
    entry_asm!(
        naked_asm,
        memcpy_body,
        "cpy",
        path_byte!(),
        load_path!(),
        [align!()],
        []
    )
}

/// Copies `n` bytes; the regions may overlap (C11 7.24.2.2). Returns `dest`.
///
/// # Safety
/// `src` readable and `dest` writable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut c_void, src: *const c_void, n: usize) -> *mut c_void {
    entry_asm!(
        naked_asm,
        memmove_body,
        "mov",
        path_byte!(),
        load_path!(),
        [align!()],
        []
    )
}

/// Fills `n` bytes with `(unsigned char)c` (C11 7.24.6.1). Returns `s`.
///
/// # Safety
/// `s` writable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn memset(s: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    entry_asm!(
        naked_asm,
        memset_body,
        "set",
        path_byte!(),
        load_path!(),
        [align!()],
        []
    )
}

/// Compares `n` bytes as `unsigned char` (C11 7.24.4.1): the sign of the
/// first difference, or 0.
///
/// # Safety
/// Both readable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn memcmp(s1: *const c_void, s2: *const c_void, n: usize) -> c_int {
    entry_asm!(
        naked_asm,
        memcmp_body,
        "cmp",
        path_byte!(),
        load_path!(),
        [align!()],
        []
    )
}

/// Zero if the `n` bytes are equal, non-zero otherwise (POSIX legacy `bcmp`;
/// compilers emit calls to it for equality-only memcmp).
///
/// # Safety
/// Both readable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn bcmp(s1: *const c_void, s2: *const c_void, n: usize) -> c_int {
    entry_asm!(
        naked_asm,
        bcmp_body,
        "bcm",
        path_byte!(),
        load_path!(),
        [align!()],
        []
    )
}

/// Sets `n` bytes to zero (POSIX legacy `bzero`).
///
/// # Safety
/// `s` writable for `n` bytes.
#[cfg(not(memshim_no_std_decls))]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn bzero(s: *mut c_void, n: usize) {
    // memset's body after `c = 0`: a copy rather than a jump, so that no
    // memory function reaches another (see `make test-mem-calls`).
    entry_asm!(
        naked_asm,
        memset_body,
        "bzr",
        path_byte!(),
        load_path!(),
        [align!(), "    mov rdx, rsi\n", "    xor esi, esi\n"],
        []
    )
}

/// Turns on the vector path of memcpy, memmove, memset, memcmp, bcmp and
/// bzero (calls of 33 bytes or more): AVX-512 where the CPU has it and the
/// saved state includes it, otherwise AVX2. Returns 1 when a vector path
/// is on, 0 when the CPU lacks AVX2 or the OS/kernel has not enabled its
/// state (then nothing changes). Safe at any time, from any thread; calls
/// already running finish on the path they started on.
///
/// The host (Linux) build turns the vector path on by itself, on the
/// first call of 33 bytes or more: a program never needs this call there. The
/// freestanding build starts with general-purpose registers only and
/// never touches a vector register until this call. A kernel calls it
/// only once all of these hold, on every CPU that runs memshim:
/// - CR4.OSFXSR and CR4.OSXSAVE are set, and XCR0 enables SSE and AVX
///   state (bits 1 and 2; add bits 5-7 for AVX-512, else memshim uses
///   AVX2); CR0.EM is clear;
/// - CR0.TS is clear whenever a memory function can run (or the #NM
///   handler restores the state when it traps in ring 0);
/// - every kernel entry that can run a memory function — interrupt,
///   exception, NMI, system call — saves the interrupted context's
///   extended state (XSAVE with the XCR0 components) before it and
///   restores it after, nested entries included, and a context switch
///   between kernel threads saves and restores it too: the vector path
///   overwrites `zmm16`-`zmm24`, `k1` and `k2` (AVX-512) or `ymm0`-`ymm9`
///   (AVX2) without saving them, as the System V ABI allows.
#[no_mangle]
pub extern "C" fn memshim_enable_simd() -> c_int {
    c_int::from(mem::set_simd(mem::Simd::Avx512) != mem::Simd::Off)
}

/// The vector width in bytes that memcpy, memmove, memset, memcmp, bcmp
/// and bzero use from 33 bytes: 64 (AVX-512), 32 (AVX2) or 0
/// (general-purpose registers only). Reads the CPU first if no call has
/// yet; the host build's answer is then its automatic choice.
#[no_mangle]
pub extern "C" fn memshim_simd_width() -> c_int {
    mem::active_simd().width() as c_int
}
