//! The caller's cache: thread-local on a Linux host, per-CPU in a kernel.
//!
//! [`Local::enter`] finds the cache and marks it busy for one operation;
//! dropping the guard ends it. While a cache is busy, a nested call on the
//! same thread or CPU (a signal handler, an interrupt, an NMI) gets `None`
//! and takes the locked path, so it never sees a cache half-way through.
//!
//! * Host: one initial-exec TLS slot holds the thread's cache (two
//!   instructions to read); while an operation runs it holds `BUSY`
//!   instead. A thread's first allocation attaches a cache; a pthread key
//!   destructor gives its slabs back when the thread ends.
//! * Kernel, nothing configured: every CPU shares cache 0, guarded by one
//!   uncontended atomic exchange (correct on any number of CPUs; a second
//!   CPU arriving meanwhile takes the locked path).
//! * Kernel, CPUs registered (`crate::platform::cpu`): each CPU
//!   has its own cache and a hit takes no atomic; in ring 0 interrupts are
//!   masked for the few instructions of the operation (so the thread cannot
//!   move to another CPU meanwhile).

use crate::heap::cache::Cache;
use core::sync::atomic::{compiler_fence, Ordering::*};

/// The caller's cache, busy until dropped.
pub struct Local {
    cache: &'static Cache,
    #[cfg(target_os = "none")]
    irq: Option<bool>,
}

impl Local {
    /// The cache of this thread or CPU, or `None`: none attached yet, the
    /// thread is ending, or the cache is busy (a nested call).
    #[inline(always)]
    pub fn enter() -> Option<Local> {
        imp::enter()
    }

    /// The cache.
    #[inline(always)]
    pub fn cache(&self) -> &'static Cache {
        self.cache
    }
}

impl Drop for Local {
    #[inline(always)]
    fn drop(&mut self) {
        compiler_fence(SeqCst);
        #[cfg(all(target_os = "linux", not(miri)))]
        imp::leave(self.cache);
        #[cfg(not(all(target_os = "linux", not(miri))))]
        self.cache.busy.store(0, Release);
        #[cfg(target_os = "none")]
        if let Some(enabled) = self.irq {
            crate::platform::bare::irq_restore(enabled);
        }
    }
}

/// Attaches a cache to the calling thread if it has none (host; a kernel
/// attaches per CPU on first use). Returns whether one is attached now.
#[cold]
pub fn attach() -> bool {
    imp::attach()
}

#[cfg(all(target_os = "linux", not(miri)))]
mod imp {
    use super::*;
    use crate::heap::cache::Backend;
    use crate::state::Global;
    use core::ffi::c_void;
    use core::sync::atomic::AtomicU32;

