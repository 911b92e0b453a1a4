//! The replaceable global `operator new` / `operator delete` family (C++17
//! [new.delete]), so C++ code is served by memshim too: a C++ program that
//! allocates only with `new` references `_Znwm`, which makes the linker take
//! memshim's object (and with it every other entry point) before libstdc++'s.
//!
//! Itanium C++ ABI names, `size_t` = `unsigned long` (m), `align_val_t` an
//! enum of `size_t`:
//!
//! | C++ | symbol |
//! |---|---|
//! | `new(size_t)`, `new[](size_t)` | `_Znwm`, `_Znam` |
//! | `new(size_t, align_val_t)`, `new[]` | `_ZnwmSt11align_val_t`, `_ZnamSt11align_val_t` |
//! | `new(size_t, const nothrow_t&)`, `new[]` | `_ZnwmRKSt9nothrow_t`, `_ZnamRKSt9nothrow_t` |
//! | `new(size_t, align_val_t, const nothrow_t&)`, `new[]` | `_ZnwmSt11align_val_tRKSt9nothrow_t`, `_ZnamSt11align_val_tRKSt9nothrow_t` |
//! | `delete(void*)`, `delete[]`, sized (`size_t`), aligned, nothrow | `_ZdlPv`, `_ZdaPv`, `_ZdlPvm`, `_ZdaPvm`, `_ZdlPvSt11align_val_t`, ... (12 in all) |
//!
//! Semantics. Every `new` returns a block aligned to 16 bytes
//! (`__STDCPP_DEFAULT_NEW_ALIGNMENT__` on x86_64) or to the requested
//! `align_val_t`; `new(0)` returns a unique pointer. On failure the
//! throwing forms do what libstdc++'s do: call the installed
//! `std::new_handler` and retry while there is one, then throw
//! `std::bad_alloc` (at once for an alignment that is not a power of two).
//! The nothrow forms try the same way and return NULL instead of
//! throwing; a new-handler that throws from inside one ends the program
//! (the nothrow forms are `noexcept`). `delete` of NULL does nothing; the
//! sized and aligned forms free like the plain one (the heap knows every
//! block's size and alignment); misuse is reported like `free`'s.
//!
//! memshim has no C++ runtime of its own. On the Linux host it reaches
//! libstdc++ through weak references (`std::get_new_handler`,
//! `std::__throw_bad_alloc`): the throwing forms are a small assembly
//! routine with unwind information, and the throw is a tail call, so the
//! exception starts in the caller's frame and never crosses Rust code
//! (which is built with panic=abort). A weak reference does not pull a
//! member out of a static `libstdc++.a`: a `-static` program that uses no
//! `std::vector`, `std::string` or the like (which reference
//! `std::__throw_bad_alloc` themselves) links with
//! `-Wl,--undefined=_ZSt17__throw_bad_allocv`, or a failing `new` ends on
//! the panic path below with a message saying so. Without libstdc++ (a freestanding
//! C++ kernel, the kernel archive) nothing can be thrown: a throwing `new`
//! that fails reports "operator new: out of memory" through the panic
//! handler and then halts (freestanding) or aborts (host), even if the
//! handler returns; the nothrow forms return NULL.

use crate::global;
use crate::heap::MIN_ALIGN;
use core::ffi::c_void;
use core::ptr;

/// The address of a weak symbol through the GOT (0 when nothing defines it).
#[cfg(target_os = "linux")]
macro_rules! weak_address {
    ($name:literal) => {{
        let f: usize;
        // SAFETY: only loads the GOT entry of a weak symbol.
        unsafe {
            core::arch::asm!(
                concat!(".weak ", $name),
                concat!("mov {0}, qword ptr [rip + ", $name, "@GOTPCREL]"),
                out(reg) f,
                options(nostack, readonly, preserves_flags)
            )
        };
        f
    }};
}

/// One attempt: `size` bytes aligned to `align` (0: the default, 16), or
/// NULL. Called from the assembly below.
extern "C" fn try_alloc(size: usize, align: usize) -> *mut c_void {
    global::alloc(size, align.max(MIN_ALIGN)).cast()
}

/// The `std::new_handler` to call before the next attempt, or NULL (no
/// handler installed, no C++ runtime, or an impossible alignment, which no
/// handler can cure). Called from the assembly below.
extern "C" fn new_handler(align: usize) -> usize {
    if align != 0 && !align.is_power_of_two() {
        return 0;
    }
    #[cfg(target_os = "linux")]
    {
        let get = weak_address!("_ZSt15get_new_handlerv");
        if get != 0 {
            // SAFETY: a non-zero address is libstdc++'s
            // `std::new_handler std::get_new_handler() noexcept`.
            let get: extern "C" fn() -> usize = unsafe { core::mem::transmute(get) };
            return get();
        }
    }
    0
}

