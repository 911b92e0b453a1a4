//! Heap memory from the caller's own page allocator (`memshim_set_page_hooks`).

use super::PAGE;
use core::ffi::c_void;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A misaligned run a page hook returned, to be reported once the global
/// lock is released (reports never run under the lock).
static MISALIGNED: AtomicUsize = AtomicUsize::new(0);

/// The address of a misaligned run a page hook returned since the last
/// call, if any.
pub fn take_misaligned() -> Option<usize> {
    if MISALIGNED.load(Ordering::Relaxed) == 0 {
        return None;
    }
    Some(MISALIGNED.swap(0, Ordering::Relaxed)).filter(|&a| a != 0)
}

/// `void *alloc_pages(size_t pages, void *ctx)`.
pub type AllocPages = unsafe extern "C" fn(pages: usize, ctx: *mut c_void) -> *mut c_void;
/// `void free_pages(void *p, size_t pages, void *ctx)`.
pub type FreePages = unsafe extern "C" fn(p: *mut c_void, pages: usize, ctx: *mut c_void);

/// The registered hooks.
pub struct PageHooks {
    /// Page allocator; `None` when not set.
    pub alloc: Option<AllocPages>,
    /// Page release; `None` means spans are kept forever.
    pub free: Option<FreePages>,
    /// Passed back to both hooks.
    pub ctx: *mut c_void,
}

// SAFETY: the hooks are plain function pointers and an opaque context that
// the caller promised may be used from whichever CPU/thread calls memshim.
unsafe impl Send for PageHooks {}

impl PageHooks {
    /// No hooks.
    pub const fn none() -> Self {
        Self {
            alloc: None,
            free: None,
            ctx: core::ptr::null_mut(),
        }
    }

    /// Asks the caller for `min` bytes of pages.
    pub fn grow(&self, min: usize) -> Option<(NonNull<u8>, usize)> {
        let alloc = self.alloc?;
        let pages = min / PAGE;
        // SAFETY: the caller's hook; it returns page-aligned memory or NULL.
        let p = unsafe { alloc(pages, self.ctx) };
        let p = NonNull::new(p.cast::<u8>())?;
        if p.as_ptr().addr() % PAGE != 0 {
            // Unusable: hand it straight back and report it after the lock.
            MISALIGNED.store(p.as_ptr().addr(), Ordering::Relaxed);
            // SAFETY: returning exactly the run the hook gave us.
            unsafe { self.shrink(p, pages * PAGE) };
            return None;
        }
        Some((p, pages * PAGE))
    }

    /// Gives pages back, if the caller registered a release hook.
    ///
    /// # Safety
    /// The span must have come from `grow`.
    pub unsafe fn shrink(&self, base: NonNull<u8>, len: usize) -> bool {
        match self.free {
            Some(free) => {
                // SAFETY: returning exactly the pages the hook gave us.
                unsafe { free(base.as_ptr().cast(), len / PAGE, self.ctx) };
                true
            }
            None => false,
        }
    }
}
