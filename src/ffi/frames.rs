//! The frame manager's C functions: argument checks, then `frames::global`.

use crate::error::{to_code, Error};
use crate::frames::global;
use crate::types::{memshim_boot_config, memshim_range};
use core::ffi::{c_int, c_void};

/// Reads the caller's config (NULL → `MEMSHIM_EINVAL`).
///
/// # Safety
/// `cfg` must be NULL or point to a readable config.
unsafe fn config(cfg: *const memshim_boot_config) -> Result<memshim_boot_config, Error> {
    if cfg.is_null() {
        return Err(Error::Invalid);
    }
    // SAFETY: non-null and readable per the contract; unaligned is tolerated.
    Ok(unsafe { cfg.read_unaligned() })
}

/// Starts the frame manager from Multiboot boot information and lets the
/// heap grow from frames. `magic` is EAX at entry (0x2BADB002: Multiboot 1,
/// 0x36D76289: Multiboot 2), `boot_info` the information structure (EBX)
/// as a virtual address. Reserves below 1 MiB, the kernel image, the boot
/// information, its memory map, modules, their strings, the command line,
/// every other structure the Multiboot 1 flags say exists (a.out symbols
/// or ELF section headers, drives, ROM config table, boot loader name, APM
/// table, VBE controller and mode info, framebuffer and palette), the
/// Multiboot 2 framebuffer, the sections the boot loader loaded outside
/// the kernel image (ELF headers without SHF_ALLOC: symbol and string
/// tables), and the bitmap, which goes into usable RAM below `phys_limit`
/// (touching usable entries count as one region). RAM at or above 1 TiB physical is
/// ignored: never tracked or handed out (this caps the bitmap at about
/// 113 MiB). Returns 0, or `MEMSHIM_EINVAL` (NULL, `phys_offset` not
/// page-aligned, `kernel_end < kernel_start`), `MEMSHIM_EMAGIC`,
/// `MEMSHIM_EBOOTINFO` (a length runs past the structure, a bad entry size,
/// more than 4096 map entries, 256 modules, 1024 Multiboot 2 tags or 4096
/// ELF sections, an ELF entry size other than 40 or 64, a section or
/// framebuffer that wraps, drives over 1 MiB, flags bits 4 and 5 both set),
/// `MEMSHIM_ENOMMAP` (neither a memory map nor
/// mem_lower/mem_upper), `MEMSHIM_ERANGE` (a structure lies above
/// `phys_limit`), `MEMSHIM_ENOMEM` (no usable RAM above 1 MiB, or no room
/// for the bitmap), `MEMSHIM_EKERNEL` (`kernel_start..kernel_end` is not
/// inside usable RAM of the map: above its highest usable address — a
/// higher-half kernel's virtual addresses — or in a hole; an empty range,
/// such as 0..0, reserves nothing and is accepted), `MEMSHIM_EALREADY`.
/// A `phys_limit` beyond the end of usable RAM is clamped to it (the
/// clamped value is what `memshim_dump` shows). memshim cannot see the
/// page tables: that physical memory below `phys_limit` really is mapped
/// at `phys_offset` is the caller's promise.
///
/// # Safety
/// `boot_info` must be NULL or readable (52 bytes for Multiboot 1, 88 with
/// flags bits 7-11, 116 with bit 12; its `total_size` for Multiboot 2); `cfg` NULL or readable; physical memory
/// below `phys_limit` (all of it, if 0) mapped writable at `phys_offset`;
/// usable RAM used by nothing but the kernel and the boot loader's data.
#[no_mangle]
pub unsafe extern "C" fn memshim_init_multiboot(
    magic: u32,
    boot_info: *const c_void,
    cfg: *const memshim_boot_config,
) -> c_int {
    // SAFETY: forwarded contract.
    to_code(unsafe { config(cfg) }.and_then(|cfg| {
        // SAFETY: forwarded contract.
        unsafe { global::init_multiboot(magic, boot_info.cast(), &cfg) }
    }))
}

