//! memshim's C artifacts. All code lives in the `memshim` crate (its `ffi`
//! module holds every exported symbol); this crate only links it into a
//! static library and a shared object and supplies what a final no_std
//! artifact needs and an rlib must not force on Rust users: the
//! `#[panic_handler]` (routed to memshim's panic hook) and, on the Linux
//! host, the unwinding personality symbol that the prebuilt `core` names.

#![cfg_attr(not(test), no_std)]

// Link every exported C symbol in.
pub use memshim;

#[cfg(not(test))]
#[panic_handler]
fn on_rust_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    memshim::panic::fatal(format_args!("internal error: {}", info))
}

// `core` for the Linux host is precompiled with unwinding tables that name
// `rust_eh_personality`; memshim aborts on panic and never unwinds, so it is
// never called. Defined hidden, so the shared object does not export it
// (the finished archive localises it too).
#[cfg(all(target_os = "linux", not(test)))]
core::arch::global_asm!(
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality,@function",
    "rust_eh_personality:",
    "ud2",
);
