//! Every exported C symbol. Thin wrappers: convert and check arguments,
//! call the Rust API, map results to the C conventions (NULL + errno, or 0 /
//! a negative `MEMSHIM_E*` code).
//!
//! Standard names carry `#[cfg(not(memshim_no_std_decls))]`: the cfg is never
//! set, so they are always compiled; cbindgen turns it into an
//! `#if !defined(MEMSHIM_NO_STD_DECLS)` guard in the header, which hosted C++
//! (whose `<cstdlib>` declares them `noexcept`) defines automatically.

/// C++ names: declared by `<new>`, not by memshim.h.
/// cbindgen:ignore
pub mod cxx;
pub mod frames;
#[cfg(target_os = "linux")]
pub mod glibc;
pub mod memshim;
pub mod newlib;
pub mod stdlib;
pub mod string;
