//! Block layout of the TLSF back end: boundary-tagged blocks with
//! self-checking headers.
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
//!   certainty, so faults are reported instead of followed. Nothing derived
//!   from the secret is ever left in memory `malloc` hands out: headers
//!   absorbed by a merge are rewritten as *stale* markers (see [`write_stale`]),
//!   which carry no secret.
//! * `PREV_FREE` says the block before is free and its size is in the
//!   footer just before this header: merging with the previous block is
//!   O(1), without searching for it. The footer is only trusted after it is
//!   bounds-checked against the span and matched by that block's header.
//! * `INTERNAL` marks a block the heap uses itself (a slab, a metadata
//!   chunk): never freed through the user's pointer.
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
const INTERNAL: usize = 4;
const FLAGS: usize = ALIGN - 1;
/// The word of a stale header (a block absorbed by a merge): not a size.
const STALE: usize = 0x5374_616c_6546_7265 & !FLAGS;

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

/// Writes the header of a used block.
///
/// # Safety
/// `b` must be valid for writing 16 bytes.
#[inline]
pub unsafe fn write_used(
    b: *mut Header,
    size: usize,
    prev_free: bool,
    internal: bool,
    secret: usize,
) {
    let word = size | flag(prev_free, PREV_FREE) | flag(internal, INTERNAL);
    // SAFETY: caller guarantees `b` is writable.
    unsafe { seal(b, word, secret) }
}

/// Writes the header and the footer of a free block: the one place a free
/// block's boundary tags are formed.
///
/// # Safety
/// `b..b+size` must be writable and `size >= MIN_BLOCK`.
#[inline]
pub unsafe fn write_free(b: *mut Header, size: usize, prev_free: bool, secret: usize) {
    debug_assert!(size >= MIN_BLOCK);
    // SAFETY: caller guarantees the whole block is writable.
    unsafe {
        seal(b, size | FREE | flag(prev_free, PREV_FREE), secret);
        *b.byte_add(size - 8).cast::<usize>() = size;
    }
}

/// Writes a span's end sentinel (size 0, used, never merged).
///
/// # Safety
/// `b` must be valid for writing 16 bytes.
#[inline]
pub unsafe fn write_sentinel(b: *mut Header, prev_free: bool, secret: usize) {
    // SAFETY: caller guarantees `b` is writable.
    unsafe { seal(b, flag(prev_free, PREV_FREE), secret) }
}

/// Marks the header of a block absorbed by a merge as stale: a second free
/// of its pointer is then named a double free, and the memory carries no
/// value derived from the secret when `malloc` hands it out again.
///
/// # Safety
/// `b` must be valid for writing 16 bytes.
#[inline]
pub unsafe fn write_stale(b: *mut Header) {
    // SAFETY: caller guarantees `b` is writable.
    unsafe {
        (*b).word = STALE;
        (*b).check = STALE ^ b.addr();
    }
}

/// Whether the header at `b` is a stale marker.
///
/// # Safety
/// `b` must be valid for reading 16 bytes.
#[inline]
pub unsafe fn is_stale(b: *const Header) -> bool {
    // SAFETY: caller guarantees `b` is readable.
    unsafe { (*b).word == STALE && (*b).check == STALE ^ b.addr() }
}

#[inline]
fn flag(on: bool, bit: usize) -> usize {
    if on {
        bit
    } else {
        0
    }
}

/// # Safety
/// `b` must be valid for writing 16 bytes.
#[inline]
unsafe fn seal(b: *mut Header, word: usize, secret: usize) {
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

/// Whether the heap uses the block itself.
///
/// # Safety
/// `b` must be a readable header.
#[inline]
pub unsafe fn is_internal(b: *const Header) -> bool {
    // SAFETY: caller guarantees `b` is readable.
    unsafe { (*b).word & INTERNAL != 0 }
}

/// Rewrites only the `PREV_FREE` flag of `b`.
///
/// # Safety
/// `b` must be a valid, writable header.
#[inline]
pub unsafe fn set_prev_free(b: *mut Header, prev_free: bool, secret: usize) {
    // SAFETY: caller guarantees `b` is a valid writable header.
    unsafe {
        let word = ((*b).word & !PREV_FREE) | flag(prev_free, PREV_FREE);
        seal(b, word, secret)
    }
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

/// The size a free block's footer records (the 8 bytes before `b`, for the
/// block before `b`).
///
/// # Safety
/// The 8 bytes before `b` must be readable.
#[inline]
pub unsafe fn footer_before(b: *const Header) -> usize {
    // SAFETY: caller guarantees the slot is readable.
    unsafe { *b.cast::<usize>().byte_sub(8) }
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
