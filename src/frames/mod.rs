//! Physical frame manager: a bitmap of 4 KiB frames fed from the boot
//! loader's memory map, with a summary tree for O(1) single-frame
//! allocation at any fill level, an index of free runs for constrained
//! contiguous runs (count, alignment, `below`) in O(levels), and heap
//! growth from frames. Every call but init and `check` takes bounded time
//! (plus the frames it marks), so it can run with interrupts off.
//!
//! * Frames below 1 MiB are never handed out. Single frames come from above
//!   16 MiB first (next fit from a hint), so the ISA-DMA zone stays free for
//!   [`FrameManager::alloc_contiguous`].
//! * Physical memory is reached through `phys_offset` only (virtual =
//!   physical + offset) and touched only below `phys_limit`: the bitmap and
//!   heap frames live there; frames above are tracked and handed out.
//! * Each frame is free, allocated or reserved (holes in the map, below
//!   1 MiB, kernel, boot info, modules, the bitmap, `reserve`). Freeing a
//!   frame that is free or reserved is a [`FrameFault`], reported through the
//!   panic hook by the global wrappers.
//! * A contiguous run is given back whole: the bitmap marks each frame
//!   allocated with the one before it, so freeing part of a run (one of
//!   its frames, or a range that starts or ends inside it) is a fault too,
//!   rather than a run that can never be freed again.
//!
//! * Frames given to the heap (`heap_grow`) are remembered until the heap
//!   gives them back, so freeing one through `free` is a fault too.
//! * RAM above 1 TiB is ignored: it caps the bitmap (and the work of init)
//!   at about 113 MiB whatever a map claims.
//!
//! Map: [`bitmap`] (the bit operations), `runs` (the free-run index),
//! [`boot`] (boot-info parsing), `place` (where the bitmap goes),
//! [`global`] (the global instance, `GlobalFrames` for the `x86_64` crate).

pub mod bitmap;
pub mod boot;
pub mod global;
mod place;
mod runs;
#[cfg(test)]
mod tests;

pub use global::GlobalFrames;

use crate::error::Error;
use crate::types::{memshim_boot_config, memshim_range};
use bitmap::{Bitmap, Shape};
use boot::{BootMap, Multiboot1, Multiboot2, Phys, Ranges};
use core::fmt;
use core::ptr::NonNull;
use place::lowest_gap;

/// Frame size.
pub(crate) const FRAME: u64 = 4096;
/// First frame ever handed out (1 MiB).
const LOW: u64 = (1 << 20) / FRAME;
/// First frame of the preferred zone for single frames (16 MiB).
const HIGH: u64 = (16 << 20) / FRAME;
/// The architectural physical address limit (52 bits).
const MAX_PHYS: u64 = 1 << 52;
/// Usable RAM at or above this (1 TiB) is ignored: a bogus or huge entry
/// would otherwise make a bitmap of hundreds of GiB that init writes in
/// full. 1 TiB needs a 113 MiB block (3.5 bits a frame).
const MAX_TRACKED: u64 = 1 << 40;
/// Misuse found when frames are given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameFault {
    /// The frame manager was never initialised.
    NotInitialised(u64),
    /// The address is not 4 KiB-aligned.
    Misaligned(u64),
    /// The address is not in RAM the frame manager tracks.
    NotTracked(u64),
    /// The frame is reserved: it was never handed out.
    Reserved(u64),
    /// The frame is already free.
    DoubleFree(u64),
    /// The frame holds part of the heap (it came from `heap_grow`); found
    /// by the heap's own record, not the frame manager's.
    Heap(u64),
    /// The free would give back part of a contiguous run: `at` is the
    /// address freed, `start` and `frames` the run it would split.
    Split {
        /// The address passed to the free.
        at: u64,
        /// The run's first frame.
        start: u64,
        /// The run's length in frames.
        frames: u64,
    },
}

