//! memshim: a drop-in C-ABI memory shim for freestanding x86_64.
//!
//! The library gives a C kernel (or any program without a usable libc)
//! `malloc` and friends, the `mem*` functions, a bounded-time heap and a
//! physical frame manager. Rust users get the heap as a `GlobalAlloc`
//! ([`MemShim`]), the frame manager as an `x86_64` crate frame allocator
//! ([`frames::GlobalFrames`]; the `x86_64` version it implements is
//! re-exported as [`memshim::x86_64`](x86_64)), and no `#[panic_handler]`
//! forced on them.
//!
//! Features: `c-api` (default) also exports the C symbols (`malloc`,
//! `memcpy`, `memshim_*`): a Rust kernel keeps it, a hosted program turns
//! default features off so it keeps its libc's allocator. `header` runs
//! cbindgen in the build script (only `make header` and the header test
//! need it; without it the crate has no build dependencies).
//!
//! # A Rust kernel
//!
//! The heap works before any call, from a static arena; one call with the
//! boot loader's EAX and EBX starts the frame manager, and the heap grows
//! from frames from then on:
//!
//! ```no_run
//! extern crate alloc;
//! use memshim::types::memshim_boot_config;
//!
//! #[global_allocator]
//! static HEAP: memshim::MemShim = memshim::MemShim;
//!
//! /// Called by the boot code with the Multiboot magic and information.
//! fn kmain(magic: u32, info: *const u8, kernel: core::ops::Range<u64>) {
//!     let cfg = memshim_boot_config {
//!         kernel_start: kernel.start, // physical
//!         kernel_end: kernel.end,
//!         phys_offset: 0,       // virtual = physical + phys_offset
//!         phys_limit: 1 << 30,  // the end of what the page tables map
//!     };
//!     // SAFETY: `info` is the boot loader's structure and physical memory
//!     // below 1 GiB is mapped writable at offset 0.
//!     if let Err(e) = unsafe { memshim::frames::global::init_multiboot(magic, info, &cfg) } {
//!         panic!("memshim: {e:?} (code {})", e.code());
//!     }
//!     let v: alloc::vec::Vec<u64> = (0..1000).collect(); // from memshim's heap
//!     assert_eq!(v.len(), 1000);
//! }
//! # fn main() {}
//! ```
//!
//! A full `no_std` example that builds for `x86_64-unknown-none` is
//! `examples/rust-kernel/` in the repository.
//!
//! # Counters and checks
//!
//! ```
//! use core::alloc::{GlobalAlloc, Layout};
//!
//! let layout = Layout::from_size_align(100, 16).unwrap();
//! // SAFETY: the layout's size is not zero.
//! let p = unsafe { memshim::MemShim.alloc(layout) };
//! assert!(!p.is_null());
//! assert!(memshim::stats().live_allocations >= 1);
//! assert_eq!(memshim::check(), 0); // problems found: none
//! let mut text = String::new();
//! memshim::dump(&mut |s| text.push_str(s));
//! assert!(text.contains("heap:"));
//! // SAFETY: allocated above with this layout.
//! unsafe { memshim::MemShim.dealloc(p, layout) };
//! ```
//!
//! Map: [`heap`] (the allocator), [`source`] (where heap memory comes from),
//! [`frames`] (physical frames and boot memory maps), [`mem`] (memory
//! functions), `ffi` (C symbols), [`sync`] (the lock), [`panic`](mod@panic)
//! (fault reports).

#![cfg_attr(not(test), no_std)]
// The memory functions must never be compiled into calls to themselves.
#![no_builtins]

pub mod error;
#[cfg(feature = "c-api")]
pub mod ffi;
#[cfg(target_os = "linux")]
mod fork;
pub mod frames;
pub mod global;
pub mod heap;
pub mod local;
pub mod mem;
pub mod panic;
pub mod platform;
pub mod source;
pub mod state;
pub mod sync;
pub mod types;

pub use error::Error;
pub use global::MemShim;
/// The `x86_64` crate (0.15) whose `FrameAllocator<Size4KiB>` and
/// `FrameDeallocator<Size4KiB>` [`frames::GlobalFrames`] implements: use
/// these paths (`memshim::x86_64::structures::paging::...`) so the trait
/// versions match whatever `x86_64` your own crate depends on.
pub use x86_64;

use core::fmt::{self, Write};

/// Current counters of the global heap and frame manager (all 0 when
/// called re-entrantly, which is reported).
pub fn stats() -> types::memshim_stats {
    state::with(|s| {
        let h = s.heap().0.stats();
        let (frames_total, frames_free) = s.frames.counts();
        types::memshim_stats {
            heap_bytes_in_use: h.in_use as u64,
            heap_bytes_free: h.free as u64,
            heap_bytes_mapped: h.mapped as u64,
            heap_peak_bytes_in_use: h.peak_in_use as u64,
            live_allocations: h.live as u64,
            total_allocations: h.total_allocs,
            total_frees: h.total_frees,
            heap_spans: h.spans as u64,
            heap_bytes_metadata: h.metadata as u64,
            heap_slabs: h.slabs as u64,
            frames_total,
            frames_free,
        }
    })
    .unwrap_or_default()
}

/// Walks the global heap and frame manager; returns problems found (1 when
/// called re-entrantly: nothing could be checked).
pub fn check() -> usize {
    state::with(|s| s.heap().0.check() + s.frames.check()).unwrap_or(1)
}

/// Formats a bounded summary of the global state under the lock, then hands
/// it to `out` after the lock is released (so `out` may allocate).
pub fn dump(out: &mut dyn FnMut(&str)) {
    let mut buf = FixedText::<4096>::new();
    let _ = state::with(|s| {
        let _ = s.heap().0.dump(&mut buf);
        let _ = s.frames.dump(&mut buf);
    });
    out(buf.as_str());
}

/// A fixed-capacity text buffer that truncates (marking the cut) instead of failing.
pub(crate) struct FixedText<const N: usize> {
    buf: [u8; N],
    len: usize,
    truncated: bool,
}

impl<const N: usize> FixedText<N> {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            truncated: false,
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only whole `str`s are appended, so the prefix is valid UTF-8; an
        // ASCII-only cut point is guaranteed by `write_str`.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> Write for FixedText<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        const MARK: &str = "...(truncated)\n";
        if self.truncated {
            return Ok(());
        }
        if self.len + s.len() + MARK.len() > N {
            self.truncated = true;
            self.buf[self.len..self.len + MARK.len()].copy_from_slice(MARK.as_bytes());
            self.len += MARK.len();
            return Ok(());
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

#[cfg(test)]
mod header_tests {
    /// The committed header is what cbindgen makes of the current source
    /// (cbindgen runs in build.rs with the `header` feature, which `make
    /// test-rust` turns on).
    #[cfg(feature = "header")]
    #[test]
    fn committed_header_matches_the_source() {
        let generated = include_str!(concat!(env!("OUT_DIR"), "/memshim.h"));
        let committed = include_str!("../include/memshim.h");
        assert!(
            generated == committed,
            "include/memshim.h is out of date: run `make header` and commit it"
        );
    }

    /// Every macro the header defines is memshim's own: a C program that
    /// includes it gets no `BUSY` or `MAX_CPUS` of ours in its namespace.
    #[test]
    fn the_header_defines_only_memshim_names() {
        let header = include_str!("../include/memshim.h");
        let foreign: Vec<&str> = header
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("#define "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| !name.starts_with("MEMSHIM_") && *name != "MEMSHIM_H")
            .collect();
        assert!(
            foreign.is_empty(),
            "the header defines {foreign:?}: exclude them in cbindgen.toml"
        );
    }
}
