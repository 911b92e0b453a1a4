//! The frame bitmap: one bit per 4 KiB frame (1 = free), a summary tree
//! above it (bit `i` of level `k+1` is set iff word `i` of level `k` is not
//! zero), a flat "reserved" bitmap beside it (1 = never allocatable), and
//! a "continues" bitmap (1 = allocated with the frame before it, by one
//! contiguous request), which tells a whole run from part of one.
//!
//! Level 0 has `ceil(frames / 64)` words; each level above has
//! `ceil(words below / 64)` words, up to a single top word. For 64 GiB that
//! is 262144 + 4096 + 64 + 1 words, so finding the next free frame from any
//! position reads at most two words per level: O(levels) at every fill
//! level, never a walk over the bitmap.
//!
//! Contiguous searches use a second index over the same words, the
//! free-run tree of `runs`.
//!
//! All words live in one caller-provided block of memory (placed in RAM by
//! the frame manager), laid out as: level 0, level 1, ..., the reserved and
//! continues bitmaps interleaved word by word (a single free reads both
//! from one cache line), run-tree levels, the run tree's queue.

use super::runs::{self, QUEUE, STORED};

/// Levels needed for 2^40 frames (the 52-bit physical address space).
const MAX_LEVELS: usize = 8;
/// Run-tree levels for 2^34 words (2^40 frames): one per halving.
const MAX_RUN_LEVELS: usize = 35;

/// Word offsets and lengths of each level inside the block.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub(super) frames: u64,
    levels: usize,
    start: [usize; MAX_LEVELS],
    pub(super) len: [usize; MAX_LEVELS],
    /// Reserved word `i` at `reserved + 2i`, continues word `i` after it.
    reserved: usize,
    /// Run-tree levels (0 and 1 computed, [`STORED`] and up kept).
    pub(super) run_levels: usize,
    pub(super) run_len: [usize; MAX_RUN_LEVELS],
    pub(super) run_start: [usize; MAX_RUN_LEVELS],
    /// Queue length, then up to [`QUEUE`] (word index, value when queued).
    pub(super) queue: usize,
    total: usize,
}

impl Shape {
    /// The shape for `frames` frames (1 ..= 2^40); `None` if out of range.
    pub fn new(frames: u64) -> Option<Self> {
        if frames == 0 || frames > 1 << 40 {
            return None;
        }
        let mut s = Shape {
            frames,
            levels: 1,
            start: [0; MAX_LEVELS],
            len: [0; MAX_LEVELS],
            reserved: 0,
            run_levels: 1,
            run_len: [0; MAX_RUN_LEVELS],
            run_start: [0; MAX_RUN_LEVELS],
            queue: 0,
            total: 0,
        };
        s.len[0] = usize::try_from(frames.div_ceil(64)).ok()?;
        while s.len[s.levels - 1] > 1 {
            s.start[s.levels] = s.start[s.levels - 1] + s.len[s.levels - 1];
            s.len[s.levels] = s.len[s.levels - 1].div_ceil(64);
            s.levels += 1;
        }
        s.reserved = s.start[s.levels - 1] + s.len[s.levels - 1];
        let mut at = s.reserved + 2 * s.len[0];
        s.run_len[0] = s.len[0];
        while s.run_len[s.run_levels - 1] > 1 {
            let k = s.run_levels;
            s.run_len[k] = s.run_len[k - 1].div_ceil(2);
            if k >= STORED {
                s.run_start[k] = at;
                at += s.run_len[k] * if k <= runs::NARROW { 1 } else { 3 };
            }
            s.run_levels += 1;
        }
        s.queue = at;
        s.total = s.queue + 1 + 2 * QUEUE;
        Some(s)
    }

    /// Size of the whole block in bytes.
    pub fn bytes(&self) -> u64 {
        self.total as u64 * 8
    }

    /// Number of words in the whole block.
    pub fn words(&self) -> usize {
        self.total
    }

    /// Frames tracked.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Where reserved word `wi` is.
    fn res(&self, wi: usize) -> usize {
        self.reserved + 2 * wi
    }

    /// Where continues word `wi` is.
    fn cont(&self, wi: usize) -> usize {
        self.reserved + 2 * wi + 1
    }
}

/// The per-frame maps `fill` changes.
#[derive(Clone, Copy)]
enum Layer {
    Free,
    Reserved,
    Continues,
}

/// Bit mask of bits `lo..hi` (0 <= lo < hi <= 64) within one word.
fn mask(lo: u64, hi: u64) -> u64 {
    let upper = if hi >= 64 { !0 } else { (1u64 << hi) - 1 };
    upper & (!0u64 << lo)
}

