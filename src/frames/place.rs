//! Where the bitmap goes: the lowest frame-aligned gap of usable RAM below
//! `phys_limit`, clear of everything forbidden, at or above 16 MiB if one
//! exists. Touching and overlapping usable entries count as one region
//! (UEFI and e820 maps split RAM into many adjacent entries).
//!
//! Nothing is allocated and the map may hold thousands of unsorted
//! entries, so both the usable ranges and the forbidden ones are streamed
//! in ascending order through a small fixed buffer ([`Ascending`]): one walk
//! over the map per [`BATCH`] distinct ranges, and the sweep itself is a
//! single merge of the two streams.

/// Ranges delivered per walk over the source.
const BATCH: usize = 64;

/// A walk over ranges: calls its argument with `(start, end)` of each.
pub(super) type Walk<'w> = dyn Fn(&mut dyn FnMut(u64, u64)) + 'w;

/// The distinct non-empty `(start, end)` ranges of a walk, ascending. Each
/// refill walks the source again and keeps the [`BATCH`] smallest ranges
/// after the last one delivered (equal ranges are one: dropping duplicates
/// changes no union).
struct Ascending<'w> {
    walk: &'w Walk<'w>,
    buf: [(u64, u64); 2 * BATCH],
    len: usize,
    next: usize,
    last: Option<(u64, u64)>,
    done: bool,
}

impl<'w> Ascending<'w> {
    fn new(walk: &'w Walk<'w>) -> Self {
        Ascending {
            walk,
            buf: [(0, 0); 2 * BATCH],
            len: 0,
            next: 0,
            last: None,
            done: false,
        }
    }

    fn refill(&mut self) {
        let (last, buf) = (self.last, &mut self.buf);
        let (mut len, mut cut) = (0, None);
        (self.walk)(&mut |s, e| {
            let r = (s, e);
            if e <= s || last.is_some_and(|l| r <= l) || cut.is_some_and(|c| r >= c) {
                return;
            }
            buf[len] = r;
            len += 1;
            if len == buf.len() {
                len = smallest(buf);
                // Anything not below the last kept range is past this batch.
                cut = (len == BATCH).then(|| buf[BATCH - 1]);
            }
        });
        self.len = smallest(&mut self.buf[..len]);
        self.next = 0;
        self.done = self.len == 0;
    }
}

/// Sorts `buf`, drops duplicates and returns how many of the smallest
/// distinct ranges (at most [`BATCH`]) now lead it.
fn smallest(buf: &mut [(u64, u64)]) -> usize {
    buf.sort_unstable();
    let mut n = 0;
    for i in 0..buf.len() {
        if n == 0 || buf[i] != buf[n - 1] {
            buf[n] = buf[i];
            n += 1;
        }
    }
    n.min(BATCH)
}

impl Iterator for Ascending<'_> {
    type Item = (u64, u64);

    fn next(&mut self) -> Option<(u64, u64)> {
        if self.next == self.len && !self.done {
            self.refill();
        }
        let r = *self.buf[..self.len].get(self.next)?;
        self.next += 1;
        self.last = Some(r);
        Some(r)
    }
}

/// Merges ascending ranges that touch or overlap.
fn regions(ranges: impl Iterator<Item = (u64, u64)>) -> impl Iterator<Item = (u64, u64)> {
    let mut it = ranges.peekable();
    core::iter::from_fn(move || {
        let (start, mut end) = it.next()?;
        while let Some((_, e)) = it.next_if(|&(s, _)| s <= end) {
            end = end.max(e);
        }
        Some((start, end))
    })
}

/// Whether `[start, end)` lies inside one region of the walk's ranges
/// (touching and overlapping ranges count as one).
pub(super) fn covers(usable: &Walk<'_>, start: u64, end: u64) -> bool {
    regions(Ascending::new(usable))
        .take_while(|&(s, _)| s <= start)
        .any(|(s, e)| s <= start && end <= e)
}

