//! What the memory functions choose between, read once with CPUID (and
//! XGETBV for the vector state the OS saves) and cached in one byte, so
//! that every long call pays one load and a test for its whole decision.
//! CPUID and XGETBV work in ring 0 and ring 3.

use core::arch::x86_64::__cpuid_count;
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU8, Ordering};

/// Set once the CPU has been read, so 0 means "not yet".
pub(crate) const KNOWN: u8 = 1;
/// Enhanced REP MOVSB/STOSB (CPUID.7.0:EBX bit 9).
pub(crate) const ERMS: u8 = 2;
/// Fast short REP MOVSB (CPUID.7.0:EDX bit 4).
pub(crate) const FSRM: u8 = 4;
/// `rep movsb` falls off a cliff when `(dst - src) mod 4096` is 1..=63
/// (AMD Zen: 25x at 1 KiB). On the Intel cores measured it costs 1.5x
/// there and is still 3x faster than any register loop, so only AMD CPUs
/// avoid it.
pub(crate) const SHORT_PAGE_DISTANCE_SLOW: u8 = 8;
/// The vector path is on, with 32-byte AVX2 vectors.
pub(crate) const AVX2: u8 = 16;
/// The vector path is on, with 64-byte AVX-512 vectors.
pub(crate) const AVX512: u8 = 32;
/// Either vector path.
pub(crate) const VECTOR: u8 = AVX2 | AVX512;

// The path byte, defined in assembly so that the entry points (`entry`)
// read it with one RIP-relative load in every build: a hidden symbol can
// be addressed directly, where rustc would reach a Rust static through
// the GOT. It sits at page offset 0x6e0, away from page and half-page
// boundaries: a load waits for an older store to the same offset in any
// page (4 KiB aliasing), and copies to page-aligned buffers store their
// first and last 64 bytes last. At offset 1 this cost 2 ns on every 2-4
// KiB copy that ended at a page boundary.
global_asm!(
    ".pushsection .bss.memshim_mem_path,\"aw\",@nobits",
    ".p2align 12",
    "    .skip 0x6e0",
    ".globl memshim_mem_path",
    ".hidden memshim_mem_path",
    ".type memshim_mem_path,@object",
    "memshim_mem_path:",
    "    .zero 1",
    ".size memshim_mem_path, 1",
    ".popsection",
);

extern "C" {
    /// The path bits; 0 until [`detect`] has run.
    pub(crate) static memshim_mem_path: AtomicU8;
}

/// The path byte.
#[inline(always)]
fn path_byte() -> &'static AtomicU8 {
    // SAFETY: the assembly above defines the byte, zero-initialised, and
    // every access to it is atomic (the entry points' plain byte loads
    // are atomic on x86_64).
    unsafe { &memshim_mem_path }
}

/// The vector width the memory functions use (from 33 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// General-purpose registers and `rep movsb`/`rep stosb` only: no
    /// SSE/AVX register is touched (the default of the freestanding build).
    Off,
    /// 32-byte AVX2 vectors in `ymm0`-`ymm9`, `vzeroupper` before returning.
    Avx2,
    /// 64-byte AVX-512 vectors in `zmm16`-`zmm24` and mask registers `k1`, `k2`.
    Avx512,
}

impl Simd {
    /// The vector width in bytes, 0 for [`Simd::Off`].
    pub fn width(self) -> usize {
        match self {
            Simd::Off => 0,
            Simd::Avx2 => 32,
            Simd::Avx512 => 64,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Simd::Off => 0,
            Simd::Avx2 => AVX2,
            Simd::Avx512 => AVX512,
        }
    }
}

/// What CPUID leaf 7 says about string instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StringFeatures {
    /// Enhanced REP MOVSB/STOSB (CPUID.7.0:EBX bit 9).
    pub erms: bool,
    /// Fast short REP MOVSB (CPUID.7.0:EDX bit 4).
    pub fsrm: bool,
}

/// The string-instruction features of this CPU.
pub fn string_features() -> StringFeatures {
    let f = known_path();
    StringFeatures {
        erms: f & ERMS != 0,
        fsrm: f & FSRM != 0,
    }
}

/// The path bits: 0 until the CPU has been read ([`detect`]), then
/// [`KNOWN`] and the other flags above.
#[inline(always)]
pub(crate) fn path() -> u8 {
    // Relaxed: the bits other than the vector choice are a pure function
    // of the CPU, and the vector choice needs no ordering with any other
    // memory (a call may run on either path while it changes).
    path_byte().load(Ordering::Relaxed)
}

/// [`path`], reading the CPU first if needed.
pub(crate) fn known_path() -> u8 {
    match path() {
        0 => detect(),
        f => f,
    }
}