impl fmt::Display for FrameFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameFault::NotInitialised(a) => write!(
                f,
                "frame free of {:#x} before the frame manager was initialised",
                a
            ),
            FrameFault::Misaligned(a) => write!(f, "frame free of unaligned address {:#x}", a),
            FrameFault::NotTracked(a) => {
                write!(
                    f,
                    "frame free of {:#x}: not RAM the frame manager tracks",
                    a
                )
            }
            FrameFault::Reserved(a) => write!(
                f,
                "frame free of reserved frame {:#x}: it was never allocated",
                a
            ),
            FrameFault::DoubleFree(a) => write!(f, "double free of frame {:#x}", a),
            FrameFault::Heap(a) => write!(
                f,
                "frame free of {:#x}: it belongs to the heap (memshim's malloc took it from the frame manager)",
                a
            ),
            FrameFault::Split { at, start, frames } => write!(
                f,
                "frame free of {:#x} would split the contiguous run of {} frames at {:#x}: free the whole run with memshim_frame_free_contiguous({:#x}, {})",
                at, frames, start, start, frames
            ),
        }
    }
}

/// The bitmap block, once placed.
struct Table {
    words: NonNull<u64>,
    shape: Shape,
    phys: u64,
}

impl Table {
    fn view(&self) -> Bitmap<'_, &[u64]> {
        // SAFETY: `words` points to `shape.words()` words of RAM reserved for
        // the table at init (see `FrameManager::init`'s contract); shared
        // access through `&self`.
        let w = unsafe { core::slice::from_raw_parts(self.words.as_ptr(), self.shape.words()) };
        Bitmap::new(w, &self.shape)
    }

    fn view_mut(&mut self) -> Bitmap<'_, &mut [u64]> {
        // SAFETY: as in `view`; exclusive through `&mut self`.
        let w = unsafe { core::slice::from_raw_parts_mut(self.words.as_ptr(), self.shape.words()) };
        Bitmap::new(w, &self.shape)
    }
}

/// The frame manager. Inactive until initialised. The global one (what
/// the C functions and [`GlobalFrames`] use) lives inside memshim's lock
/// (see [`global`]); a local one is for tests and special cases.
///
/// On a host, a buffer can play physical RAM (`phys_offset` = its
/// address):
///
/// ```
/// use memshim::frames::FrameManager;
/// use memshim::types::{memshim_boot_config, memshim_range};
///
/// const MIB: u64 = 1 << 20;
/// let layout = std::alloc::Layout::from_size_align(16 << 20, 4096).unwrap();
/// // SAFETY: non-zero size; the buffer outlives the manager below.
/// let ram = unsafe { std::alloc::alloc_zeroed(layout) };
/// assert!(!ram.is_null());
/// let cfg = memshim_boot_config {
///     kernel_start: MIB,      // physical 1..2 MiB: "the kernel"
///     kernel_end: 2 * MIB,
///     phys_offset: ram as u64, // virtual = physical + phys_offset
///     phys_limit: 16 * MIB,    // the buffer's end
/// };
/// let usable = [memshim_range { base: MIB, length: 15 * MIB }];
/// let mut fm = FrameManager::new();
/// // SAFETY: the buffer is 16 MiB of our own memory, mapped at `ram`.
/// unsafe { fm.init_ranges(&usable, &cfg) }.unwrap();
/// let frame = fm.alloc().unwrap();
/// assert!(frame >= 2 * MIB && frame % 4096 == 0);
/// let dma = fm.alloc_contiguous(16, 64 << 10, 16 * MIB).unwrap();
/// assert_eq!(dma % (64 << 10), 0);
/// fm.free(frame).unwrap();
/// fm.free_contiguous(dma, 16).unwrap();
/// assert_eq!(fm.check(), 0);
/// drop(fm);
/// // SAFETY: allocated above with this layout; the manager is gone.
/// unsafe { std::alloc::dealloc(ram, layout) };
/// ```
pub struct FrameManager {
    table: Option<Table>,
    phys: Phys,
    /// Next-fit position for single frames (>= HIGH).
    hint: u64,
    free: u64,
    managed: u64,
}

// SAFETY: the manager exclusively owns its bitmap memory; the raw pointer
// is never shared outside it.
unsafe impl Send for FrameManager {}

