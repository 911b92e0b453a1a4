//! The global frame manager (inside memshim's one lock): what the C
//! functions and Rust kernels call. Faults are detected under the lock and
//! reported through the panic hook after it is released.

use super::FrameFault;
use crate::error::Error;
use crate::heap::cache::Backend;
use crate::state;
use crate::types::{memshim_boot_config, memshim_range};
use x86_64::structures::paging::{FrameAllocator, FrameDeallocator, PhysFrame, Size4KiB};
use x86_64::PhysAddr;

/// Starts the global frame manager from Multiboot 1 or 2 boot information;
/// from then on the heap also grows from frames. The Rust form of
/// `memshim_init_multiboot` (the same checks; `Error::code` gives its C
/// code): `magic` is EAX at entry, `info` the information's virtual
/// address (physical + `phys_offset`).
///
/// ```no_run
/// use memshim::types::memshim_boot_config;
///
/// fn start(magic: u32, info: *const u8) -> Result<(), memshim::Error> {
///     let cfg = memshim_boot_config {
///         kernel_start: 0x10_0000, // physical range of the kernel image
///         kernel_end: 0x24_0000,
///         phys_offset: 0,
///         phys_limit: 1 << 30, // the end of the identity map
///     };
///     // SAFETY: `info` is what the boot loader passed, physical memory
///     // below 1 GiB is mapped at 0, and usable RAM is free for memshim.
///     unsafe { memshim::frames::global::init_multiboot(magic, info, &cfg) }
/// }
/// # fn main() {}
/// ```
///
/// # Safety
/// As for [`super::FrameManager::init_multiboot`].
pub unsafe fn init_multiboot(
    magic: u32,
    info: *const u8,
    cfg: &memshim_boot_config,
) -> Result<(), Error> {
    // SAFETY: forwarded contract.
    state::with(|s| unsafe { s.frames.init_multiboot(magic, info, cfg) })
        .unwrap_or(Err(Error::Reentered))
}

/// Starts the global frame manager from a list of usable ranges.
///
/// # Safety
/// As for [`super::FrameManager::init_ranges`].
pub unsafe fn init_ranges(
    usable: &[memshim_range],
    cfg: &memshim_boot_config,
) -> Result<(), Error> {
    // SAFETY: forwarded contract.
    state::with(|s| unsafe { s.frames.init_ranges(usable, cfg) }).unwrap_or(Err(Error::Reentered))
}

/// One frame's physical address, or `None`.
pub fn alloc() -> Option<u64> {
    take(|f| f.alloc())
}

/// See [`super::FrameManager::alloc_contiguous`].
pub fn alloc_contiguous(count: usize, align: u64, below: u64) -> Option<u64> {
    take(|f| f.alloc_contiguous(count, align, below))
}

/// Runs `get` on the frame manager. When it finds nothing, the heap first
/// gives back what it keeps only for speed (wholly free spans, empty slabs:
/// up to 64 MiB of frames) and `get` runs once more, so frames the heap
/// does not use are never out of the kernel's reach.
fn take(get: impl Fn(&mut super::FrameManager) -> Option<u64>) -> Option<u64> {
    if let Some(p) = state::with(|s| get(&mut s.frames)).flatten() {
        return Some(p);
    }
    if !state::Global.locked(|heap, src| heap.release_reserves(src))? {
        return None;
    }
    state::with(|s| get(&mut s.frames)).flatten()
}

fn report(r: Result<(), FrameFault>) {
    if let Err(fault) = r {
        crate::panic::report(format_args!("{}", fault));
    }
}

/// Gives back one frame; misuse is reported through the panic hook.
pub fn free(phys: u64) {
    free_contiguous(phys, 1);
}

/// Gives back `count` frames; misuse is reported through the panic hook.
/// A frame the heap took from the frame manager (for a span or metadata)
/// is refused, whole run and all: the heap's own record says so, the frame
/// manager keeps none.
pub fn free_contiguous(phys: u64, count: usize) {
    // A re-entrant call was reported already and frees nothing.
    report(
        state::with(|s| {
            if let Some(f) = heap_frame_in(s, phys, count) {
                return Err(FrameFault::Heap(f));
            }
            if count == 1 {
                s.frames.free(phys)
            } else {
                s.frames.free_contiguous(phys, count)
            }
        })
        .unwrap_or(Ok(())),
    );
}

/// The first frame of `phys .. phys + count` frames that the heap holds.
fn heap_frame_in(s: &state::State, phys: u64, count: usize) -> Option<u64> {
    let len = (count as u64).checked_mul(super::FRAME)?;
    let v = s.frames.virt_of(phys)?;
    let end = v.checked_add(usize::try_from(len).ok()?)?;
    let held = s.heap.first_from_frames(v, end)?;
    Some(phys + (held - v) as u64)
}

/// See [`super::FrameManager::reserve`].
pub fn reserve(phys: u64, len: u64) -> Result<(), Error> {
    state::with(|s| s.frames.reserve(phys, len)).unwrap_or(Err(Error::Reentered))
}

/// The global frame manager as an `x86_64` crate (0.15, re-exported as
/// [`crate::x86_64`]) frame allocator, for building page tables once the
/// frame manager is initialised ([`init_multiboot`] or [`init_ranges`], or
/// the C call). Before that it has no frames to give.
///
/// ```no_run
/// use memshim::frames::GlobalFrames;
/// use memshim::x86_64::structures::paging::{
///     FrameAllocator, Mapper, OffsetPageTable, Page, PageTableFlags, Size4KiB,
/// };
/// use memshim::x86_64::VirtAddr;
///
/// fn map_one(mapper: &mut OffsetPageTable<'_>, at: VirtAddr) {
///     let frame = GlobalFrames.allocate_frame().expect("out of frames");
///     let page = Page::<Size4KiB>::containing_address(at);
///     let flags = PageTableFlags::PRESENT | PageTableFlags::WRITABLE;
///     // SAFETY: the frame is fresh and the page was unmapped.
///     unsafe { mapper.map_to(page, frame, flags, &mut GlobalFrames) }
///         .expect("map_to")
///         .flush();
/// }
/// # fn main() {}
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct GlobalFrames;

// SAFETY: every frame comes from the bitmap, marked allocated under the
// lock before it is returned, so no frame is handed out twice until freed.
unsafe impl FrameAllocator<Size4KiB> for GlobalFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        let phys = alloc()?;
        match PhysAddr::try_new(phys)
            .ok()
            .and_then(|a| PhysFrame::from_start_address(a).ok())
        {
            Some(frame) => Some(frame),
            None => {
                free(phys);
                None
            }
        }
    }
}

impl FrameDeallocator<Size4KiB> for GlobalFrames {
    unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
        free(frame.start_address().as_u64());
    }
}