/// Starts the frame manager from `count` usable physical ranges (any
/// order; touching and overlapping ranges merged when placing the bitmap;
/// partial pages of each range dropped; RAM at or above 1 TiB ignored) — for UEFI or Limine loaders and tests.
/// Same reservations (minus the boot information), checks and codes as
/// `memshim_init_multiboot` (the kernel range must lie inside the listed
/// ranges: a loader that lists the kernel's memory apart from the usable
/// ranges, as Limine does, passes 0..0); NULL `usable`, `count` above 4096,
/// and NULL `cfg` give `MEMSHIM_EINVAL`, a range that wraps `MEMSHIM_ERANGE`.
///
/// # Safety
/// `usable` must be NULL or point to `count` ranges; the rest as for
/// `memshim_init_multiboot`.
#[no_mangle]
pub unsafe extern "C" fn memshim_frames_init(
    usable: *const memshim_range,
    count: usize,
    cfg: *const memshim_boot_config,
) -> c_int {
    if usable.is_null() || count > crate::frames::boot::MAX_ENTRIES {
        return Error::Invalid.code();
    }
    // SAFETY: non-null, `count` ranges per the contract, and `count` is small
    // enough that the slice cannot exceed isize::MAX bytes.
    let list = unsafe { core::slice::from_raw_parts(usable, count) };
    // SAFETY: forwarded contract.
    to_code(unsafe { config(cfg) }.and_then(|cfg| unsafe { global::init_ranges(list, &cfg) }))
}

/// One 4 KiB frame's physical address (from above 16 MiB first, never
/// below 1 MiB), or 0 if none is free or the manager is not initialised.
#[no_mangle]
pub extern "C" fn memshim_frame_alloc() -> u64 {
    global::alloc().unwrap_or(0)
}

/// `count` physically contiguous frames starting at a multiple of `align`
/// bytes (a power of two; 0 means 4096) and ending at or below `below`
/// (0: no limit) — DMA buffers. The lowest such run above 16 MiB, else
/// the lowest from 1 MiB; found through an index of free runs in time
/// that does not grow with RAM or fill (a few µs at worst on 64 GiB), so
/// it may run with interrupts off. With `align` above 4096 in a map
/// fragmented into hundreds of free runs just too short or badly placed,
/// the search keeps to runs of at least `count + align/4096 - 1` frames
/// (which always hold a fit) and may return 0 although a run fitting
/// exactly exists. Returns the physical address, or 0 if no such run is
/// found, `count` is 0 or `align` is not a power of two.
#[no_mangle]
pub extern "C" fn memshim_frame_alloc_contiguous(count: usize, align: u64, below: u64) -> u64 {
    global::alloc_contiguous(count, align, below).unwrap_or(0)
}

/// Gives back a frame `memshim_frame_alloc` returned (or a run of one from
/// `memshim_frame_alloc_contiguous`). Freeing a free frame, a reserved
/// one, a frame memshim's heap holds, a frame of a longer contiguous run
/// (give a run back whole, with `memshim_frame_free_contiguous`), an
/// unaligned or untracked address is reported through the panic handler
/// (with the address) and changes nothing.
#[no_mangle]
pub extern "C" fn memshim_frame_free(phys: u64) {
    global::free(phys);
}

/// Gives back `count` frames from `phys` (0 does nothing): whole
/// allocations only — a run from `memshim_frame_alloc_contiguous` with its
/// start and count, or several runs and single frames side by side. All or
/// nothing: a range that starts or ends inside a run ("would split the
/// contiguous run of N frames at ADDR") or holds a free, reserved or heap
/// frame is reported as for `memshim_frame_free` and frees nothing.
#[no_mangle]
pub extern "C" fn memshim_frame_free_contiguous(phys: u64, count: usize) {
    global::free_contiguous(phys, count);
}

/// Keeps `[phys, phys + len)` (widened to whole frames) from ever being
/// handed out: ACPI tables, a framebuffer. Parts outside RAM and frames
/// already reserved are fine. Returns 0, `MEMSHIM_ENOTINIT`,
/// `MEMSHIM_EINVAL` (`len` 0), `MEMSHIM_ERANGE` (the range wraps) or
/// `MEMSHIM_EOVERLAP` (a frame in it is allocated; nothing is reserved).
#[no_mangle]
pub extern "C" fn memshim_frame_reserve(phys: u64, len: u64) -> c_int {
    to_code(global::reserve(phys, len))
}