impl FrameManager {
    /// An uninitialised manager: every call fails or returns nothing.
    pub const fn new() -> Self {
        Self {
            table: None,
            phys: Phys {
                offset: 0,
                limit: 0,
            },
            hint: HIGH,
            free: 0,
            managed: 0,
        }
    }

    /// Whether `init_*` has succeeded.
    pub fn is_initialised(&self) -> bool {
        self.table.is_some()
    }

    /// Starts the manager from a Multiboot 1 (`0x2BADB002`) or Multiboot 2
    /// (`0x36D76289`) information structure at virtual address `info`.
    ///
    /// # Safety
    /// As for [`FrameManager::init_ranges`]; in addition `info` must be NULL
    /// or readable (52 bytes for Multiboot 1 — 88 with flags bits 7-11, 116
    /// with bit 12 — and `total_size` bytes for Multiboot 2), and the
    /// physical addresses inside it are read through `phys_offset` below
    /// `phys_limit`.
    pub unsafe fn init_multiboot(
        &mut self,
        magic: u32,
        info: *const u8,
        cfg: &memshim_boot_config,
    ) -> Result<(), Error> {
        if self.is_initialised() {
            return Err(Error::Already);
        }
        let phys = phys_of(cfg)?;
        match magic {
            // SAFETY: forwarded contract.
            boot::MB1_MAGIC => self.init(unsafe { &Multiboot1::parse(info, phys)? }, cfg),
            // SAFETY: forwarded contract.
            boot::MB2_MAGIC => self.init(unsafe { &Multiboot2::parse(info, phys)? }, cfg),
            _ => Err(Error::BadMagic),
        }
    }

    /// Starts the manager from a list of usable physical ranges (any order,
    /// touching and overlapping ranges merged when placing the bitmap,
    /// partial pages of each range dropped, RAM above 1 TiB ignored).
    ///
    /// # Safety
    /// Physical memory below `cfg.phys_limit` (everything, if 0) must be
    /// mapped writable at `cfg.phys_offset`, and the usable ranges must be
    /// RAM that nothing else uses except the kernel image `[kernel_start,
    /// kernel_end)` and what the boot loader handed over: the manager takes
    /// ownership of it for its lifetime.
    pub unsafe fn init_ranges(
        &mut self,
        usable: &[memshim_range],
        cfg: &memshim_boot_config,
    ) -> Result<(), Error> {
        if self.is_initialised() {
            return Err(Error::Already);
        }
        self.init(&Ranges::new(usable)?, cfg)
    }

    /// Sizes, places and fills the bitmap from `map`.
    fn init(&mut self, map: &dyn BootMap, cfg: &memshim_boot_config) -> Result<(), Error> {
        let phys = phys_of(cfg)?;
        let mut top = 0;
        map.entries(&mut |base, len, usable| {
            if usable && len >= FRAME {
                top = top.max(base.saturating_add(len).min(MAX_TRACKED) / FRAME);
            }
        });
        if top <= LOW {
            return Err(Error::NoMemory);
        }
        let usable = |f: &mut dyn FnMut(u64, u64)| {
            map.entries(&mut |base, len, usable| {
                if usable {
                    f(base, base.saturating_add(len));
                }
            })
        };
        // The kernel image is physical RAM the boot loader loaded it into:
        // a range above the top of RAM or in a hole is a virtual address
        // (or garbage), and reserving it would protect nothing.
        if cfg.kernel_end > cfg.kernel_start
            && !place::covers(&usable, cfg.kernel_start, cfg.kernel_end)
        {
            return Err(Error::KernelRange);
        }
        // Nothing above the end of RAM is ever touched: a limit past it
        // (a 16 GiB map on a 256 MiB machine) is stored, and reported, as
        // the end of RAM.
        let phys = Phys {
            limit: phys.limit.min(top * FRAME),
            ..phys
        };
        let shape = Shape::new(top).ok_or(Error::Range)?;
        let bytes = shape.bytes().next_multiple_of(FRAME);
        let blocked = |f: &mut dyn FnMut(u64, u64)| forbidden(map, cfg, f);
        let at = lowest_gap(&usable, &blocked, bytes, phys.limit, (FRAME, HIGH * FRAME))
            .ok_or(Error::NoMemory)?;
        let virt = (at + phys.offset) as *mut u64;
        let words = NonNull::new(virt).ok_or(Error::NoMemory)?;
        let mut table = Table {
            words,
            shape,
            phys: at,
        };
        let mut b = table.view_mut();
        b.clear_all();
        // Entry by entry, as given: a frame only partly inside each of two
        // touching entries stays out (the bitmap may still cover it).
        usable(&mut |start, end| b.set_reserved(start.div_ceil(FRAME), end / FRAME, false));
        forbidden(map, cfg, &mut |start, end| {
            b.set_reserved(start / FRAME, end.div_ceil(FRAME), true);
        });
        b.set_reserved(at / FRAME, (at + bytes) / FRAME, true);
        b.free_unreserved();
        self.free = b.count_free();
        self.managed = b.count_unreserved();
        self.phys = phys;
        self.hint = HIGH;
        self.table = Some(table);
        Ok(())
    }

