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
    /// Frames the frame manager tracks (usable RAM), 0 before init.
    pub frames_total: u64,
    /// Frames free now.
    pub frames_free: u64,
}
