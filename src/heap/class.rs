//! Size classes of the small-object front end.
//!
//! Every class size is a multiple of 16 (each block is 16-aligned): one
//! class per 16 bytes up to 256, then eight per doubling (at most 12.5 %
//! above the request, about 4 % on average) up to [`SMALL_MAX`]. Each class
//! has a slab size: the fewest whole pages holding at least
//! [`MIN_OBJECTS`] objects (at most [`MAX_OBJECTS`]) with no more than
//! about 3 % of the slab left over, or as many as 64 KiB holds for the
//! largest classes (15 of 4 KiB, 7 of 8 KiB).
//!
//! A slab's last [`SLAB_TAIL`] bytes hold no object: the TLSF header of the
//! block after it goes there, so slabs carved one after another tile their
//! span with no page lost between them (each slab's own header sits in the
//! tail of the one before).

use super::pagemap::PAGE;

/// Largest request served by slabs; larger ones go to the TLSF back end.
pub const SMALL_MAX: usize = 8192;
/// Objects a slab's bitmap can track.
pub(crate) const MAX_OBJECTS: usize = 256;
/// Fewest objects per slab (when they fit in at most `MAX_SLAB_PAGES`).
pub(crate) const MIN_OBJECTS: usize = 32;
/// Largest slab, in pages.
pub(crate) const MAX_SLAB_PAGES: usize = 16;
/// Bytes at the end of a slab's pages that hold no object (the next
/// block's TLSF header).
pub(crate) const SLAB_TAIL: usize = super::tlsf::HDR;

/// One class.
#[derive(Clone, Copy, Debug)]
pub struct Class {
    /// Object size (bytes, a multiple of 16).
    pub size: u32,
    /// Objects per slab.
    pub count: u32,
    /// Pages per slab.
    pub pages: u32,
    /// `ceil(2^32 / size)`: `(off * recip) >> 32 == off / size` for every
    /// offset inside a slab (slabs are at most 64 KiB).
    pub recip: u32,
}

const fn size_at(i: usize) -> usize {
    if i < 16 {
        16 * (i + 1)
    } else {
        let k = i - 16; // eight per doubling from 256
        let base = 256 << (k / 8);
        base + (base / 8) * (k % 8 + 1)
    }
}

const fn count_classes() -> usize {
    let mut i = 0;
    while size_at(i) <= SMALL_MAX {
        i += 1;
    }
    i
}

/// Number of classes.
pub(crate) const CLASSES: usize = count_classes();

const fn build() -> [Class; CLASSES] {
    let mut out = [Class {
        size: 0,
        count: 0,
        pages: 0,
        recip: 0,
    }; CLASSES];
    let mut i = 0;
    while i < CLASSES {
        let size = size_at(i);
        let mut pages = 1;
        let mut best = 0;
        while pages <= MAX_SLAB_PAGES {
            let bytes = pages * PAGE;
            let mut count = (bytes - SLAB_TAIL) / size;
            if count > MAX_OBJECTS {
                count = MAX_OBJECTS;
            }
            let waste = bytes - count * size;
            if count >= MIN_OBJECTS || count == MAX_OBJECTS {
                if best == 0 {
                    best = pages;
                }
                if waste * 32 <= bytes {
                    best = pages;
                    break;
                }
            }
            pages += 1;
        }
        if best == 0 {
            best = MAX_SLAB_PAGES;
        }
        let room = best * PAGE - SLAB_TAIL;
        let count = if room / size > MAX_OBJECTS {
            MAX_OBJECTS
        } else {
            room / size
        };
        let recip = (1u64 << 32).div_ceil(size as u64);
        out[i] = Class {
            size: size as u32,
            count: count as u32,
            pages: best as u32,
            recip: recip as u32,
        };
        i += 1;
    }
    out
}

/// The classes, smallest first.
pub static CLASS: [Class; CLASSES] = build();

