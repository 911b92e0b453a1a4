//! Heap memory from `mmap` on a Linux host.

use crate::platform::host::{
    mmap, munmap, MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE,
};
use core::ptr::NonNull;

/// Maps `min` bytes of fresh zeroed pages.
pub fn grow(min: usize) -> Option<(NonNull<u8>, usize)> {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
    let p = unsafe {
        mmap(
            core::ptr::null_mut(),
            min,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == MAP_FAILED {
        return None;
    }
    NonNull::new(p.cast::<u8>()).map(|p| (p, min))
}

/// Unmaps a span `grow` returned.
///
/// # Safety
/// `base`/`len` must be exactly a mapping `grow` made, no longer in use.
pub unsafe fn shrink(base: NonNull<u8>, len: usize) -> bool {
    // Runs inside `free`, which must leave errno as it was (POSIX 2024).
    let saved = crate::platform::host::errno();
    // SAFETY: per the contract, this is our own mapping.
    let ok = unsafe { munmap(base.as_ptr().cast(), len) == 0 };
    crate::platform::host::set_errno(saved);
    ok
}