/// Whether long copies and fills should use `rep movsb`/`rep stosb`.
#[inline(always)]
pub(crate) fn fast_strings(path: u8) -> bool {
    path & (ERMS | FSRM) != 0
}

/// Reads the CPU; the host build also turns on the best vector path it
/// allows. A racing thread computes the same bits, and a vector choice
/// already made (by [`set_simd`]) is kept.
#[cold]
#[inline(never)]
pub(crate) fn detect() -> u8 {
    let mut f = KNOWN | string_bits();
    if cfg!(target_os = "linux") {
        f |= best_simd().bits();
    }
    match path_byte().compare_exchange(0, f, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => f,
        Err(current) => current,
    }
}

/// [`detect`] for the entry points, which call it once, on their first
/// long call, with the C ABI; returns the path bits.
pub(crate) extern "C" fn detect_for_entry() -> u32 {
    u32::from(detect())
}

fn string_bits() -> u8 {
    let leaf0 = __cpuid_count(0, 0);
    let mut f = 0;
    if leaf0.eax >= 7 {
        let leaf7 = __cpuid_count(7, 0);
        if leaf7.ebx & (1 << 9) != 0 {
            f |= ERMS;
        }
        if leaf7.edx & (1 << 4) != 0 {
            f |= FSRM;
        }
    }
    // "AuthenticAMD" in EBX, EDX, ECX.
    if (leaf0.ebx, leaf0.edx, leaf0.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163) {
        f |= SHORT_PAGE_DISTANCE_SLOW;
    }
    f
}

/// The widest vector path this CPU runs and the OS (or kernel) has enabled
/// the state for: AVX2 needs CPUID AVX2 and XCR0 SSE and AVX state (bits 1
/// and 2); AVX-512 needs AVX-512 F, BW and VL, BMI2, and XCR0 opmask,
/// ZMM_Hi256 and Hi16_ZMM state (bits 5 to 7) too. On Intel, AVX-512 only where the core
/// also has AVX-VNNI (Sapphire Rapids and later), where 512-bit moves do
/// not lower the clock; older Intel server cores get AVX2 (as glibc
/// chooses). Measured on a Sapphire Rapids class core: AVX-512 copies
/// 1.3-1.6x faster than AVX2 from 1 KiB to 16 KiB.
pub fn best_simd() -> Simd {
    let leaf0 = __cpuid_count(0, 0);
    let leaf1 = __cpuid_count(1, 0);
    let (osxsave, avx) = (leaf1.ecx & (1 << 27) != 0, leaf1.ecx & (1 << 28) != 0);
    if !(osxsave && avx) || leaf0.eax < 7 {
        return Simd::Off;
    }
    let xcr0: u32;
    // SAFETY: CPUID says OSXSAVE, so XGETBV exists and the kernel has set
    // CR4.OSXSAVE; with ECX = 0 it only reads XCR0.
    unsafe {
        asm!("xgetbv", in("ecx") 0, out("eax") xcr0, out("edx") _,
             options(nomem, nostack, preserves_flags))
    };
    let leaf7 = __cpuid_count(7, 0);
    if xcr0 & 0b110 != 0b110 || leaf7.ebx & (1 << 5) == 0 {
        return Simd::Off;
    }
    // AVX-512 F, BW and VL (bits 16, 30, 31); BMI2 (bit 8) for `bzhi`.
    let avx512 = [16, 30, 31, 8].iter().all(|&b| leaf7.ebx & (1 << b) != 0);
    let intel = (leaf0.ebx, leaf0.edx, leaf0.ecx) == (0x756e_6547, 0x4965_6e69, 0x6c65_746e);
    let vnni = leaf0.eax >= 7 && __cpuid_count(7, 1).eax & (1 << 4) != 0;
    if avx512 && xcr0 & 0xe0 == 0xe0 && (vnni || !intel) {
        Simd::Avx512
    } else {
        Simd::Avx2
    }
}

/// The vector path the memory functions use now (reading the CPU first if
/// no call has yet).
pub fn active_simd() -> Simd {
    let f = known_path();
    if f & AVX512 != 0 {
        Simd::Avx512
    } else if f & AVX2 != 0 {
        Simd::Avx2
    } else {
        Simd::Off
    }
}

/// Chooses the vector path, at most [`best_simd`]; returns the one now in
/// use. Calls already running finish on the path they started on.
pub fn set_simd(want: Simd) -> Simd {
    let got = want.min(best_simd());
    known_path();
    // fetch_update cannot fail here: the closure always returns Some.
    let _ = path_byte().fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
        Some(f & !VECTOR | got.bits())
    });
    got
}
