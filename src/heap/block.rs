//! Block layout: boundary-tagged blocks with self-checking headers.
//!
//! ```text
//!  used block                         free block
//!  +--------------------+             +--------------------+
//!  | size | flags       |  8 bytes    | size | FREE        |
//!  | check              |  8 bytes    | check              |
//!  +--------------------+ <- payload  | next free (ptr)    |
//!  | payload ...        |   16-aligned| prev free (ptr)    |
//!  |                    |             | ...                |
//!  +--------------------+             | size (footer)      |  last 8 bytes
//!                                     +--------------------+
//! ```
//!
//! * `size` is the whole block including its 16-byte header, a multiple of
//!   16, at least [`MIN_BLOCK`]; the low 4 bits hold flags.
//! * `check = word ^ address ^ secret`: a header overwritten by an overrun,
//!   or a pointer memshim never returned, fails this test with near
//!   certainty, so faults are reported instead of followed.
//! * `PREV_FREE` says the block before is free and its size is in the
//!   footer just before this header: merging with the previous block is
//!   O(1), without searching for it.
//! * Each span ends with a sentinel header of size 0 (never free), so the
//!   last block's successor is always readable.

/// Header size; also the per-block overhead.
pub(crate) const HDR: usize = 16;
/// Block size granularity and minimum alignment.
pub(crate) const ALIGN: usize = 16;
/// Smallest block: header, two free-list links and a footer, rounded to 16.
pub(crate) const MIN_BLOCK: usize = 48;
/// Largest block size memshim will form (keeps all size arithmetic far from overflow).
pub(crate) const MAX_BLOCK: usize = 1 << 62;

const FREE: usize = 1;
const PREV_FREE: usize = 2;
const FLAGS: usize = ALIGN - 1;

/// A block header.
#[repr(C)]
pub struct Header {
    word: usize,
    check: usize,
}

/// Free-list links, just after a free block's header.
#[repr(C)]
pub struct Links {
    /// Next block in the same size class.
    pub next: *mut Header,
    /// Previous block in the same size class (null for the head).
    pub prev: *mut Header,
}

const _: () = assert!(core::mem::size_of::<Header>() == HDR);
const _: () = assert!(HDR + core::mem::size_of::<Links>() + 8 <= MIN_BLOCK);

/// Block size needed for a payload of `n` bytes, or `None` if too large.
#[inline]
pub fn block_size_for(n: usize) -> Option<usize> {
    let s = n.checked_add(HDR + ALIGN - 1)? & !(ALIGN - 1);
    let s = s.max(MIN_BLOCK);
    (s <= MAX_BLOCK).then_some(s)
}

/// Writes a header. Every header write goes through here so `check` is
/// always consistent with `word`.
///
/// # Safety
/// `b` must be valid for writing 16 bytes.
#[inline]
pub unsafe fn write(b: *mut Header, size: usize, free: bool, prev_free: bool, secret: usize) {
    let word = size | if free { FREE } else { 0 } | if prev_free { PREV_FREE } else { 0 };
    // SAFETY: caller guarantees `b` is writable.
    unsafe {
        (*b).word = word;
        (*b).check = word ^ b.addr() ^ secret;
    }
}

/// Whether the header at `b` is one memshim wrote (and nobody overwrote).
///
/// # Safety
/// `b` must be valid for reading 16 bytes.
#[inline]
pub unsafe fn valid(b: *const Header, secret: usize) -> bool {
    // SAFETY: caller guarantees `b` is readable.
    unsafe { (*b).check == (*b).word ^ b.addr() ^ secret }
}

/// Block size (0 for a sentinel).
///
/// # Safety
/// `b` must be a readable header.
#[inline]
pub unsafe fn size(b: *const Header) -> usize {
    // SAFETY: caller guarantees `b` is readable.
    unsafe { (*b).word & !FLAGS }
}

/// Whether the block is free.
///
/// # Safety
/// `b` must be a readable header.
#[inline]
pub unsafe fn is_free(b: *const Header) -> bool {
    // SAFETY: caller guarantees `b` is readable.
    unsafe { (*b).word & FREE != 0 }
}

/// Whether the block before this one is free.
///
/// # Safety
/// `b` must be a readable header.
#[inline]
pub unsafe fn prev_free(b: *const Header) -> bool {
    // SAFETY: caller guarantees `b` is readable.
    unsafe { (*b).word & PREV_FREE != 0 }
}

/// Rewrites only the `PREV_FREE` flag of `b`.
///
/// # Safety
/// `b` must be a valid, writable header.
#[inline]
pub unsafe fn set_prev_free(b: *mut Header, prev_free: bool, secret: usize) {
    // SAFETY: caller guarantees `b` is a valid writable header.
    unsafe { write(b, size(b), is_free(b), prev_free, secret) }
}

/// The block physically after `b`.
///
/// # Safety
/// `b` must be a valid header whose size keeps the result inside its span.
#[inline]
pub unsafe fn next_phys(b: *mut Header) -> *mut Header {
    // SAFETY: caller guarantees the size keeps us inside the span.
    unsafe { b.byte_add(size(b)) }
}

/// The footer slot of a free block `b` (its last 8 bytes).
///
/// # Safety
/// `b` must be a valid header of a block at least `MIN_BLOCK` long.
#[inline]
pub unsafe fn footer(b: *mut Header) -> *mut usize {
    // SAFETY: size >= MIN_BLOCK, so the slot lies inside the block.
    unsafe { b.byte_add(size(b) - 8).cast() }
}

/// The free-list links of a free block.
///
/// # Safety
/// `b` must be a valid header of a free block.
#[inline]
pub unsafe fn links(b: *mut Header) -> *mut Links {
    // SAFETY: the links follow the header inside the block (MIN_BLOCK >= 48).
    unsafe { b.byte_add(HDR).cast() }
}

/// The payload a block's owner sees.
///
/// # Safety
/// `b` must be a block header.
#[inline]
pub unsafe fn payload(b: *mut Header) -> *mut u8 {
    // SAFETY: the payload starts right after the header, inside the block.
    unsafe { b.byte_add(HDR).cast() }
}