    /// One 4 KiB frame: next fit above 16 MiB, then wrapping, then the
    /// 1-16 MiB zone. Returns its physical address.
    pub fn alloc(&mut self) -> Option<u64> {
        let mut b = self.table.as_mut()?.view_mut();
        let f = b
            .next_free(self.hint)
            .or_else(|| b.next_free(HIGH))
            .or_else(|| b.next_free(LOW))?;
        b.take(f);
        self.free -= 1;
        if f >= HIGH {
            self.hint = f + 1;
        }
        Some(f * FRAME)
    }

    /// `count` contiguous frames whose start is a multiple of `align` bytes
    /// (a power of two; 0 or less than 4096 means 4096) and whose end is at
    /// or below `below` (0: no limit). Above 16 MiB first, lowest address;
    /// O(levels) at any fill. With `align` above 4096 the lowest fit is
    /// found unless hundreds of free runs that might hold one but do not
    /// come first: then only runs of `count + align/4096 - 1` frames or
    /// more (which always hold one) are considered (see `runs`).
    pub fn alloc_contiguous(&mut self, count: usize, align: u64, below: u64) -> Option<u64> {
        if count == 0 || (align != 0 && !align.is_power_of_two()) {
            return None;
        }
        let mut b = self.table.as_mut()?.view_mut();
        let n = count as u64;
        let a = (align / FRAME).max(1);
        let top = b.frames();
        let hi = if below == 0 {
            top
        } else {
            top.min(below / FRAME)
        };
        let f = b
            .find_run(n, a, HIGH, hi)
            .or_else(|| b.find_run(n, a, LOW, hi.min(HIGH.saturating_add(n))))?;
        b.set_range(f, f + n, false);
        b.set_run(f, f + n, true);
        self.free -= n;
        Some(f * FRAME)
    }

    /// Gives back one frame (not one of a longer contiguous run).
    pub fn free(&mut self, phys: u64) -> Result<(), FrameFault> {
        let f = self.frame_of(phys)?;
        let Some(t) = self.table.as_mut() else {
            return Err(FrameFault::NotInitialised(phys));
        };
        let mut b = t.view_mut();
        if b.is_reserved(f) {
            return Err(FrameFault::Reserved(phys));
        }
        if b.is_free(f) {
            return Err(FrameFault::DoubleFree(phys));
        }
        if b.in_run(f) {
            return Err(split(&b, phys, f));
        }
        b.give(f);
        self.free += 1;
        Ok(())
    }