/// The (word index, bit mask) pieces that cover bits `lo..hi`: full words
/// in the middle, masked ones at the ends.
fn pieces(lo: u64, hi: u64) -> impl Iterator<Item = (usize, u64)> {
    let (first, last) = ((lo / 64) as usize, (hi.max(1) - 1) / 64);
    let (head, tail) = (!0u64 << (lo % 64), !0u64 >> (63 - (hi.max(1) - 1) % 64));
    let words = if lo < hi {
        first..last as usize + 1
    } else {
        0..0
    };
    words.map(move |wi| {
        let mut m = !0u64;
        if wi == first {
            m &= head;
        }
        if wi == last as usize {
            m &= tail;
        }
        (wi, m)
    })
}

/// Which per-frame map a range query looks at.
#[derive(Clone, Copy)]
enum Map {
    Free,
    /// Not free: allocated or reserved.
    Used,
    Reserved,
    /// Neither free nor reserved: allocated.
    Allocated,
    /// Not allocated together with the frame before it.
    Starts,
}

/// The bitmap over a block of words (`&[u64]` to read, `&mut [u64]` to
/// change). Indices are frame numbers.
pub struct Bitmap<'s, W> {
    w: W,
    pub(super) s: &'s Shape,
}

impl<'s, W: AsRef<[u64]>> Bitmap<'s, W> {
    /// Views `words` (exactly `shape.words()` long) with `shape`.
    pub fn new(words: W, s: &'s Shape) -> Self {
        debug_assert_eq!(words.as_ref().len(), s.total);
        Bitmap { w: words, s }
    }

    pub(super) fn r(&self) -> &[u64] {
        self.w.as_ref()
    }

    /// Frames tracked.
    pub fn frames(&self) -> u64 {
        self.s.frames
    }

    /// Whether frame `f` (< frames) is free.
    pub fn is_free(&self, f: u64) -> bool {
        self.r()[(f / 64) as usize] & (1 << (f % 64)) != 0
    }

    /// Whether frame `f` (< frames) is reserved.
    pub fn is_reserved(&self, f: u64) -> bool {
        self.r()[self.s.res((f / 64) as usize)] & (1 << (f % 64)) != 0
    }

    /// The lowest free frame `>= from`: climbs the summary until a level
    /// has a set bit to the right, then descends taking the lowest bits.
    pub fn next_free(&self, from: u64) -> Option<u64> {
        let (s, w) = (self.s, self.r());
        if from >= s.frames {
            return None;
        }
        let mut pos = from as usize;
        let mut lvl = 0;
        loop {
            let wi = pos / 64;
            if wi >= s.len[lvl] {
                return None;
            }
            let word = w[s.start[lvl] + wi] & (!0u64 << (pos % 64));
            if word != 0 {
                pos = wi * 64 + word.trailing_zeros() as usize;
                break;
            }
            lvl += 1;
            if lvl == s.levels {
                return None;
            }
            pos = wi + 1;
        }
        while lvl > 0 {
            lvl -= 1;
            let word = w[s.start[lvl] + pos];
            if word == 0 {
                // A summary bit without a free frame below: corruption,
                // which `check` reports. Never index past the level.
                return None;
            }
            pos = pos * 64 + word.trailing_zeros() as usize;
        }
        Some(pos as u64)
    }

    /// Level-0 word `wi` seen as the map `m`.
    fn word(&self, m: Map, wi: usize) -> u64 {
        let w = self.r();
        match m {
            Map::Free => w[wi],
            Map::Used => !w[wi],
            Map::Reserved => w[self.s.res(wi)],
            Map::Allocated => !(w[wi] | w[self.s.res(wi)]),
            Map::Starts => !w[self.s.cont(wi)],
        }
    }

    /// The first frame in `lo..hi` (hi <= frames) that is set in map `m`.
    fn first_in(&self, m: Map, lo: u64, hi: u64) -> Option<u64> {
        pieces(lo, hi).find_map(|(wi, mk)| {
            let hits = self.word(m, wi) & mk;
            (hits != 0).then(|| wi as u64 * 64 + u64::from(hits.trailing_zeros()))
        })
    }

    /// How many frames in `lo..hi` (hi <= frames) are set in map `m`.
    fn count_in(&self, m: Map, lo: u64, hi: u64) -> u64 {
        pieces(lo, hi)
            .map(|(wi, mk)| u64::from((self.word(m, wi) & mk).count_ones()))
            .sum()
    }