    // The thread's cache pointer: 0 none yet, DEAD while and after its
    // thread ends. Initial-exec TLS: `fs`-relative, with no call, in
    // executables and in a preloaded shared object alike.
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 3",
        ".globl memshim_tls_cache",
        ".hidden memshim_tls_cache",
        ".type memshim_tls_cache, @object",
        ".size memshim_tls_cache, 8",
        "memshim_tls_cache:",
        ".zero 8",
        ".popsection",
    );

    /// In the slot while an operation runs on the thread's cache.
    pub const BUSY: usize = 1;
    /// In the slot while and after the thread ends.
    const DEAD: usize = 2;

    /// The slot's offset from the thread pointer (constant for the
    /// program: the compiler may load it once per function).
    #[inline(always)]
    fn offset() -> usize {
        let off: usize;
        // SAFETY: loads the TP offset of memshim's own TLS variable (its GOT
        // entry, or an immediate once the linker relaxes it).
        unsafe {
            core::arch::asm!(
                "mov {o}, qword ptr [rip + memshim_tls_cache@GOTTPOFF]",
                o = out(reg) off,
                // `nomem`: the GOT entry never changes once relocated, so the
                // compiler may keep the offset in a register.
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        off
    }

    #[inline(always)]
    fn get() -> usize {
        let v: usize;
        // SAFETY: reads this thread's slot of memshim's own TLS variable.
        unsafe {
            core::arch::asm!(
                "mov {v}, qword ptr fs:[{o}]",
                v = out(reg) v,
                o = in(reg) offset(),
                options(nostack, readonly, preserves_flags)
            )
        };
        v
    }

    #[inline(always)]
    fn set(v: usize) {
        // SAFETY: writes this thread's slot of memshim's own TLS variable.
        unsafe {
            core::arch::asm!(
                "mov qword ptr fs:[{o}], {v}",
                o = in(reg) offset(),
                v = in(reg) v,
                options(nostack, preserves_flags)
            )
        };
    }

    #[inline(always)]
    fn set_busy() {
        // SAFETY: as `set`.
        unsafe {
            core::arch::asm!(
                "mov qword ptr fs:[{o}], {v}",
                o = in(reg) offset(),
                v = const BUSY,
                options(nostack, preserves_flags)
            )
        };
    }

    #[inline(always)]
    pub fn enter() -> Option<Local> {
        let v = get();
        if v <= DEAD {
            return None;
        }
        set_busy();
        compiler_fence(SeqCst);
        // SAFETY: a non-sentinel slot holds an attached cache; caches are
        // never freed.
        let cache: &'static Cache = unsafe { &*core::ptr::with_exposed_provenance::<Cache>(v) };
        Some(Local { cache })
    }

    #[inline(always)]
    pub fn leave(c: &Cache) {
        set(core::ptr::from_ref(c).addr());
    }

    /// 0: no key yet; 1: being made; 2 + key: made.
    static KEY: AtomicU32 = AtomicU32::new(0);

    pub fn attach() -> bool {
        if get() != 0 {
            return get() > DEAD;
        }
        let c = Global
            .locked(|h, src| h.attach_cache(src))
            .unwrap_or(core::ptr::null_mut());
        if c.is_null() {
            return false;
        }
        set(c.expose_provenance());
        // After the slot is set: pthread_setspecific may itself allocate.
        if let Some(key) = key() {
            // SAFETY: a key made by pthread_key_create; the value is the cache.
            unsafe { crate::platform::host::pthread_setspecific(key, c.cast()) };
        }
        true
    }

    fn key() -> Option<u32> {
        loop {
            match KEY.load(Acquire) {
                0 => {
                    if KEY.compare_exchange(0, 1, AcqRel, Acquire).is_err() {
                        continue;
                    }
                    let mut key = 0u32;
                    // SAFETY: a valid out-pointer and an extern "C" destructor.
                    let rc = unsafe {
                        crate::platform::host::pthread_key_create(&mut key, Some(thread_exit))
                    };
                    KEY.store(if rc == 0 { 2 + key } else { 0 }, Release);
                    if rc != 0 {
                        return None;
                    }
                }
                1 => core::hint::spin_loop(),
                k => return Some(k - 2),
            }
        }
    }

    /// The pthread key destructor: the ending thread's slabs go back to the
    /// heap; anything it allocates from here on takes the locked path.
    unsafe extern "C" fn thread_exit(v: *mut c_void) {
        set(DEAD);
        // SAFETY: the key's value is the thread's attached cache.
        let c = unsafe { &*v.cast::<Cache>() };
        crate::heap::cache::drain_pending(&Global, c);
        let _ = Global.locked(|h, src| h.detach_cache(src, c));
    }

    /// In a child after `fork`: the cache of the only thread left.
    pub fn current() -> usize {
        get()
    }
}

#[cfg(target_os = "none")]
mod imp {
    pub use super::cpu::{attach, enter};
}

#[cfg(not(any(all(target_os = "linux", not(miri)), target_os = "none")))]
mod imp {
    use super::*;

    #[inline(always)]
    pub fn enter() -> Option<Local> {
        None
    }

    pub fn attach() -> bool {
        false
    }
}

/// After `fork`, in the child: the cache of the only thread left, as an
/// address (0: none), or `None` when the fork interrupted an operation on
/// that cache (a signal handler), which then resumes and owns it.
#[cfg(target_os = "linux")]
pub fn current_address() -> Option<usize> {
    #[cfg(not(miri))]
    return match imp::current() {
        imp::BUSY => None,
        v => Some(v),
    };
    #[cfg(miri)]
    Some(0)
}

/// Per-CPU caches in a kernel: which CPU a caller runs on is
/// `crate::platform::cpu`'s business; here, the cache of each.
#[cfg(target_os = "none")]
pub mod cpu {
    use super::*;
    use crate::heap::cache::Backend;
    use crate::platform::cpu::{self as id, MAX_CPUS};
    use crate::state::Global;
    use core::ptr;
    use core::sync::atomic::AtomicPtr;

    static CACHES: [AtomicPtr<Cache>; MAX_CPUS] =
        [const { AtomicPtr::new(ptr::null_mut()) }; MAX_CPUS];

    /// CPU `cpu` went offline: its cache's slabs go back to the heap. The
    /// CPU must not run memshim code meanwhile.
    pub fn offline(cpu: u32) {
        let Some(slot) = CACHES.get(cpu as usize) else {
            return;
        };
        let c = slot.load(Acquire);
        if c.is_null() {
            return;
        }
        // SAFETY: attached caches are never freed.
        let cache = unsafe { &*c };
        crate::heap::cache::drain_pending(&Global, cache);
        let _ = Global.locked(|h, src| h.adopt_all(src, cache));
    }

    #[inline(always)]
    pub fn enter() -> Option<Local> {
        if !id::registered() {
            let c = CACHES[0].load(Acquire);
            if c.is_null() {
                return None;
            }
            // SAFETY: attached caches are never freed.
            let cache: &'static Cache = unsafe { &*c };
            if cache.busy.swap(1, Acquire) != 0 {
                return None;
            }
            return Some(Local { cache, irq: None });
        }
        let irq = id::ring0().then(crate::platform::bare::irq_save);
        let c = id::current().map_or(ptr::null_mut(), |cpu| CACHES[cpu].load(Acquire));
        // SAFETY: attached caches are never freed.
        match unsafe { c.as_ref() } {
            Some(cache) if cache.busy.load(Relaxed) == 0 => {
                cache.busy.store(1, Relaxed);
                compiler_fence(SeqCst);
                Some(Local { cache, irq })
            }
            _ => {
                if let Some(enabled) = irq {
                    crate::platform::bare::irq_restore(enabled);
                }
                None
            }
        }
    }

    /// Attaches the cache of the CPU the caller runs on, if it has none.
    pub fn attach() -> bool {
        let id = if id::registered() {
            let irq = id::ring0().then(crate::platform::bare::irq_save);
            let cpu = id::current();
            if let Some(enabled) = irq {
                crate::platform::bare::irq_restore(enabled);
            }
            match cpu {
                Some(cpu) => cpu,
                None => return false,
            }
        } else {
            0
        };
        if !CACHES[id].load(Acquire).is_null() {
            return true;
        }
        let _ = Global.locked(|h, src| {
            if CACHES[id].load(Acquire).is_null() {
                let c = h.attach_cache(src);
                CACHES[id].store(c, Release);
            }
        });
        !CACHES[id].load(Acquire).is_null()
    }
}
