//! The opt-in AVX2 path of the memory functions, for programs that can
//! afford vector registers (host build only: a kernel would have to save
//! FPU state around every call). Off until [`set_enabled`] (C:
//! `memshim_enable_simd()`) turns it on; it takes over every call above
//! 64 bytes, the short paths being as fast as glibc's already.
//!
//! Same shapes as the register path with 32-byte vectors: both ends loaded
//! before any store up to 128 bytes, a 128-byte loop with the far end
//! loaded first and stored last, `rep movsb`/`rep stosb` from
//! `REP_MIN` (as glibc does) when the CPU has fast strings.

use super::cpu;
use core::arch::asm;
use core::arch::x86_64::{
    __cpuid_count, __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_loadu_si256,
    _mm256_movemask_epi8, _mm256_set1_epi8, _mm256_storeu_si256,
};
use core::sync::atomic::{AtomicBool, Ordering};

/// From this size copies and fills use `rep movsb`/`rep stosb` (glibc's
/// threshold for 32-byte vectors).
const REP_MIN: usize = 4096;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether the AVX2 path is on.
#[inline(always)]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns the AVX2 path on (when [`usable`]) or off; returns whether it is
/// on. Calls already running finish on the path they started on.
pub fn set_enabled(on: bool) -> bool {
    let on = on && usable();
    ENABLED.store(on, Ordering::Relaxed);
    on
}

/// Whether this CPU and OS can run the AVX2 path: AVX2, and the OS saves
/// the AVX state (CPUID OSXSAVE and AVX, XCR0 bits 1 and 2).
pub fn usable() -> bool {
    let leaf1 = __cpuid_count(1, 0);
    let (osxsave, avx) = (leaf1.ecx & (1 << 27) != 0, leaf1.ecx & (1 << 28) != 0);
    if !(osxsave && avx) || __cpuid_count(0, 0).eax < 7 {
        return false;
    }
    let xcr0: u32;
    // SAFETY: OSXSAVE is set, so xgetbv is available; it only reads XCR0.
    unsafe {
        asm!("xgetbv", in("ecx") 0, out("eax") xcr0, out("edx") _, options(nomem, nostack, preserves_flags))
    };
    xcr0 & 0b110 == 0b110 && __cpuid_count(7, 0).ebx & (1 << 5) != 0
}

