//! The CPU features the memory functions choose between, read with CPUID
//! once (CPUID works in ring 0 and ring 3) and cached.

use core::sync::atomic::{AtomicU8, Ordering};

/// Set once the features have been read, so 0 means "not yet".
const KNOWN: u8 = 1;
/// Enhanced REP MOVSB/STOSB: `rep movsb` is fast for long copies.
const ERMS: u8 = 2;
/// Fast short REP MOVSB.
const FSRM: u8 = 4;

static FEATURES: AtomicU8 = AtomicU8::new(0);

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
    let f = bits();
    StringFeatures {
        erms: f & ERMS != 0,
        fsrm: f & FSRM != 0,
    }
}

/// Whether long copies and fills should use `rep movsb`/`rep stosb`.
/// Always inlined: one load and a test, where a call would cost a
/// nanosecond on every 1 KiB copy.
#[inline(always)]
pub(crate) fn fast_strings() -> bool {
    bits() & (ERMS | FSRM) != 0
}

#[inline(always)]
fn bits() -> u8 {
    // Relaxed: the value is a pure function of the CPU, so any thread that
    // races the first detection stores the same bits.
    match FEATURES.load(Ordering::Relaxed) {
        0 => detect(),
        f => f,
    }
}

/// Inlined too: a call here would make every long copy save and restore
/// registers around it, which costs more than the dozen bytes of CPUID code.
#[inline(always)]
fn detect() -> u8 {
    use core::arch::x86_64::__cpuid_count;
    let mut f = KNOWN;
    if __cpuid_count(0, 0).eax >= 7 {
        let leaf7 = __cpuid_count(7, 0);
        if leaf7.ebx & (1 << 9) != 0 {
            f |= ERMS;
        }
        if leaf7.edx & (1 << 4) != 0 {
            f |= FSRM;
        }
    }
    FEATURES.store(f, Ordering::Relaxed);
    f
}