const fn build_index() -> [u8; SMALL_MAX / 16 + 1] {
    let mut t = [0u8; SMALL_MAX / 16 + 1];
    let mut q = 0;
    let mut c = 0;
    while q <= SMALL_MAX / 16 {
        while size_at(c) < q * 16 {
            c += 1;
        }
        t[q] = c as u8;
        q += 1;
    }
    t
}

/// Class of each request size rounded up to 16: `INDEX[(n + 15) / 16]`.
static INDEX: [u8; SMALL_MAX / 16 + 1] = build_index();

/// The class serving a request of `n` bytes (`n <= SMALL_MAX`).
#[inline(always)]
pub fn of(n: usize) -> usize {
    debug_assert!(n <= SMALL_MAX);
    INDEX[(n + 15) >> 4] as usize
}

/// The class serving `n` bytes aligned to `align` (a power of two), if any:
/// slabs start on a page, so a class whose size is a multiple of `align`
/// places every object on such a boundary.
pub fn of_aligned(n: usize, align: usize) -> Option<usize> {
    let n = n.max(align);
    if n > SMALL_MAX || align > PAGE {
        return None;
    }
    (of(n)..CLASSES).find(|&c| CLASS[c].size as usize % align == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_ordered_aligned_and_fit_their_slabs() {
        assert_eq!(CLASS[0].size, 16);
        assert_eq!(CLASS[CLASSES - 1].size as usize, SMALL_MAX);
        for (i, c) in CLASS.iter().enumerate() {
            assert_eq!(c.size % 16, 0);
            if i > 0 {
                assert!(c.size > CLASS[i - 1].size);
                // At most 12.5 % above the largest request of the class below.
                assert!((c.size - CLASS[i - 1].size) * 8 <= CLASS[i - 1].size.max(128));
            }
            let bytes = c.pages as usize * PAGE;
            assert!(c.count as usize <= MAX_OBJECTS && c.count >= 7, "{c:?}");
            assert!((c.count * c.size) as usize <= bytes - SLAB_TAIL);
            // What `Slab::object`'s one multiply is proven for (below).
            assert!(bytes <= 1 << 16 && c.size <= 1 << 14);
        }
    }

    #[test]
    fn every_request_gets_the_smallest_fitting_class() {
        for n in 0..=SMALL_MAX {
            let c = of(n);
            assert!(CLASS[c].size as usize >= n.max(1));
            if c > 0 {
                assert!((CLASS[c - 1].size as usize) < n);
            }
        }
    }

    /// What `Slab::object` relies on: for every offset a slab can have,
    /// one multiply gives the object index, and the low half of the product
    /// is below `slab::EXACT` exactly when the offset starts an object.
    #[test]
    #[cfg_attr(miri, ignore = "two million multiplications")]
    fn reciprocal_division_is_exact_over_each_slab() {
        for c in &CLASS {
            for off in 0..1u64 << 16 {
                let q = off * c.recip as u64;
                let start = (q as u32) < crate::heap::slab::EXACT;
                assert_eq!(start, off % c.size as u64 == 0, "size {} off {off}", c.size);
                if start {
                    assert_eq!(q >> 32, off / c.size as u64, "size {} off {off}", c.size);
                }
            }
        }
    }

    #[test]
    fn aligned_classes_place_objects_on_the_boundary() {
        assert_eq!(of_aligned(40, 64).map(|c| CLASS[c].size), Some(64));
        assert_eq!(of_aligned(100, 64).map(|c| CLASS[c].size), Some(128));
        assert_eq!(of_aligned(1, 1024).map(|c| CLASS[c].size), Some(1024));
        assert_eq!(of_aligned(1, 4096).map(|c| CLASS[c].size), Some(4096));
        assert_eq!(of_aligned(1, 8192), None, "slabs are page-aligned only");
        assert_eq!(of_aligned(SMALL_MAX + 1, 16), None);
    }
}
