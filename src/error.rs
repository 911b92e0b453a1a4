//! Error codes shared by the Rust API and the C ABI.
//!
//! Every fallible `memshim_*` function returns 0 or one of the negative
//! `MEMSHIM_E*` codes below; `memshim_strerror` names each one.

/// Success.
pub const MEMSHIM_OK: i32 = 0;
/// An argument was invalid (NULL where a pointer is required, a bad alignment, ...).
pub const MEMSHIM_EINVAL: i32 = -1;
/// Not enough memory (or no frame/range satisfies the constraints).
pub const MEMSHIM_ENOMEM: i32 = -2;
/// The range overlaps memory memshim already manages.
pub const MEMSHIM_EOVERLAP: i32 = -3;
/// The range is too small to be useful.
pub const MEMSHIM_ETOOSMALL: i32 = -4;
/// The boot loader magic number is not Multiboot 1 or Multiboot 2.
pub const MEMSHIM_EMAGIC: i32 = -5;
/// The boot information is malformed (a length runs past the structure, a bad entry size, ...).
pub const MEMSHIM_EBOOTINFO: i32 = -6;
/// The boot information carries no usable memory map.
pub const MEMSHIM_ENOMMAP: i32 = -7;
/// The frame manager is already initialised.
pub const MEMSHIM_EALREADY: i32 = -8;
/// An address or length is out of range (above the physical limit, not page-aligned, wraps).
pub const MEMSHIM_ERANGE: i32 = -9;
/// The frame manager has not been initialised.
pub const MEMSHIM_ENOTINIT: i32 = -10;
/// memshim was called while the same thread or CPU held its lock (an
/// interrupt, NMI, fault or signal handler, or a hook): the call did
/// nothing (the re-entry was also reported through the panic handler).
pub const MEMSHIM_EREENTERED: i32 = -11;
/// `kernel_start`/`kernel_end` do not lie in usable RAM of the memory map
/// (above its highest usable address, or in a hole): they must be the
/// kernel image's *physical* range; a higher-half kernel subtracts its link
/// base. Nothing was initialised.
pub const MEMSHIM_EKERNEL: i32 = -12;

/// Typed form of the `MEMSHIM_E*` codes for the Rust API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// See [`MEMSHIM_EINVAL`].
    Invalid,
    /// See [`MEMSHIM_ENOMEM`].
    NoMemory,
    /// See [`MEMSHIM_EOVERLAP`].
    Overlap,
    /// See [`MEMSHIM_ETOOSMALL`].
    TooSmall,
    /// See [`MEMSHIM_EMAGIC`].
    BadMagic,
    /// See [`MEMSHIM_EBOOTINFO`].
    BadBootInfo,
    /// See [`MEMSHIM_ENOMMAP`].
    NoMemoryMap,
    /// See [`MEMSHIM_EALREADY`].
    Already,
    /// See [`MEMSHIM_ERANGE`].
    Range,
    /// See [`MEMSHIM_ENOTINIT`].
    NotInitialised,
    /// See [`MEMSHIM_EREENTERED`].
    Reentered,
    /// See [`MEMSHIM_EKERNEL`].
    KernelRange,
}

impl Error {
    /// The C code for this error.
    pub const fn code(self) -> i32 {
        match self {
            Error::Invalid => MEMSHIM_EINVAL,
            Error::NoMemory => MEMSHIM_ENOMEM,
            Error::Overlap => MEMSHIM_EOVERLAP,
            Error::TooSmall => MEMSHIM_ETOOSMALL,
            Error::BadMagic => MEMSHIM_EMAGIC,
            Error::BadBootInfo => MEMSHIM_EBOOTINFO,
            Error::NoMemoryMap => MEMSHIM_ENOMMAP,
            Error::Already => MEMSHIM_EALREADY,
            Error::Range => MEMSHIM_ERANGE,
            Error::NotInitialised => MEMSHIM_ENOTINIT,
            Error::Reentered => MEMSHIM_EREENTERED,
            Error::KernelRange => MEMSHIM_EKERNEL,
        }
    }
}

/// Converts a Rust result into the C convention (0 or a negative code).
pub const fn to_code(r: Result<(), Error>) -> i32 {
    match r {
        Ok(()) => MEMSHIM_OK,
        Err(e) => e.code(),
    }
}

/// A NUL-terminated description of `code`, for `memshim_strerror`.
pub const fn describe(code: i32) -> &'static str {
    match code {
        MEMSHIM_OK => "success\0",
        MEMSHIM_EINVAL => "invalid argument\0",
        MEMSHIM_ENOMEM => "out of memory\0",
        MEMSHIM_EOVERLAP => "range overlaps memory memshim already manages\0",
        MEMSHIM_ETOOSMALL => "range too small\0",
        MEMSHIM_EMAGIC => "bad boot loader magic (not Multiboot 1 or 2)\0",
        MEMSHIM_EBOOTINFO => "malformed boot information\0",
        MEMSHIM_ENOMMAP => "boot information has no usable memory map\0",
        MEMSHIM_EALREADY => "frame manager already initialised\0",
        MEMSHIM_ERANGE => "address or length out of range\0",
        MEMSHIM_ENOTINIT => "frame manager not initialised\0",
        MEMSHIM_EREENTERED => "re-entrant call: memshim's lock is held by the caller\0",
        MEMSHIM_EKERNEL => {
            "kernel_start/kernel_end are not in usable RAM (physical addresses expected)\0"
        }
        _ => "unknown memshim error code\0",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_distinct_name() {
        let all = [
            Error::Invalid,
            Error::NoMemory,
            Error::Overlap,
            Error::TooSmall,
            Error::BadMagic,
            Error::BadBootInfo,
            Error::NoMemoryMap,
            Error::Already,
            Error::Range,
            Error::NotInitialised,
            Error::Reentered,
            Error::KernelRange,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(a.code() < 0);
            assert_ne!(describe(a.code()), describe(12345));
            for b in &all[i + 1..] {
                assert_ne!(describe(a.code()), describe(b.code()));
            }
        }
        assert_eq!(describe(0), "success\0");
    }
}
