//! memshim's own heap functions: regions, hooks, stats, checks, errors.

use crate::error::{self, to_code, Error};
use crate::source::SpanKind;
use crate::state::STATE;
use crate::types::memshim_stats;
use core::ffi::{c_char, c_int, c_void};

/// Gives the heap `len` bytes at `start` that the caller owns. Returns 0,
/// `MEMSHIM_EINVAL` for NULL or a range that wraps, `MEMSHIM_ETOOSMALL` when
/// too small to hold one block, `MEMSHIM_EOVERLAP` when it overlaps memory
/// the heap already has, `MEMSHIM_ENOMEM` when the heap already holds its
/// maximum of 128 spans. The memory is never given back.
///
/// # Safety
/// `start..start+len` must be writable memory that nothing else uses, for
/// as long as the program runs.
#[no_mangle]
pub unsafe extern "C" fn memshim_add_region(start: *mut c_void, len: usize) -> c_int {
    if start.is_null() || (start as usize).checked_add(len).is_none() {
        return Error::Invalid.code();
    }
    to_code(STATE.with(|s| {
        let (heap, _) = s.heap();
        // SAFETY: forwarded contract.
        unsafe { heap.add_span(start.cast(), len, SpanKind::Region) }
    }))
}

/// Lets the heap take pages from the kernel's own VMM: `alloc_pages(n, ctx)`
/// returns `n` contiguous page-aligned 4 KiB pages or NULL; `free_pages(p, n,
/// ctx)` gives back exactly a run `alloc_pages` returned (may be NULL: then
/// the heap keeps what it took). Hooks run under memshim's lock and must not
/// call memshim. Passing a NULL `alloc_pages` removes the hooks. Set them
/// once, before the heap needs them: a span taken from earlier hooks is
/// given back through whichever `free_pages` is set when it empties (none:
/// kept).
#[no_mangle]
pub extern "C" fn memshim_set_page_hooks(
    alloc_pages: Option<unsafe extern "C" fn(pages: usize, ctx: *mut c_void) -> *mut c_void>,
    free_pages: Option<unsafe extern "C" fn(p: *mut c_void, pages: usize, ctx: *mut c_void)>,
    ctx: *mut c_void,
) {
    STATE.with(|s| {
        s.hooks.alloc = alloc_pages;
        s.hooks.free = if alloc_pages.is_some() {
            free_pages
        } else {
            None
        };
        s.hooks.ctx = ctx;
    });
}

/// Replaces the built-in spin lock (which, in ring 0, also disables
/// interrupts while held) with the caller's lock. Both hooks or neither:
/// NULL restores the built-in lock. Call before any concurrent use. The
/// hooks must not call memshim.
#[no_mangle]
pub extern "C" fn memshim_set_lock_hooks(
    lock: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
    unlock: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
    ctx: *mut c_void,
) {
    crate::sync::set_lock_hooks(lock, unlock, ctx);
}

/// Installs the handler that receives fault reports (double free, invalid
/// pointer, heap corruption, frame misuse). `msg` is NUL-terminated and
/// `len` bytes long; it names the fault and the address. The handler runs
/// without memshim's lock held. If it returns, the faulting call does
/// nothing (`free`) or fails (`realloc` returns NULL with errno EINVAL).
/// NULL restores the default: host, `memshim: <msg>` on stderr and abort();
/// freestanding, interrupts off and `hlt` forever.
#[no_mangle]
pub extern "C" fn memshim_set_panic_handler(
    handler: Option<unsafe extern "C" fn(msg: *const c_char, len: usize, ctx: *mut c_void)>,
    ctx: *mut c_void,
) {
    crate::panic::set_handler(handler, ctx);
}

/// Fills `*out` with the current counters (NULL is ignored).
///
/// # Safety
/// `out` must be NULL or valid for writing one `struct memshim_stats`.
#[no_mangle]
pub unsafe extern "C" fn memshim_get_stats(out: *mut memshim_stats) {
    if out.is_null() {
        return;
    }
    let st = crate::stats();
    // SAFETY: non-null and valid per the contract.
    unsafe { out.write(st) };
}

/// Walks every heap block and the frame bitmap, verifying headers, links,
/// free lists and counters. Returns the number of problems found (0 =
/// healthy); does not call the panic handler.
#[no_mangle]
pub extern "C" fn memshim_check() -> usize {
    crate::check()
}

/// Writes a human-readable summary (counters, spans, free-list classes,
/// frames) through `write(ctx, text, len)`, in pieces. `write` is called
/// after memshim's lock is released, so it may allocate. NULL is ignored.
///
/// # Safety
/// `write` must be NULL or a function safe to call with `ctx` and a buffer.
#[no_mangle]
pub unsafe extern "C" fn memshim_dump(
    write: Option<unsafe extern "C" fn(ctx: *mut c_void, text: *const c_char, len: usize)>,
    ctx: *mut c_void,
) {
    let Some(write) = write else { return };
    crate::dump(&mut |text: &str| {
        // SAFETY: the caller's writer, with a live buffer of `text.len()` bytes.
        unsafe { write(ctx, text.as_ptr().cast(), text.len()) }
    });
}

/// A static NUL-terminated description of a `MEMSHIM_E*` code (or of 0).
#[no_mangle]
pub extern "C" fn memshim_strerror(code: c_int) -> *const c_char {
    error::describe(code).as_ptr().cast()
}