    /// The first free frame in `lo..hi`.
    pub fn first_free(&self, lo: u64, hi: u64) -> Option<u64> {
        self.first_in(Map::Free, lo, hi)
    }

    /// The first used (allocated or reserved) frame in `lo..hi`.
    pub fn first_used(&self, lo: u64, hi: u64) -> Option<u64> {
        self.first_in(Map::Used, lo, hi)
    }

    /// The first reserved frame in `lo..hi`.
    pub fn first_reserved(&self, lo: u64, hi: u64) -> Option<u64> {
        self.first_in(Map::Reserved, lo, hi)
    }

    /// Whether allocated frame `f` (< frames) is part of a longer
    /// contiguous run: it continues `f - 1` or `f + 1` continues it.
    #[inline(always)]
    pub fn in_run(&self, f: u64) -> bool {
        let (wi, b) = ((f / 64) as usize, f % 64);
        let c = self.r()[self.s.cont(wi)];
        if b < 63 {
            return c >> b & 0b11 != 0;
        }
        c >> 63 != 0 || (f + 1 < self.s.frames && self.continues(f + 1))
    }

    /// Whether frame `f` (< frames) was allocated together with `f - 1`.
    #[inline]
    pub fn continues(&self, f: u64) -> bool {
        self.r()[self.s.cont((f / 64) as usize)] & (1 << (f % 64)) != 0
    }

    /// The contiguous allocation holding allocated frame `f`: its first
    /// frame and its length (1 for a single frame).
    pub fn run_of(&self, f: u64) -> (u64, u64) {
        // Back to the last frame at or below `f` that does not continue.
        let (mut wi, mut m) = ((f / 64) as usize, mask(0, f % 64 + 1));
        let start = loop {
            let starts = !self.r()[self.s.cont(wi)] & m;
            if starts != 0 {
                break wi as u64 * 64 + 63 - u64::from(starts.leading_zeros());
            }
            if wi == 0 {
                break 0; // frame 0 never continues; corruption otherwise
            }
            (wi, m) = (wi - 1, !0);
        };
        let end = self
            .first_in(Map::Starts, f + 1, self.s.frames)
            .unwrap_or(self.s.frames);
        (start, end - start)
    }

    /// The first allocated (neither free nor reserved) frame in `lo..hi`.
    pub fn first_allocated(&self, lo: u64, hi: u64) -> Option<u64> {
        self.first_in(Map::Allocated, lo, hi)
    }

    /// Free frames in `lo..hi`.
    pub fn free_in(&self, lo: u64, hi: u64) -> u64 {
        self.count_in(Map::Free, lo, hi)
    }

    /// Reserved frames in `lo..hi`.
    pub fn reserved_in(&self, lo: u64, hi: u64) -> u64 {
        self.count_in(Map::Reserved, lo, hi)
    }

    /// Number of free frames.
    pub fn count_free(&self) -> u64 {
        self.r()[..self.s.len[0]]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum()
    }

    /// Number of frames not reserved (padding bits past the end stay reserved).
    pub fn count_unreserved(&self) -> u64 {
        (0..self.s.len[0])
            .map(|i| u64::from(self.r()[self.s.res(i)].count_zeros()))
            .sum()
    }

    /// The summary word `p` of level `lvl + 1`, computed from level `lvl`.
    fn summary_of(&self, lvl: usize, p: usize) -> u64 {
        let s = self.s;
        let lo = p * 64;
        let hi = s.len[lvl].min(lo + 64);
        self.r()[s.start[lvl] + lo..s.start[lvl] + hi]
            .iter()
            .enumerate()
            .fold(0, |acc, (i, &w)| acc | (u64::from(w != 0) << i))
    }

    /// Structural problems: words with frames both free and reserved, free
    /// bits past the end, "continues" bits on frames that are not allocated
    /// after an allocated one, summary words that disagree with the level
    /// below, run-tree nodes that disagree with theirs.
    pub fn problems(&self) -> usize {
        let (s, w) = (self.s, self.r());
        let mut n = (0..s.len[0]).filter(|&i| w[i] & w[s.res(i)] != 0).count();
        let allocated = |i: usize| !(w[i] | w[s.res(i)]);
        n += (0..s.len[0])
            .filter(|&i| {
                let before = allocated(i) << 1 | if i == 0 { 0 } else { allocated(i - 1) >> 63 };
                w[s.cont(i)] & !(allocated(i) & before) != 0
            })
            .count();
        let tail = s.frames % 64;
        if tail != 0 && w[s.len[0] - 1] & mask(tail, 64) != 0 {
            n += 1;
        }
        for lvl in 0..s.levels - 1 {
            n += (0..s.len[lvl + 1])
                .filter(|&p| w[s.start[lvl + 1] + p] != self.summary_of(lvl, p))
                .count();
        }
        n + self.run_problems()
    }
}

