//! `#[repr(C)]` types shared by the Rust API and the C header.

/// Heap and frame counters, filled by `memshim_get_stats`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default)]
pub struct memshim_stats {
    /// Bytes in live blocks (their usable sizes).
    pub heap_bytes_in_use: u64,
    /// Bytes in free blocks.
    pub heap_bytes_free: u64,
    /// Bytes the heap holds from all its sources (arena, regions, pages, frames, mmap).
    pub heap_bytes_mapped: u64,
    /// Highest `heap_bytes_in_use` seen.
    pub heap_peak_bytes_in_use: u64,
    /// Blocks allocated and not yet freed.
    pub live_allocations: u64,
    /// Successful allocations since start (malloc, calloc, realloc moves, aligned forms).
    pub total_allocations: u64,
    /// Blocks freed since start.
    pub total_frees: u64,
    /// Spans of memory the heap holds.
    pub heap_spans: u64,
    /// Bytes of out-of-band heap metadata (page map, span and slab records,
    /// caches), held apart from the spans.
    pub heap_bytes_metadata: u64,
    /// Slabs (page runs of equal small blocks) the heap holds.
    pub heap_slabs: u64,
    /// Frames the frame manager tracks (usable RAM), 0 before init.
    pub frames_total: u64,
    /// Frames free now.
    pub frames_free: u64,
}

/// Where the kernel is and how memshim reaches physical memory; passed to
/// `memshim_init_multiboot` and `memshim_frames_init`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct memshim_boot_config {
    /// Physical start of the kernel image (reserved with `kernel_end`). It
    /// must lie in usable RAM of the memory map (else `MEMSHIM_EKERNEL`);
    /// a higher-half kernel passes its link address minus its link base.
    pub kernel_start: u64,
    /// Physical end (exclusive) of the kernel image; equal to
    /// `kernel_start` (e.g. both 0) when there is nothing to reserve.
    pub kernel_end: u64,
    /// virtual = physical + phys_offset (0: identity-mapped). Page-aligned.
    pub phys_offset: u64,
    /// The end of the physical memory the kernel has mapped at
    /// `phys_offset`: memshim touches physical memory only below this (its
    /// bitmap and the heap's frames; 0: no limit). Past the end of RAM it is
    /// clamped to the end of RAM. memshim cannot check the mapping itself.
    /// Frames above it are still handed out.
    pub phys_limit: u64,
}

/// A physical memory range `[base, base + length)`.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct memshim_range {
    /// Physical start.
    pub base: u64,
    /// Length in bytes.
    pub length: u64,
}

// The C header mirrors these layouts.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<memshim_boot_config>() == 32);
    assert!(offset_of!(memshim_boot_config, kernel_start) == 0);
    assert!(offset_of!(memshim_boot_config, kernel_end) == 8);
    assert!(offset_of!(memshim_boot_config, phys_offset) == 16);
    assert!(offset_of!(memshim_boot_config, phys_limit) == 24);
    assert!(size_of::<memshim_range>() == 16);
    assert!(offset_of!(memshim_range, base) == 0);
    assert!(offset_of!(memshim_range, length) == 8);
};
