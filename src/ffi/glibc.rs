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

/// glibc `mallopt`: memshim has no tunables; returns 0 (not applied).
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn mallopt(_param: c_int, _value: c_int) -> c_int {
    0
}

/// glibc `malloc_trim`: `memshim_trim`; returns 1 if memory went back to
/// the system, else 0 (`pad` is ignored: nothing is kept beyond what trim
/// keeps anyway).
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn malloc_trim(_pad: usize) -> c_int {
    c_int::from(super::memshim::memshim_trim() > 0)
}

/// glibc `malloc_stats`: memshim's summary on stderr.
#[cfg(not(memshim_no_std_decls))]
#[no_mangle]
pub extern "C" fn malloc_stats() {
    crate::dump(&mut |text: &str| {
        // SAFETY: writing a live buffer to fd 2.
        unsafe { crate::platform::host::write(2, text.as_ptr().cast(), text.len()) };
    });
}

extern "C" {
    fn fwrite(ptr: *const c_void, size: usize, n: usize, stream: *mut c_void) -> usize;
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