    /// Gives back `count` frames from `phys`: whole allocations only (runs
    /// and single frames side by side); all or nothing (a fault names the
    /// first offending frame, or the run the range would split, and frees
    /// none).
    pub fn free_contiguous(&mut self, phys: u64, count: usize) -> Result<(), FrameFault> {
        if count == 0 {
            return Ok(());
        }
        let lo = self.frame_of(phys)?;
        let hi = lo.checked_add(count as u64);
        let Some(t) = self.table.as_mut() else {
            return Err(FrameFault::NotInitialised(phys));
        };
        let mut b = t.view_mut();
        let hi = hi
            .filter(|&h| h <= b.frames())
            .ok_or(FrameFault::NotTracked(phys))?;
        if let Some(f) = b.first_reserved(lo, hi) {
            return Err(FrameFault::Reserved(f * FRAME));
        }
        if let Some(f) = b.first_free(lo, hi) {
            return Err(FrameFault::DoubleFree(f * FRAME));
        }
        if b.continues(lo) {
            return Err(split(&b, phys, lo));
        }
        if hi < b.frames() && b.continues(hi) {
            return Err(split(&b, phys, hi));
        }
        b.set_run(lo, hi, false);
        b.set_range(lo, hi, true);
        self.free += hi - lo;
        Ok(())
    }

    /// The frame number of `phys`, if tracked and aligned.
    fn frame_of(&self, phys: u64) -> Result<u64, FrameFault> {
        let Some(t) = self.table.as_ref() else {
            return Err(FrameFault::NotInitialised(phys));
        };
        if phys % FRAME != 0 {
            return Err(FrameFault::Misaligned(phys));
        }
        if phys / FRAME >= t.shape.frames() {
            return Err(FrameFault::NotTracked(phys));
        }
        Ok(phys / FRAME)
    }

    /// Takes `[phys, phys + len)` (widened to whole frames) out of use for
    /// good: ACPI tables, a framebuffer. Parts outside tracked RAM and frames
    /// already reserved are fine; a frame currently allocated is refused
    /// (`Overlap`) and nothing changes.
    pub fn reserve(&mut self, phys: u64, len: u64) -> Result<(), Error> {
        let t = self.table.as_mut().ok_or(Error::NotInitialised)?;
        if len == 0 {
            return Err(Error::Invalid);
        }
        let end = phys.checked_add(len).ok_or(Error::Range)?;
        let mut b = t.view_mut();
        let (lo, hi) = (phys / FRAME, end.div_ceil(FRAME).min(b.frames()));
        if lo >= hi {
            return Ok(());
        }
        if b.first_allocated(lo, hi).is_some() {
            return Err(Error::Overlap);
        }
        self.free -= b.free_in(lo, hi);
        self.managed -= (hi - lo) - b.reserved_in(lo, hi);
        b.reserve(lo, hi);
        Ok(())
    }

    /// Heap growth: `min` bytes (rounded up to frames) of contiguous frames
    /// below `phys_limit`, as a virtual pointer through `phys_offset`. The
    /// heap records the run itself (its page map answers whether a frame
    /// belongs to it) until `heap_release`.
    pub fn heap_grow(&mut self, min: usize) -> Option<(NonNull<u8>, usize)> {
        if min == 0 || !self.is_initialised() {
            return None;
        }
        let count = min.div_ceil(FRAME as usize);
        let len = count.checked_mul(FRAME as usize)?;
        let phys = self.alloc_contiguous(count, FRAME, self.phys.limit)?;
        // `phys.limit + offset` never wraps (see `phys_of`).
        let virt = usize::try_from(phys + self.phys.offset).ok();
        match virt.and_then(|v| NonNull::new(v as *mut u8)) {
            Some(p) => Some((p, len)),
            None => {
                let _ = self.free_contiguous(phys, count);
                None
            }
        }
    }

    /// Gives back a span `heap_grow` returned, or the end of one (the heap
    /// keeps a span's first pages for good when they became its metadata);
    /// `false` (and nothing changes) if it is not allocated frames below
    /// the limit ending where their run ends.
    ///
    /// # Safety
    /// The span must have come from `heap_grow` (or be its end) and be
    /// unused.
    pub unsafe fn heap_release(&mut self, base: NonNull<u8>, len: usize) -> bool {
        let phys = (base.as_ptr() as u64).checked_sub(self.phys.offset);
        let fits = |p: u64| {
            len != 0
                && len as u64 % FRAME == 0
                && p.checked_add(len as u64)
                    .is_some_and(|e| e <= self.phys.limit)
        };
        let Some(p) = phys.filter(|&p| fits(p)) else {
            return false;
        };
        let count = len / FRAME as usize;
        let Some(t) = self.table.as_mut() else {
            return false;
        };
        let mut b = t.view_mut();
        let (lo, hi) = (p / FRAME, p / FRAME + count as u64);
        if hi > b.frames() {
            return false;
        }
        // The end of a run: its front stays allocated, a run of its own.
        if b.continues(lo)
            && b.first_free(lo, hi).is_none()
            && b.first_reserved(lo, hi).is_none()
            && !(hi < b.frames() && b.continues(hi))
        {
            b.set_run(lo, lo + 1, false);
        }
        self.free_contiguous(p, count).is_ok()
    }

