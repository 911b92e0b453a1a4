//! A `no_std` kernel-style user of memshim: the heap is the global
//! allocator (so `alloc`'s `Vec`, `Box` and `String` work), one call with
//! the Multiboot magic and information starts the frame manager, and the
//! `x86_64` crate's frame-allocator traits (re-exported by memshim, so the
//! versions match) hand out physical frames. Prints to COM1 and leaves QEMU
//! through isa-debug-exit.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::{boxed::Box, format, string::String, vec::Vec};
use core::fmt::Write;
use memshim::frames::GlobalFrames;
use memshim::types::memshim_boot_config;
use memshim::x86_64::instructions::port::Port;
use memshim::x86_64::structures::paging::{FrameAllocator, FrameDeallocator, PhysFrame, Size4KiB};

core::arch::global_asm!(include_str!("boot.s"), options(att_syntax));

#[global_allocator]
static HEAP: memshim::MemShim = memshim::MemShim;

extern "C" {
    // From kernel.ld: the physical range of the image (identity-mapped).
    static kernel_start: u8;
    static kernel_end: u8;
}

/// COM1, polled.
struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            let mut status = Port::<u8>::new(0x3f8 + 5);
            let mut data = Port::<u8>::new(0x3f8);
            // SAFETY: COM1's line status and data registers; polling and
            // writing them has no other effect.
            unsafe {
                while status.read() & 0x20 == 0 {}
                data.write(b);
            }
        }
        Ok(())
    }
}

/// QEMU's isa-debug-exit: status 33 on success, 35 on failure.
fn exit(pass: bool) -> ! {
    let _ = writeln!(
        Serial,
        "memshim demo: {}",
        if pass { "PASS" } else { "FAIL" }
    );
    let mut port = Port::<u32>::new(0xf4);
    // SAFETY: the debug-exit device ends the VM; on real hardware the
    // write does nothing and the loop below halts.
    unsafe { port.write(if pass { 0x10 } else { 0x11 }) };
    loop {
        memshim::x86_64::instructions::hlt();
    }
}

fn check(ok: bool, what: &str, failures: &mut u32) {
    let _ = writeln!(Serial, "{} {what}", if ok { "ok  " } else { "FAIL" });
    *failures += u32::from(!ok);
}

/// Entered from boot.s in long mode with EAX and EBX from the boot loader.
#[no_mangle]
extern "C" fn kmain(magic: u32, info: u32) -> ! {
    let mut failures = 0;
    let image = (
        core::ptr::addr_of!(kernel_start) as u64,
        core::ptr::addr_of!(kernel_end) as u64,
    );
    let _ = writeln!(
        Serial,
        "memshim Rust kernel: image {:#x}-{:#x}, identity-mapped to 1 GiB: phys_limit {:#x}",
        image.0,
        image.1,
        1u64 << 30
    );

    // The static arena serves the heap before any init call.
    let early = Box::new(42u64);
    check(
        *early == 42,
        "Box before init (static arena)",
        &mut failures,
    );

    let cfg = memshim_boot_config {
        kernel_start: image.0, // physical
        kernel_end: image.1,
        phys_offset: 0,      // identity map
        phys_limit: 1 << 30, // the end of what boot.s maps
    };
    // SAFETY: `info` is the boot loader's structure, the first GiB is
    // identity-mapped writable, and usable RAM outside the image is free.
    let init =
        unsafe { memshim::frames::global::init_multiboot(magic, info as usize as *const u8, &cfg) };
    check(
        init.is_ok(),
        &format!("init_multiboot: {init:?}"),
        &mut failures,
    );

    // Several MiB: the heap grows from frames.
    let v: Vec<u64> = (0..1_000_000).collect();
    check(
        v.iter().sum::<u64>() == 499_999_500_000,
        "a Vec of 8 MB from frames",
        &mut failures,
    );
    let mut s = String::new();
    for i in 0..1000 {
        let _ = write!(s, "{i} ");
    }
    check(s.len() == 3890, "a String grown 1000 times", &mut failures);
    drop(v);

    let frame: Option<PhysFrame<Size4KiB>> = GlobalFrames.allocate_frame();
    check(
        frame.is_some_and(|f| f.start_address().as_u64() >= image.1),
        "GlobalFrames::allocate_frame (x86_64 crate trait)",
        &mut failures,
    );
    if let Some(f) = frame {
        // SAFETY: the frame came from allocate_frame and is unused.
        unsafe { GlobalFrames.deallocate_frame(f) };
    }

    drop(early);
    let stats = memshim::stats();
    check(
        stats.frames_total > 0 && memshim::check() == 0,
        "memshim::check",
        &mut failures,
    );
    exit(failures == 0)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = writeln!(Serial, "panic: {info}");
    exit(false)
}
