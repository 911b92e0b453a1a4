//! The byte allocator (placeholder API; the TLSF implementation lands next).

use crate::error::Error;
use crate::source::{Source, SpanKind};
use core::fmt;
use core::ptr::NonNull;

/// Every block is aligned to this (`max_align_t`).
pub const MIN_ALIGN: usize = 16;

/// Heap counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes in live blocks (usable sizes).
    pub in_use: usize,
    /// Bytes in free blocks.
    pub free: usize,
    /// Bytes in all spans the heap holds.
    pub mapped: usize,
    /// Highest `in_use` seen.
    pub peak_in_use: usize,
    /// Live blocks.
    pub live: usize,
    /// Spans held.
    pub spans: usize,
    /// Successful allocations since start.
    pub total_allocs: u64,
    /// Frees since start.
    pub total_frees: u64,
}

/// A misuse or corruption found when a block was touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The block was already free.
    DoubleFree(usize),
    /// Not a pointer memshim returned (foreign, interior, misaligned).
    InvalidPointer(usize),
    /// Heap metadata at `at` was overwritten (a buffer overrun of the block before it?).
    Corrupted { block: usize, at: usize },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::DoubleFree(p) => write!(f, "double free of {:#x}", p),
            Fault::InvalidPointer(p) => write!(
                f,
                "invalid pointer {:#x}: not a block memshim returned (foreign, interior or misaligned)",
                p
            ),
            Fault::Corrupted { block, at } => write!(
                f,
                "heap corruption: metadata at {:#x} (touching block {:#x}) was overwritten, probably by a buffer overrun",
                at, block
            ),
        }
    }
}

/// The heap.
pub struct Heap {
    _private: (),
}

impl Heap {
    /// An empty heap.
    pub const fn new() -> Self {
        Self { _private: () }
    }

    /// Adds a span of memory.
    ///
    /// # Safety
    /// `base..base+len` must be writable memory owned by nobody else.
    pub unsafe fn add_span(
        &mut self,
        _base: *mut u8,
        _len: usize,
        _kind: SpanKind,
    ) -> Result<(), Error> {
        Err(Error::NoMemory)
    }

    /// Allocates.
    pub fn alloc(
        &mut self,
        _size: usize,
        _align: usize,
        _src: &mut dyn Source,
    ) -> Option<NonNull<u8>> {
        None
    }

    /// Frees.
    ///
    /// # Safety
    /// `p` is validated; any value is acceptable.
    pub unsafe fn free(&mut self, p: NonNull<u8>, _src: &mut dyn Source) -> Result<(), Fault> {
        Err(Fault::InvalidPointer(p.as_ptr() as usize))
    }

    /// Resizes.
    ///
    /// # Safety
    /// `p` is validated; any value is acceptable.
    pub unsafe fn realloc(
        &mut self,
        p: NonNull<u8>,
        _size: usize,
        _src: &mut dyn Source,
    ) -> Result<Option<NonNull<u8>>, Fault> {
        Err(Fault::InvalidPointer(p.as_ptr() as usize))
    }

    /// Usable size.
    ///
    /// # Safety
    /// `p` is validated; any value is acceptable.
    pub unsafe fn usable_size(&self, p: NonNull<u8>) -> Result<usize, Fault> {
        Err(Fault::InvalidPointer(p.as_ptr() as usize))
    }

    /// Walks everything; returns problems found.
    pub fn check(&self) -> usize {
        0
    }

    /// Counters.
    pub fn stats(&self) -> HeapStats {
        HeapStats::default()
    }

    /// A bounded text summary.
    pub fn dump(&self, _out: &mut dyn fmt::Write) -> fmt::Result {
        Ok(())
    }
}

impl Default for Heap {
    fn default() -> Self {
        Self::new()
    }
}
