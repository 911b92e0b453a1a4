//! The global frame manager, end to end in its own process (it is global
//! state, so it cannot share the unit-test process): init from plain
//! ranges, the `x86_64` crate traits on `GlobalFrames`, stats and check,
//! and the heap growing from frames once they exist.

use memshim::frames::{global, GlobalFrames};
use memshim::types::{memshim_boot_config, memshim_range};
use x86_64::structures::paging::{FrameAllocator, FrameDeallocator, PhysFrame, Size4KiB};

const MIB: u64 = 1 << 20;

extern "C" {
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, off: i64) -> *mut u8;
}
const RAM: u64 = 32 * MIB;

#[test]
fn global_frames_x86_64_traits_and_heap_growth() {
    // Never unmapped: the global manager keeps its bitmap (and heap spans)
    // in it. Straight from mmap: this program's malloc is memshim's own.
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
    let ram = unsafe { mmap(std::ptr::null_mut(), RAM as usize, 3, 0x22, -1, 0) };
    assert!(ram as isize != -1);
    let ram = ram.cast::<u8>();
    let cfg = memshim_boot_config {
        kernel_start: MIB,
        kernel_end: 2 * MIB,
        phys_offset: ram as u64,
        phys_limit: RAM,
    };
    let usable = [memshim_range {
        base: 0,
        length: 256 * MIB,
    }];
    assert_eq!(global::alloc(), None, "nothing before init");
    // SAFETY: `ram` plays physical 0..32 MiB and is never freed.
    unsafe { global::init_ranges(&usable, &cfg) }.unwrap();
    // SAFETY: as above.
    let again = unsafe { global::init_ranges(&usable, &cfg) };
    assert_eq!(again, Err(memshim::Error::Already));

    let before = memshim::stats();
    assert!(before.frames_total > 0 && before.frames_free == before.frames_total);
    let frame: PhysFrame<Size4KiB> = GlobalFrames.allocate_frame().unwrap();
    let addr = frame.start_address().as_u64();
    assert!(
        addr >= 16 * MIB,
        "single frames come from above 16 MiB first"
    );
    assert_eq!(memshim::stats().frames_free, before.frames_free - 1);
    // SAFETY: the frame is unused.
    unsafe { GlobalFrames.deallocate_frame(frame) };
    assert_eq!(memshim::stats().frames_free, before.frames_free);
    assert_eq!(memshim::check(), 0);

    let dma = global::alloc_contiguous(16, 64 * 1024, 16 * MIB).unwrap();
    assert!(dma >= MIB && dma + 16 * 4096 <= 16 * MIB && dma % (64 * 1024) == 0);
    global::free_contiguous(dma, 16);
    assert_eq!(global::reserve(100 * MIB, 4096), Ok(()));
    assert_eq!(memshim::stats().frames_total, before.frames_total - 1);

    // The heap now grows from frames below phys_limit: a large block lands
    // inside `ram`, and frees give the frames back.
    let p = memshim::global::alloc(4 * MIB as usize, 16);
    assert!(!p.is_null());
    let inside = (ram as u64..ram as u64 + RAM).contains(&(p as u64));
    assert!(inside, "heap block {p:p} is not from frames");
    // SAFETY: a live 4 MiB block.
    unsafe { std::ptr::write_bytes(p, 0x5A, 4 * MIB as usize) };
    assert!(memshim::stats().frames_free < before.frames_free - 1000);
    // SAFETY: `p` came from alloc.
    unsafe { memshim::global::free(p) };
    assert_eq!(memshim::check(), 0);
}