impl<W: AsRef<[u64]> + AsMut<[u64]>> Bitmap<'_, W> {
    pub(super) fn m(&mut self) -> &mut [u64] {
        self.w.as_mut()
    }

    /// All frames reserved, none free, the run tree empty: the starting
    /// point of init.
    pub fn clear_all(&mut self) {
        let s = self.s;
        self.m().fill(0);
        for i in 0..s.len[0] {
            self.m()[s.res(i)] = !0;
        }
    }

    /// Marks free frame `f` used, keeping the summary exact (the run tree
    /// is told through its queue).
    pub fn take(&mut self, f: u64) {
        let s = self.s;
        let old = self.r()[(f / 64) as usize];
        let mut pos = f as usize;
        for lvl in 0..s.levels {
            let w = &mut self.m()[s.start[lvl] + pos / 64];
            *w &= !(1u64 << (pos % 64));
            if *w != 0 {
                break;
            }
            pos /= 64;
        }
        // After the change: noting may apply the queue at once.
        self.note((f / 64) as usize, old);
    }

    /// Marks used frame `f` free, keeping the summary exact (the run tree
    /// is told through its queue).
    pub fn give(&mut self, f: u64) {
        let s = self.s;
        let old = self.r()[(f / 64) as usize];
        let mut pos = f as usize;
        for lvl in 0..s.levels {
            let w = &mut self.m()[s.start[lvl] + pos / 64];
            let was = *w;
            *w |= 1u64 << (pos % 64);
            if was != 0 {
                break;
            }
            pos /= 64;
        }
        self.note((f / 64) as usize, old);
    }

    /// Sets (`on`) or clears frames `lo..hi` of the free or reserved map.
    fn fill(&mut self, reserved: bool, on: bool, lo: u64, hi: u64) {
        let layer = if reserved {
            Layer::Reserved
        } else {
            Layer::Free
        };
        self.fill_at(layer, on, lo, hi);
    }

    fn fill_at(&mut self, layer: Layer, on: bool, lo: u64, hi: u64) {
        let s = self.s;
        let hi = hi.min(s.frames);
        for (wi, mk) in pieces(lo, hi) {
            let at = match layer {
                Layer::Free => wi,
                Layer::Reserved => s.res(wi),
                Layer::Continues => s.cont(wi),
            };
            let w = &mut self.m()[at];
            *w = if on { *w | mk } else { *w & !mk };
        }
    }

    /// Marks allocated frames `lo..hi` as one contiguous allocation (`on`:
    /// each continues the one before, `lo` starts it) or clears the marks.
    pub fn set_run(&mut self, lo: u64, hi: u64, on: bool) {
        if on {
            self.fill_at(Layer::Continues, false, lo, lo + 1);
            self.fill_at(Layer::Continues, true, lo + 1, hi);
        } else {
            self.fill_at(Layer::Continues, false, lo, hi);
        }
    }

    /// Init only: marks frames `lo..hi` reserved (`on`) or not, leaving the
    /// free map and summary alone (`free_unreserved` rebuilds both).
    pub fn set_reserved(&mut self, lo: u64, hi: u64, on: bool) {
        self.fill(true, on, lo, hi);
    }

    /// Marks frames `lo..hi` reserved (and not free); summary refreshed.
    pub fn reserve(&mut self, lo: u64, hi: u64) {
        let hi = hi.min(self.s.frames);
        if lo < hi {
            self.fill(true, true, lo, hi);
            self.set_range(lo, hi, false);
        }
    }

    /// Marks frames `lo..hi` free or used; summary and run tree refreshed.
    pub fn set_range(&mut self, lo: u64, hi: u64, free: bool) {
        let hi = hi.min(self.s.frames);
        if lo < hi {
            self.fill(false, free, lo, hi);
            self.refresh(lo, hi);
            self.refresh_runs(lo, hi);
        }
    }

    /// Makes every non-reserved frame free and rebuilds the summary and the
    /// run tree.
    pub fn free_unreserved(&mut self) {
        let s = self.s;
        for i in 0..s.len[0] {
            let r = self.m()[s.res(i)];
            self.m()[i] = !r;
        }
        self.refresh(0, s.frames);
        self.rebuild_runs();
    }

    /// Brings the summary above frames `lo..hi` (lo < hi) up to date: one
    /// parent bit per changed word, level by level (a run of n frames costs
    /// about n/64 + levels word updates, not a rescan of the children).
    fn refresh(&mut self, lo: u64, hi: u64) {
        let s = self.s;
        let (mut a, mut b) = ((lo / 64) as usize, ((hi - 1) / 64) as usize);
        for lvl in 0..s.levels - 1 {
            for i in a..=b {
                let set = self.m()[s.start[lvl] + i] != 0;
                let parent = &mut self.m()[s.start[lvl + 1] + i / 64];
                let bit = 1u64 << (i % 64);
                *parent = if set { *parent | bit } else { *parent & !bit };
            }
            (a, b) = (a / 64, b / 64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(frames: u64) -> (Shape, Vec<u64>) {
        let s = Shape::new(frames).unwrap();
        (s, vec![0; s.words()])
    }

    #[test]
    fn shape_levels_and_sizes() {
        let q = 1 + 2 * QUEUE as u64;
        // A free word, a reserved word and a continues word; the run
        // tree's root is the word itself; the queue.
        let s = Shape::new(1).unwrap();
        assert_eq!((s.levels, s.run_levels, s.words()), (1, 1, 3 + q as usize));
        // 65 level-0 words, 2 above them, 1 top, 65 reserved, 65 continues;
        // run levels of 65, 33 (computed), 17, 9, 5, 3, 2, 1 (stored)
        // nodes; the queue.
        let s = Shape::new(64 * 64 + 1).unwrap();
        assert_eq!((s.levels, s.run_levels), (3, 8));
        assert_eq!(s.bytes(), (65 + 2 + 1 + 2 * 65 + 37 + q) * 8);
        // 64 GiB of frames: 2 MiB each for the free, reserved and continues
        // maps; run levels 2..=14 one word a node, 15..=18 (8 + 4 + 2 + 1
        // nodes) three; the queue.
        let s = Shape::new(16 << 20).unwrap();
        assert_eq!((s.levels, s.run_levels), (4, 19));
        let runs = ((1 << 17) - (1 << 4)) + 15 * 3;
        assert_eq!(
            s.bytes(),
            (262_144 + 4096 + 64 + 1 + 2 * 262_144 + runs + q) * 8
        );
        assert!(Shape::new(0).is_none());
        assert!(Shape::new((1 << 40) + 1).is_none());
    }

    #[test]
    fn next_free_crosses_every_level() {
        let (s, mut w) = make(300_000);
        let mut b = Bitmap::new(&mut w, &s);
        b.clear_all();
        b.set_reserved(0, 300_000, false);
        b.set_reserved(0, 299_990, true);
        b.free_unreserved();
        assert_eq!(b.problems(), 0);
        assert_eq!(b.next_free(0), Some(299_990));
        assert_eq!(b.next_free(299_995), Some(299_995));
        assert_eq!(b.next_free(300_000), None);
        for f in 299_990..300_000 {
            b.take(f);
        }
        assert_eq!(b.next_free(0), None);
        assert_eq!(b.problems(), 0);
        b.give(5);
        assert_eq!(b.next_free(0), Some(5));
        assert_eq!(b.next_free(6), None);
        assert_eq!(b.problems(), 1, "frame 5 is free and reserved");
    }

    #[test]
    fn range_queries_match_a_bit_walk() {
        let (s, mut w) = make(1000);
        let mut b = Bitmap::new(&mut w, &s);
        b.clear_all();
        b.set_reserved(0, 1000, false);
        b.free_unreserved();
        let used = [3u64, 64, 65, 127, 128, 500, 999];
        for &f in &used {
            b.take(f);
        }
        for lo in (0..1000).step_by(7) {
            for hi in (lo..=1000).step_by(13) {
                let walk = (lo..hi).find(|f| used.contains(f));
                assert_eq!(b.first_used(lo, hi), walk, "{lo}..{hi}");
                let walk = (lo..hi).find(|f| !used.contains(f));
                assert_eq!(b.first_free(lo, hi), walk, "{lo}..{hi}");
            }
        }
        b.set_range(100, 300, false);
        assert_eq!(b.first_free(99, 301), Some(99));
        assert_eq!(b.first_free(100, 301), Some(300));
        assert_eq!(b.count_free(), 1000 - 7 - 200 + 2);
        assert_eq!(b.problems(), 0);
    }
}
