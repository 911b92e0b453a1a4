//! memshim's own heap functions: regions, hooks, stats, checks, errors.

use crate::error::{self, to_code, Error};
use crate::source::SpanKind;
use crate::state;
use crate::types::memshim_stats;
use core::ffi::{c_char, c_int, c_void};

/// Gives the heap `len` bytes at `start` that the caller owns. Returns 0,
/// `MEMSHIM_EINVAL` for NULL or a range that wraps, `MEMSHIM_ETOOSMALL` when
/// too small to hold one block, `MEMSHIM_EOVERLAP` when it overlaps memory
/// the heap already has, `MEMSHIM_ENOMEM` when no metadata can be had for
/// it. The memory is never given back. A page shared with another region
/// is left to the region that came first.
///
/// # Safety
/// `start..start+len` must be writable memory that nothing else uses, for
/// as long as the program runs.
#[no_mangle]
pub unsafe extern "C" fn memshim_add_region(start: *mut c_void, len: usize) -> c_int {
    if start.is_null() || (start as usize).checked_add(len).is_none() {
        return Error::Invalid.code();
    }
    to_code(
        state::with(|s| {
            let (heap, mut src) = s.heap();
            // SAFETY: forwarded contract.
            unsafe { heap.add_span(start.cast(), len, SpanKind::Region, &mut src) }
        })
        .unwrap_or(Err(Error::Reentered)),
    )
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
    let _ = state::with(|s| {
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

/// Fills `*out` with the current counters (NULL is ignored). The caches
/// are included: their counters are read without stopping their threads,
/// so a snapshot taken while other threads allocate is approximate, and
/// exact once they are quiet. `heap_peak_bytes_in_use` follows the caches
/// at their slab changes (when one takes or returns a slab), not at every
/// block.
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

/// Gives back to the page sources what the heap keeps only for speed: the
/// calling thread's empty slabs (after merging the frees other threads
/// made into them), the free slabs of threads that have ended, and the
/// wholly free slabs and spans the heap keeps for reuse. Returns the number of
/// bytes the heap's spans shrank by. A live thread's cache keeps its
/// partly used slabs (they go back when the thread ends).
#[no_mangle]
pub extern "C" fn memshim_trim() -> usize {
    let before = crate::stats().heap_bytes_mapped;
    crate::global::trim();
    before.saturating_sub(crate::stats().heap_bytes_mapped) as usize
}

/// Walks every heap block and the frame bitmap, verifying headers, links,
/// free lists and counters. Returns the number of problems found (0 =
/// healthy); does not call the panic handler.
///
/// The caches are checked where they stand, not drained: every slab
/// descriptor against its class, span and page-map entries, its bitmaps
/// (no object both free and freed remotely, no bit past the last object),
/// each cache's hints (they must name its own slabs), and, for caches no
/// thread uses, the use count against the bitmap. A block a cache holds
/// free counts as free; frees another thread made and the owner has not
/// merged yet count as free too. Other threads may keep allocating while
/// it runs (it takes the global lock, not theirs).
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

/// Per-CPU caches for small blocks, in a kernel: `count` CPUs (1 to 256),
/// and `cpu_id(ctx)` returns the number (below `count`) of the CPU it runs
/// on. Call once, before a second CPU calls memshim. Without it every CPU
/// shares one cache guarded by an atomic exchange (correct on any number
/// of CPUs). Returns 0, or `MEMSHIM_EINVAL` for a bad `count` or a NULL
/// hook, and on the host build (whose caches are per thread).
///
/// memshim calls the hook with interrupts masked (ring 0), for every small
/// allocation and free: it must be short, must not fault, and must not
/// call memshim.
#[no_mangle]
pub extern "C" fn memshim_set_cpu_hook(
    count: u32,
    cpu_id: Option<unsafe extern "C" fn(ctx: *mut c_void) -> u32>,
    ctx: *mut c_void,
) -> c_int {
    #[cfg(target_os = "none")]
    if let Some(hook) = cpu_id {
        return match crate::platform::cpu::set_hook(count, hook, ctx) {
            Ok(()) => 0,
            Err(_) => Error::Invalid.code(),
        };
    }
    let _ = (count, cpu_id, ctx);
    Error::Invalid.code()
}

/// As `memshim_set_cpu_hook`, with the CPU number read as a 32-bit word at
/// `gs:[gs_offset]` (a per-CPU area the kernel points GS at): no call, one
/// load. Returns 0, or `MEMSHIM_EINVAL` for a bad `count`, and on the host
/// build.
#[no_mangle]
pub extern "C" fn memshim_set_cpu_gs(count: u32, gs_offset: usize) -> c_int {
    #[cfg(target_os = "none")]
    return match crate::platform::cpu::set_gs(count, gs_offset) {
        Ok(()) => 0,
        Err(_) => Error::Invalid.code(),
    };
    #[cfg(not(target_os = "none"))]
    {
        let _ = (count, gs_offset);
        Error::Invalid.code()
    }
}

/// CPU `cpu` goes offline: its cache's blocks and slabs go back to the
/// heap. Call from another CPU while `cpu` runs no memshim code. Nothing
/// on the host build (a thread's cache goes back when the thread ends).
#[no_mangle]
pub extern "C" fn memshim_cpu_offline(cpu: u32) {
    #[cfg(target_os = "none")]
    crate::local::cpu::offline(cpu);
    #[cfg(not(target_os = "none"))]
    let _ = cpu;
}