/// The lowest `frame`-aligned start of `bytes` inside a usable region,
/// below `limit`, overlapping no forbidden range: the lowest at or above
/// `high` if there is one, else the lowest.
pub(super) fn lowest_gap(
    usable: &Walk<'_>,
    forbidden: &Walk<'_>,
    bytes: u64,
    limit: u64,
    (frame, high): (u64, u64),
) -> Option<u64> {
    let fit = |from: u64, end: u64| {
        let at = from.checked_next_multiple_of(frame)?;
        at.checked_add(bytes).filter(|&e| e <= end).map(|_| at)
    };
    let mut blockers = Ascending::new(forbidden).peekable();
    let (mut low, mut covered) = (None, 0);
    for (start, end) in regions(Ascending::new(usable)) {
        let end = end.min(limit);
        if start >= end {
            break;
        }
        let mut at = start.max(covered);
        loop {
            let gap_end = match blockers.peek() {
                Some(&(s, _)) if s < end => s,
                _ => end,
            };
            if gap_end > at {
                low = low.or_else(|| fit(at, gap_end));
                if let Some(hit) = fit(at.max(high), gap_end) {
                    return Some(hit);
                }
            }
            let Some((_, e)) = blockers.next_if(|&(s, _)| s < end) else {
                break;
            };
            covered = covered.max(e);
            at = at.max(e);
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(ranges: &[(u64, u64)]) -> impl Fn(&mut dyn FnMut(u64, u64)) + '_ {
        move |f| ranges.iter().for_each(|&(s, e)| f(s, e))
    }

    #[test]
    fn ascending_is_sorted_distinct_and_non_empty_across_batches() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut ranges: Vec<(u64, u64)> = (0..1000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let s = seed % 300;
                (s, s + seed % 7) // some empty, many duplicates
            })
            .collect();
        ranges.extend([(5, 9); 200]);
        let walk = list(&ranges);
        let got: Vec<_> = Ascending::new(&walk).collect();
        let mut want: Vec<_> = ranges.iter().copied().filter(|r| r.1 > r.0).collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(got, want);
        assert!(want.len() > 3 * BATCH, "the test must span several batches");
    }

    #[test]
    fn regions_merge_touching_and_overlapping() {
        let walk = list(&[(30, 40), (0, 10), (10, 20), (15, 18), (40, 41), (50, 60)]);
        let got: Vec<_> = regions(Ascending::new(&walk)).collect();
        assert_eq!(got, [(0, 20), (30, 41), (50, 60)]);
    }

    #[test]
    fn covers_needs_one_region() {
        let walk = list(&[(30, 40), (0, 10), (10, 20), (50, 60)]);
        assert!(covers(&walk, 0, 20), "touching ranges are one region");
        assert!(covers(&walk, 5, 15));
        assert!(covers(&walk, 30, 40));
        assert!(!covers(&walk, 15, 35), "across a hole");
        assert!(!covers(&walk, 55, 61), "past the end");
        assert!(!covers(&walk, 70, 80), "above everything");
        assert!(!covers(&walk, 20, 25), "in a hole");
    }

    #[test]
    fn lowest_gap_prefers_high_then_lowest() {
        let gap = |usable: &[(u64, u64)], forbidden: &[(u64, u64)], bytes, limit| {
            lowest_gap(&list(usable), &list(forbidden), bytes, limit, (10, 100))
        };
        // Adjacent usable pieces hold what no single one can.
        assert_eq!(gap(&[(0, 20), (20, 40)], &[], 30, 1000), Some(0));
        // High preferred; the low gap is the fallback.
        assert_eq!(gap(&[(0, 50), (100, 200)], &[], 30, 1000), Some(100));
        assert_eq!(gap(&[(0, 50), (100, 120)], &[], 30, 1000), Some(0));
        // Inside a region that starts low, from `high` on.
        assert_eq!(gap(&[(0, 500)], &[], 30, 1000), Some(100));
        // Forbidden ranges split regions; ends are rounded up to the frame.
        assert_eq!(gap(&[(0, 500)], &[(90, 131)], 30, 1000), Some(140));
        assert_eq!(gap(&[(0, 500)], &[(0, 480)], 30, 1000), None);
        // A forbidden range spanning a hole still covers the next region.
        assert_eq!(
            gap(&[(0, 50), (100, 200)], &[(40, 150)], 30, 1000),
            Some(150)
        );
        // The limit cuts regions.
        assert_eq!(gap(&[(100, 500)], &[], 30, 120), None);
        assert_eq!(gap(&[(0, 40), (100, 500)], &[], 30, 120), Some(0));
    }
}
