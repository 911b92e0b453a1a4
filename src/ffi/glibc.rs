//! glibc's allocator extras, exported on the Linux host only.
//!
//! Debian's static `libc.a` keeps these in the same member as its `malloc`:
//! a static program that called one we did not export would drag glibc's
//! allocator in beside ours ("multiple definition of malloc"). They report
//! memshim's own counters.

use core::ffi::{c_int, c_void};

/// glibc's `struct mallinfo` (int fields, truncated as glibc does).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Default)]
pub struct mallinfo {
    /// Bytes held from the system.
    pub arena: c_int,
    /// Free blocks (not tracked: 0).
    pub ordblks: c_int,
    /// Unused (0).
    pub smblks: c_int,
    /// Spans held.
    pub hblks: c_int,
    /// Bytes held from the system.
    pub hblkhd: c_int,
    /// Unused (0).
    pub usmblks: c_int,
    /// Unused (0).
    pub fsmblks: c_int,
    /// Bytes in use.
    pub uordblks: c_int,
    /// Bytes free.
    pub fordblks: c_int,
    /// Releasable bytes (not tracked: 0).
    pub keepcost: c_int,
}

/// glibc's `struct mallinfo2` (size_t fields).
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Default)]
pub struct mallinfo2 {
    /// Bytes held from the system.
    pub arena: usize,
    /// Free blocks (not tracked: 0).
    pub ordblks: usize,
    /// Unused (0).
    pub smblks: usize,
    /// Spans held.
    pub hblks: usize,
    /// Bytes held from the system.
    pub hblkhd: usize,
    /// Unused (0).
    pub usmblks: usize,
    /// Unused (0).
    pub fsmblks: usize,
    /// Bytes in use.
    pub uordblks: usize,
    /// Bytes free.
    pub fordblks: usize,
    /// Releasable bytes (0).
    pub keepcost: usize,
}

fn info2() -> mallinfo2 {
    let s = crate::stats();
    mallinfo2 {
        arena: s.heap_bytes_mapped as usize,
        hblks: s.heap_spans as usize,
        hblkhd: s.heap_bytes_mapped as usize,
        uordblks: s.heap_bytes_in_use as usize,
        fordblks: s.heap_bytes_free as usize,
        ..mallinfo2::default()
    }
}

/// glibc `mallinfo2`: memshim's counters in glibc's shape.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn mallinfo2() -> mallinfo2 {
    info2()
}

/// glibc `mallinfo` (int fields; large values wrap, as in glibc).
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn mallinfo() -> mallinfo {
    let i = info2();
    mallinfo {
        arena: i.arena as c_int,
        hblks: i.hblks as c_int,
        hblkhd: i.hblkhd as c_int,
        uordblks: i.uordblks as c_int,
        fordblks: i.fordblks as c_int,
        ..mallinfo::default()
    }
}

/// glibc's `mallopt` parameters (`<malloc.h>`).
const M_MXFAST: c_int = 1;
const M_TRIM_THRESHOLD: c_int = -1;
const M_TOP_PAD: c_int = -2;
const M_MMAP_THRESHOLD: c_int = -3;
const M_MMAP_MAX: c_int = -4;
const M_CHECK_ACTION: c_int = -5;
const M_PERTURB: c_int = -6;
const M_ARENA_TEST: c_int = -7;
const M_ARENA_MAX: c_int = -8;

/// glibc `mallopt`: 1 when the parameter is applied or is a harmless no-op
/// here, 0 when refused. Values are taken as glibc takes them: a negative
/// size is a huge one (`-1`: never), and so is a negative count.
///
/// * `M_MMAP_THRESHOLD`: blocks at least this large get spans of their
///   own, returned when freed (`-1`: none does); the threshold then stays
///   (as in glibc, setting it ends its adjustment).
/// * `M_MMAP_MAX`: 0 gives no block a span of its own; any other value is
///   accepted and changes nothing.
/// * `M_TRIM_THRESHOLD`: the bytes of wholly free spans kept for reuse;
///   beyond that they go back to the system at once (`-1`: all are kept).
/// * `M_TOP_PAD`, `M_ARENA_MAX`, `M_ARENA_TEST`: accepted, no effect
///   (memshim grows geometrically and has per-thread caches, not arenas).
/// * `M_MXFAST` (0 .. 160): accepted, no effect (no fastbins).
/// * `M_CHECK_ACTION`: accepted, no effect: misuse is always reported
///   through memshim's panic handler.
/// * `M_PERTURB`: only 0 (no perturbation, what memshim does) is accepted.
/// * anything else: refused.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn mallopt(param: c_int, value: c_int) -> c_int {
    // As glibc: the int converted to size_t.
    let v = value as isize as usize;
    let ok = match param {
        M_MMAP_THRESHOLD => crate::state::with(|s| s.heap.set_huge_threshold(v)).is_some(),
        M_MMAP_MAX if v == 0 => {
            crate::state::with(|s| s.heap.set_huge_threshold(usize::MAX)).is_some()
        }
        M_TRIM_THRESHOLD => crate::state::with(|s| s.heap.set_keep_max(v)).is_some(),
        M_MMAP_MAX | M_TOP_PAD | M_ARENA_MAX | M_ARENA_TEST | M_CHECK_ACTION => true,
        M_MXFAST => v <= 160,
        M_PERTURB => v == 0,
        _ => false,
    };
    c_int::from(ok)
}

/// glibc `malloc_trim`: `memshim_trim`; returns 1 if memory went back to
/// the system, else 0 (`pad` is ignored: nothing is kept beyond what trim
/// keeps anyway).
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    c_int::from(super::memshim::memshim_trim() > 0)
}

/// glibc `malloc_stats`: memshim's summary, written through the `stderr`
/// stream (as glibc does, so it interleaves with the program's own output).
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn malloc_stats() {
    // SAFETY: glibc's `stderr` is a valid stream for the life of the program.
    let err = unsafe { stderr };
    crate::dump(&mut |text: &str| {
        // SAFETY: a live buffer and the C library's standard error stream.
        unsafe { fwrite(text.as_ptr().cast(), 1, text.len(), err) };
    });
}

extern "C" {
    fn fwrite(ptr: *const c_void, size: usize, n: usize, stream: *mut c_void) -> usize;
    static stderr: *mut c_void;
}

/// glibc `malloc_info`: memshim's summary as one XML comment-free element
/// `<malloc version="memshim">` holding the text of `memshim_dump`. `options`
/// must be 0 (else EINVAL, returns -1).
///
/// # Safety
/// `stream` must be a valid `FILE *`.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub unsafe extern "C" fn malloc_info(options: c_int, stream: *mut c_void) -> c_int {
    if options != 0 || stream.is_null() {
        crate::platform::set_errno(crate::platform::EINVAL);
        return -1;
    }
    let mut put = |text: &str| {
        // SAFETY: a live buffer and the caller's stream.
        unsafe { fwrite(text.as_ptr().cast(), 1, text.len(), stream) };
    };
    put("<malloc version=\"memshim\">\n");
    crate::dump(&mut put);
    put("</malloc>\n");
    0
}