/// libstdc++'s `std::__throw_bad_alloc()`, or NULL when there is no C++
/// runtime. Called from the assembly below, which jumps to it.
extern "C" fn bad_alloc_thrower() -> usize {
    #[cfg(target_os = "linux")]
    {
        weak_address!("_ZSt17__throw_bad_allocv")
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// A throwing `new` failed and nothing can throw: the panic path.
extern "C" fn out_of_memory(size: usize, align: usize) -> ! {
    #[cfg(target_os = "linux")]
    let why = "std::__throw_bad_alloc is not linked (a -static program that uses no \
               std::vector or std::string: link with -Wl,--undefined=_ZSt17__throw_bad_allocv)";
    #[cfg(not(target_os = "linux"))]
    let why = "no C++ runtime to throw std::bad_alloc";
    crate::panic::fatal(format_args!(
        "operator new: out of memory ({size} bytes, alignment {}), and {why}",
        align.max(MIN_ALIGN)
    ))
}

// The throwing forms: rdi = size, rsi = alignment (0: default). Three
// callee-saved slots keep size and alignment across the calls and the
// stack 16-byte aligned; the CFI lets a new-handler's exception unwind
// through this frame, and the final throw is a tail call.
// (`__memshim_cxx_new` is hidden: the exported names below jump to it.)
core::arch::global_asm!(
    ".pushsection .text.memshim_cxx_new,\"ax\",@progbits",
    ".globl __memshim_cxx_new",
    ".hidden __memshim_cxx_new",
    ".type __memshim_cxx_new,@function",
    "__memshim_cxx_new:",
    "    .cfi_startproc",
    "    push %rbx",
    "    .cfi_adjust_cfa_offset 8",
    "    .cfi_rel_offset %rbx, 0",
    "    push %r12",
    "    .cfi_adjust_cfa_offset 8",
    "    .cfi_rel_offset %r12, 0",
    "    sub $8, %rsp",
    "    .cfi_adjust_cfa_offset 8",
    "    mov %rdi, %rbx",
    "    mov %rsi, %r12",
    "1:  mov %rbx, %rdi",
    "    mov %r12, %rsi",
    "    call {try_alloc}",
    "    test %rax, %rax",
    "    jz 2f",
    "    .cfi_remember_state",
    "    add $8, %rsp",
    "    .cfi_adjust_cfa_offset -8",
    "    pop %r12",
    "    .cfi_adjust_cfa_offset -8",
    "    pop %rbx",
    "    .cfi_adjust_cfa_offset -8",
    "    ret",
    "    .cfi_restore_state",
    "2:  mov %r12, %rdi",
    "    call {new_handler}",
    "    test %rax, %rax",
    "    jz 3f",
    "    call *%rax",
    "    jmp 1b",
    "3:  call {thrower}",
    "    test %rax, %rax",
    "    jz 4f",
    "    add $8, %rsp",
    "    pop %r12",
    "    pop %rbx",
    "    jmp *%rax",
    "4:  mov %rbx, %rdi",
    "    mov %r12, %rsi",
    "    call {out_of_memory}",
    "    ud2",
    "    .cfi_endproc",
    ".size __memshim_cxx_new, . - __memshim_cxx_new",
    ".popsection",
    try_alloc = sym try_alloc,
    new_handler = sym new_handler,
    thrower = sym bad_alloc_thrower,
    out_of_memory = sym out_of_memory,
    options(att_syntax)
);

/// `operator new(size_t)`: never NULL; throws `std::bad_alloc` (see the
/// module docs). A jump with no frame of its own, so it needs no unwind
/// information.
#[unsafe(naked)]
#[export_name = "_Znwm"]
pub extern "C" fn new_plain(size: usize) -> *mut c_void {
    core::arch::naked_asm!("xor esi, esi", "jmp __memshim_cxx_new")
}

/// `operator new[](size_t)`, as `operator new(size_t)`.
#[unsafe(naked)]
#[export_name = "_Znam"]
pub extern "C" fn new_array(size: usize) -> *mut c_void {
    core::arch::naked_asm!("xor esi, esi", "jmp __memshim_cxx_new")
}

/// `operator new(size_t, std::align_val_t)`: aligned to `align`.
#[unsafe(naked)]
#[export_name = "_ZnwmSt11align_val_t"]
pub extern "C" fn new_aligned(size: usize, align: usize) -> *mut c_void {
    core::arch::naked_asm!("jmp __memshim_cxx_new")
}

/// `operator new[](size_t, std::align_val_t)`.
#[unsafe(naked)]
#[export_name = "_ZnamSt11align_val_t"]
pub extern "C" fn new_array_aligned(size: usize, align: usize) -> *mut c_void {
    core::arch::naked_asm!("jmp __memshim_cxx_new")
}

/// The nothrow forms: the throwing forms' loop, NULL instead of a throw.
fn new_nothrow(size: usize, align: usize) -> *mut c_void {
    loop {
        let p = try_alloc(size, align);
        if !p.is_null() {
            return p;
        }
        let h = new_handler(align);
        if h == 0 {
            return ptr::null_mut();
        }
        // SAFETY: a non-zero value is the installed `std::new_handler`,
        // `void (*)()`. If it throws, the unwind stops at this `extern "C"`
        // boundary and the program aborts, as for a `noexcept` function.
        let h: extern "C" fn() = unsafe { core::mem::transmute(h) };
        h();
    }
}

/// `operator new(size_t, const std::nothrow_t&) noexcept`.
#[export_name = "_ZnwmRKSt9nothrow_t"]
pub extern "C" fn new_nothrow_plain(size: usize, _tag: *const c_void) -> *mut c_void {
    new_nothrow(size, 0)
}

/// `operator new[](size_t, const std::nothrow_t&) noexcept`.
#[export_name = "_ZnamRKSt9nothrow_t"]
pub extern "C" fn new_array_nothrow(size: usize, _tag: *const c_void) -> *mut c_void {
    new_nothrow(size, 0)
}

/// `operator new(size_t, std::align_val_t, const std::nothrow_t&) noexcept`.
#[export_name = "_ZnwmSt11align_val_tRKSt9nothrow_t"]
pub extern "C" fn new_aligned_nothrow(
    size: usize,
    align: usize,
    _tag: *const c_void,
) -> *mut c_void {
    new_nothrow(size, align)
}

/// `operator new[](size_t, std::align_val_t, const std::nothrow_t&) noexcept`.
#[export_name = "_ZnamSt11align_val_tRKSt9nothrow_t"]
pub extern "C" fn new_array_aligned_nothrow(
    size: usize,
    align: usize,
    _tag: *const c_void,
) -> *mut c_void {
    new_nothrow(size, align)
}

/// Every `operator delete`: NULL does nothing; otherwise `free`.
///
/// # Safety
/// `p` must be NULL or a live block from memshim.
unsafe fn delete(p: *mut c_void) {
    // SAFETY: forwarded contract; the heap validates the pointer.
    unsafe { global::free(p.cast()) }
}

/// Defines `operator delete` forms: symbol, Rust name, extra parameters.
macro_rules! deletes {
    ($($sym:literal $name:ident ($($arg:ident: $ty:ty),*);)*) => {$(
        /// An `operator delete` (see the module docs); the extra
        /// arguments (size, alignment, nothrow tag) are not needed to free.
        ///
        /// # Safety
        /// `p` must be NULL or a live block from memshim's `new`.
        #[export_name = $sym]
        pub unsafe extern "C" fn $name(p: *mut c_void $(, $arg: $ty)*) {
            $(let _ = $arg;)*
            // SAFETY: forwarded contract.
            unsafe { delete(p) }
        }
    )*};
}

deletes! {
    "_ZdlPv" delete_plain();
    "_ZdaPv" delete_array();
    "_ZdlPvm" delete_sized(size: usize);
    "_ZdaPvm" delete_array_sized(size: usize);
    "_ZdlPvSt11align_val_t" delete_aligned(align: usize);
    "_ZdaPvSt11align_val_t" delete_array_aligned(align: usize);
    "_ZdlPvmSt11align_val_t" delete_sized_aligned(size: usize, align: usize);
    "_ZdaPvmSt11align_val_t" delete_array_sized_aligned(size: usize, align: usize);
    "_ZdlPvRKSt9nothrow_t" delete_nothrow(tag: *const c_void);
    "_ZdaPvRKSt9nothrow_t" delete_array_nothrow(tag: *const c_void);
    "_ZdlPvSt11align_val_tRKSt9nothrow_t" delete_aligned_nothrow(align: usize, tag: *const c_void);
    "_ZdaPvSt11align_val_tRKSt9nothrow_t" delete_array_aligned_nothrow(align: usize, tag: *const c_void);
}