/// # Safety
/// `p` readable for 32 bytes; AVX2 usable.
#[inline(always)]
unsafe fn ld(p: *const u8) -> __m256i {
    // SAFETY: per the contract; an unaligned load.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// # Safety
/// `p` writable for 32 bytes; AVX2 usable.
#[inline(always)]
unsafe fn st(p: *mut u8, v: __m256i) {
    // SAFETY: per the contract; an unaligned store.
    unsafe { _mm256_storeu_si256(p.cast(), v) }
}

/// Forward copy (memcpy, and memmove when `dst` is not inside the source);
/// returns `dst`.
///
/// # Safety
/// `n > 64`; `src` readable and `dst` writable for `n` bytes; `dst` not
/// inside `(src, src + n)`; AVX2 usable ([`usable`]).
#[target_feature(enable = "avx2")]
pub unsafe fn copy_forward(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: every access lies in [0, n): n > 64, head vectors at 0 and
    // 32, tail vectors at n - 128.. only when n > 128, loop blocks end
    // below n - 128 + 128; `rep movsb` under the stated distance rule.
    unsafe {
        if n <= 128 {
            let (a, b, c, d) = (
                ld(src),
                ld(src.add(32)),
                ld(src.add(n - 64)),
                ld(src.add(n - 32)),
            );
            st(dst, a);
            st(dst.add(32), b);
            st(dst.add(n - 64), c);
            st(dst.add(n - 32), d);
            return dst;
        }
        let behind = (src as usize).wrapping_sub(dst as usize);
        if n >= REP_MIN && behind >= 64 && cpu::fast_strings() {
            asm!("rep movsb", inout("rcx") n => _, inout("rdi") dst => _, inout("rsi") src => _,
                 options(nostack, preserves_flags));
            return dst;
        }
        let t = src.add(n - 128);
        let tail = [ld(t), ld(t.add(32)), ld(t.add(64)), ld(t.add(96))];
        let mut i = 0;
        while i < n - 128 {
            let (s, d) = (src.add(i), dst.add(i));
            let (a, b, c, e) = (ld(s), ld(s.add(32)), ld(s.add(64)), ld(s.add(96)));
            st(d, a);
            st(d.add(32), b);
            st(d.add(64), c);
            st(d.add(96), e);
            i += 128;
        }
        let d = dst.add(n - 128);
        for (k, v) in tail.into_iter().enumerate() {
            st(d.add(32 * k), v);
        }
    }
    dst
}

/// Backward memmove (`dst` above `src`, overlapping); returns `dst`.
///
/// # Safety
/// `n > 64`; `src` readable and `dst` writable for `n` bytes; `dst` inside
/// `[src, src + n)`; AVX2 usable.
#[target_feature(enable = "avx2")]
pub unsafe fn copy_backward(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: as in `copy_forward`, mirrored: blocks start above 0 and end
    // at most at n; each source block is read before any store reaches it
    // (stores so far are above dst + end >= src + end).
    unsafe {
        if n <= 128 {
            let (a, b, c, d) = (
                ld(src),
                ld(src.add(32)),
                ld(src.add(n - 64)),
                ld(src.add(n - 32)),
            );
            st(dst, a);
            st(dst.add(32), b);
            st(dst.add(n - 64), c);
            st(dst.add(n - 32), d);
            return dst;
        }
        let head = [ld(src), ld(src.add(32)), ld(src.add(64)), ld(src.add(96))];
        let mut end = n;
        while end > 128 {
            end -= 128;
            let (s, d) = (src.add(end), dst.add(end));
            let (a, b, c, e) = (ld(s), ld(s.add(32)), ld(s.add(64)), ld(s.add(96)));
            st(d, a);
            st(d.add(32), b);
            st(d.add(64), c);
            st(d.add(96), e);
        }
        for (k, v) in head.into_iter().enumerate() {
            st(dst.add(32 * k), v);
        }
    }
    dst
}

/// memset; returns `dst`.
///
/// # Safety
/// `n > 64`; `dst` writable for `n` bytes; AVX2 usable.
#[target_feature(enable = "avx2")]
pub unsafe fn set(dst: *mut u8, c: u8, n: usize) -> *mut u8 {
    // SAFETY: every store lies in [0, n) (n > 64).
    unsafe {
        let v = _mm256_set1_epi8(c as i8);
        if n >= REP_MIN && cpu::fast_strings() {
            asm!("rep stosb", inout("rcx") n => _, inout("rdi") dst => _, in("al") c,
                 options(nostack, preserves_flags));
            return dst;
        }
        st(dst, v);
        st(dst.add(32), v);
        st(dst.add(n - 64), v);
        st(dst.add(n - 32), v);
        let mut i = 64;
        while i + 64 < n {
            st(dst.add(i), v);
            st(dst.add(i + 32), v);
            i += 64;
        }
    }
    dst
}

/// memcmp: the sign of the first differing byte as unsigned char.
///
/// # Safety
/// `n >= 32`; `a` and `b` readable for `n` bytes; AVX2 usable.
#[target_feature(enable = "avx2")]
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: blocks start at i with i + 64 <= n, or at n - 32 (n >= 32);
    // the byte reads are at offsets inside a block already read.
    unsafe {
        let mut i = 0;
        while n - i >= 64 {
            let (x0, y0) = (ld(a.add(i)), ld(b.add(i)));
            let (x1, y1) = (ld(a.add(i + 32)), ld(b.add(i + 32)));
            let eq = _mm256_and_si256(_mm256_cmpeq_epi8(x0, y0), _mm256_cmpeq_epi8(x1, y1));
            if _mm256_movemask_epi8(eq) != -1 {
                let m0 = _mm256_movemask_epi8(_mm256_cmpeq_epi8(x0, y0));
                let at = if m0 != -1 { i } else { i + 32 };
                return first_difference(a, b, at);
            }
            i += 64;
        }
        // Up to 63 bytes left: two overlapping blocks cover them; bytes
        // before `i` are equal, so the first difference is still found.
        for at in [i.min(n - 32), n - 32] {
            if _mm256_movemask_epi8(_mm256_cmpeq_epi8(ld(a.add(at)), ld(b.add(at)))) != -1 {
                return first_difference(a, b, at);
            }
        }
    }
    0
}

/// The order of the first differing byte of the 32-byte blocks at `at`,
/// which are known to differ.
///
/// # Safety
/// `a` and `b` readable for `at + 32` bytes; AVX2 usable.
#[target_feature(enable = "avx2")]
unsafe fn first_difference(a: *const u8, b: *const u8, at: usize) -> i32 {
    // SAFETY: the blocks are readable; k < 32.
    unsafe {
        let mask = _mm256_movemask_epi8(_mm256_cmpeq_epi8(ld(a.add(at)), ld(b.add(at))));
        let k = (!mask).trailing_zeros() as usize;
        i32::from(*a.add(at + k)) - i32::from(*b.add(at + k))
    }
}
