//! The static `.bss` arena: heap memory before any init call.
//!
//! Its size is fixed at build time by `MEMSHIM_ARENA_SIZE` (bytes, or with a
//! `K`/`M` suffix; default 1 MiB; 0 disables it), read by `build.rs`.

use core::cell::UnsafeCell;

/// Arena size in bytes.
pub const ARENA_SIZE: usize = parse(env!("MEMSHIM_ARENA_BYTES"));

const fn parse(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0usize;
    while i < b.len() {
        v = v * 10 + (b[i] - b'0') as usize;
        i += 1;
    }
    v
}

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; ARENA_SIZE]>);

// SAFETY: the arena is handed to the heap exactly once, under the global
// lock, and only accessed through the heap afterwards.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_SIZE]));

/// The arena's start and length. Call once (the heap takes ownership).
pub fn take() -> (*mut u8, usize) {
    (ARENA.0.get().cast(), ARENA_SIZE)
}
