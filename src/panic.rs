//! The panic hook: where detected misuse and internal failures are reported.
//!
//! Faults are reported *after* the global lock is released, so a handler
//! may log, allocate, or even return. If it returns, the faulting call does
//! nothing further (see the C API docs): the heap was not modified.

use core::ffi::{c_char, c_void};
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, Ordering};

/// A C panic handler: `msg` is NUL-terminated and also `len` bytes long.
pub type PanicHandler = unsafe extern "C" fn(msg: *const c_char, len: usize, ctx: *mut c_void);

static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static CONTEXT: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Installs `handler` (or restores the default with `None`).
pub fn set_handler(handler: Option<PanicHandler>, ctx: *mut c_void) {
    CONTEXT.store(ctx, Ordering::Release);
    let raw = handler.map_or(core::ptr::null_mut(), |h| h as *mut ());
    HANDLER.store(raw, Ordering::Release);
}

/// A fixed buffer that truncates instead of failing; messages stay short.
struct MsgBuf {
    buf: [u8; 256],
    len: usize,
}

impl Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len; // keep one byte for the NUL
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Reports a fault. Returns only if a user handler is installed and returns.
pub fn report(args: fmt::Arguments<'_>) {
    let mut m = MsgBuf {
        buf: [0; 256],
        len: 0,
    };
    let _ = m.write_fmt(args);
    m.buf[m.len] = 0;
    let raw = HANDLER.load(Ordering::Acquire);
    if raw.is_null() {
        default_handler(&m.buf[..m.len]);
    }
    // SAFETY: `raw` was stored from a `PanicHandler` in `set_handler`.
    let handler: PanicHandler = unsafe { core::mem::transmute::<*mut (), PanicHandler>(raw) };
    // SAFETY: the message buffer is NUL-terminated and `len` bytes long; the
    // context is whatever the user registered with the handler.
    unsafe {
        handler(
            m.buf.as_ptr().cast(),
            m.len,
            CONTEXT.load(Ordering::Acquire),
        )
    };
}

/// Reports through the default handler only (message and abort/halt):
/// for faults where calling the user's handler could recurse.
pub fn fatal_default(args: fmt::Arguments<'_>) -> ! {
    let mut m = MsgBuf {
        buf: [0; 256],
        len: 0,
    };
    let _ = m.write_fmt(args);
    default_handler(&m.buf[..m.len])
}

/// Reports a fault and never returns, even if the user handler does.
pub fn fatal(args: fmt::Arguments<'_>) -> ! {
    report(args);
    stop()
}

fn default_handler(msg: &[u8]) -> ! {
    #[cfg(target_os = "linux")]
    {
        use crate::platform::host::write;
        // SAFETY: writing a live byte buffer to fd 2; errors are ignored, we abort next.
        unsafe {
            write(2, b"memshim: ".as_ptr().cast(), 9);
            write(2, msg.as_ptr().cast(), msg.len());
            write(2, b"\n".as_ptr().cast(), 1);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = msg;
    stop()
}

/// Ends the program: `abort()` on the host, halt when freestanding.
pub fn stop() -> ! {
    #[cfg(target_os = "linux")]
    // SAFETY: abort has no preconditions.
    unsafe {
        crate::platform::host::abort()
    }
    #[cfg(target_os = "none")]
    crate::platform::bare::halt_forever();
    #[cfg(not(any(target_os = "linux", target_os = "none")))]
    loop {
        core::hint::spin_loop();
    }
}
