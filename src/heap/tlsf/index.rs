//! The two-level segregated-fit index (TLSF): size → (first level, second
//! level) class, found with two bit scans. Every operation is O(1): no list
//! walk ever looks for a fitting block.
//!
//! Classes: sizes below 256 are exact multiples of 16 (first level 0);
//! above, each power-of-two range [2^k, 2^(k+1)) is split into 16 equal
//! sub-ranges.

/// log2 of the number of second-level classes.
pub(crate) const SL_BITS: u32 = 4;
/// Second-level classes per first level.
pub(crate) const SL_COUNT: usize = 1 << SL_BITS;
/// Sizes below this are in first level 0, one class per 16 bytes.
const SMALL: usize = 1 << (SL_BITS + 4);
/// First-level classes: enough for any size below 2^64.
pub(crate) const FL_COUNT: usize = 64 - (SL_BITS as usize + 3);

/// The class a free block of `size` is filed under (rounding down).
#[inline]
pub fn class_of(size: usize) -> (usize, usize) {
    if size < SMALL {
        (0, size >> 4)
    } else {
        let msb = usize::BITS - 1 - size.leading_zeros();
        let fl = (msb - (SL_BITS + 3)) as usize;
        let sl = (size >> (msb - SL_BITS)) & (SL_COUNT - 1);
        (fl, sl)
    }
}

/// The lowest class whose every block is at least `size` (rounding up), or
/// `None` when no class can hold it.
#[inline]
pub fn class_for_request(size: usize) -> Option<(usize, usize)> {
    let rounded = if size < SMALL {
        size
    } else {
        let msb = usize::BITS - 1 - size.leading_zeros();
        size.checked_add((1 << (msb - SL_BITS)) - 1)?
    };
    let (fl, sl) = class_of(rounded);
    (fl < FL_COUNT).then_some((fl, sl))
}

/// The smallest size filed under class (fl, sl).
pub fn class_min(fl: usize, sl: usize) -> usize {
    if fl == 0 {
        sl << 4
    } else {
        let base = 1usize << (fl as u32 + SL_BITS + 3);
        base + sl * (base >> SL_BITS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_sizes_in_order() {
        let mut last = (0, 0);
        let mut size = 16;
        while size < (1 << 40) {
            let c = class_of(size);
            assert!(c >= last, "class order broken at {size}");
            assert!(class_min(c.0, c.1) <= size);
            last = c;
            size += 16 + size / 7 / 16 * 16;
        }
    }

    #[test]
    fn request_class_only_holds_big_enough_blocks() {
        for size in (16..70_000).step_by(16) {
            let (fl, sl) = class_for_request(size).unwrap();
            assert!(
                class_min(fl, sl) >= size,
                "size {size} -> class min {}",
                class_min(fl, sl)
            );
            // And it is the lowest such class: the one below may hold smaller blocks.
            let below = class_of(size);
            assert!((fl, sl) >= below);
        }
        assert_eq!(class_for_request(usize::MAX), None);
        assert!(class_of(1 << 62).0 < FL_COUNT);
    }
}