    /// The virtual address of physical `phys` when memshim can reach it
    /// (below `phys_limit`, through `phys_offset`): only there can the heap
    /// hold frames.
    pub fn virt_of(&self, phys: u64) -> Option<usize> {
        if !self.is_initialised() || phys >= self.phys.limit {
            return None;
        }
        usize::try_from(phys.checked_add(self.phys.offset)?).ok()
    }
}

impl FrameManager {
    /// (frames that can be allocated: usable RAM minus reservations, frames
    /// free now); (0, 0) before init.
    pub fn counts(&self) -> (u64, u64) {
        (self.managed, self.free)
    }

    /// Verifies the bitmap against its counters; returns problems found.
    pub fn check(&self) -> usize {
        let Some(t) = self.table.as_ref() else {
            return 0;
        };
        let b = t.view();
        let mismatch = [
            b.count_free() != self.free,
            b.count_unreserved() != self.managed,
            b.first_free(0, LOW.min(b.frames())).is_some(),
        ];
        b.problems() + mismatch.iter().filter(|&&m| m).count()
    }

    /// A bounded text summary.
    pub fn dump(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let Some(t) = self.table.as_ref() else {
            return writeln!(out, "frames: not initialised");
        };
        writeln!(
            out,
            "frames: {} allocatable, {} free ({} MiB), {} tracked; bitmap at phys {:#x} ({} KiB); phys_offset {:#x}, phys_limit {:#x}",
            self.managed,
            self.free,
            (self.free * FRAME) >> 20,
            t.shape.frames(),
            t.phys,
            t.shape.bytes() >> 10,
            self.phys.offset,
            self.phys.limit
        )
    }
}

impl Default for FrameManager {
    fn default() -> Self {
        Self::new()
    }
}

/// The fault for a free at `phys` that would split the run holding `f`.
fn split<W: AsRef<[u64]>>(b: &Bitmap<'_, W>, phys: u64, f: u64) -> FrameFault {
    let (start, frames) = b.run_of(f);
    FrameFault::Split {
        at: phys,
        start: start * FRAME,
        frames,
    }
}

/// The physical-memory view a config describes: `phys_offset` page-aligned,
/// an effective limit (never 0, never past 2^52, and `limit + offset`
/// never wraps), and a sane kernel range.
fn phys_of(cfg: &memshim_boot_config) -> Result<Phys, Error> {
    if cfg.phys_offset % FRAME != 0 || cfg.kernel_end < cfg.kernel_start {
        return Err(Error::Invalid);
    }
    let limit = match cfg.phys_limit {
        0 => MAX_PHYS,
        l => l.min(MAX_PHYS),
    };
    Ok(Phys {
        offset: cfg.phys_offset,
        limit: limit.min(u64::MAX - cfg.phys_offset),
    })
}

/// Every byte range that must never be handed out, besides the map's
/// holes: below 1 MiB, the kernel, the boot loader's structures, and
/// entries the map marks not usable (they win over overlapping usable ones).
fn forbidden(map: &dyn BootMap, cfg: &memshim_boot_config, f: &mut dyn FnMut(u64, u64)) {
    f(0, LOW * FRAME);
    f(cfg.kernel_start, cfg.kernel_end);
    map.reserved(f);
    map.entries(&mut |base, len, usable| {
        if !usable {
            f(base, base.saturating_add(len));
        }
    });
}
