//! `make bench-frames`: memshim's frame manager side by side with a naive
//! scan-from-zero bitmap (the original hobby-OS approach, given a
//! word-at-a-time scan) and the `bitmap-allocator` crate (a 16-way
//! segment tree), over 16 GiB of simulated RAM.
//!
//! Rows: one alloc+free pair of a single frame at 0/50/99/99.9 % fill, with
//! the fill made two ways — "packed" (the frames taken by the allocator's
//! own alloc calls, as a kernel fills memory) and "scattered" (everything
//! taken, then a random subset given back); 2 MiB-aligned runs of 512
//! frames (alloc+free) at 0 % and packed 50 % fill; and the time to
//! initialise a 64 GiB map. A cell is the median of 5 timed batches, each
//! long enough (>= 20 ms) to swamp the timer.
//!
//!     cargo run --release -p memshim-bench --bin bench-frames [-- --quick]

use bitmap_allocator::{BitAlloc, BitAlloc16M};
use memshim::frames::FrameManager;
use memshim::types::{memshim_boot_config, memshim_range};
use memshim_bench::Rng;
use std::hint::black_box;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const FRAME: u64 = 4096;
/// Simulated RAM for the alloc/free rows.
const RAM: u64 = 16 * GIB;
/// Host buffer that plays physical 0..BUF (holds memshim's bitmap).
const BUF: u64 = 8 * MIB;
/// Frames below 1 MiB are never handed out by any of the three.
const LOW: usize = 256;

/// What the benchmark needs from each allocator: frame numbers in and out.
trait Frames {
    fn alloc(&mut self) -> Option<u64>;
    fn free(&mut self, f: u64);
    fn alloc_run(&mut self, n: usize, align_frames: u64) -> Option<u64>;
    fn free_run(&mut self, f: u64, n: usize);
    /// Frames it can hand out in all.
    fn total(&self) -> usize;
    /// Takes a frame while filling (not timed): by default `alloc`.
    fn fill_alloc(&mut self) -> Option<u64> {
        self.alloc()
    }
}

// ---- memshim ------------------------------------------------------------

/// Page-aligned host memory playing physical 0..BUF.
struct HostRam(*mut u8);

impl HostRam {
    fn new() -> Self {
        let layout = std::alloc::Layout::from_size_align(BUF as usize, 4096).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!p.is_null());
        HostRam(p)
    }

    fn config(&self) -> memshim_boot_config {
        memshim_boot_config {
            kernel_start: 0,
            kernel_end: 0,
            phys_offset: self.0 as u64,
            phys_limit: BUF,
        }
    }

    /// A manager over `ranges`, its bitmap in this buffer.
    fn manager(&self, ranges: &[(u64, u64)]) -> FrameManager {
        let list: Vec<memshim_range> = ranges
            .iter()
            .map(|&(base, length)| memshim_range { base, length })
            .collect();
        let mut fm = FrameManager::new();
        // SAFETY: the buffer plays RAM below phys_limit and outlives the
        // manager (each benchmark drops it before building the next).
        unsafe { fm.init_ranges(&list, &self.config()) }.expect("init");
        fm
    }
}

impl Drop for HostRam {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(BUF as usize, 4096).unwrap();
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.0, layout) };
    }
}

struct Memshim(FrameManager);

impl Frames for Memshim {
    fn alloc(&mut self) -> Option<u64> {
        self.0.alloc()
    }
    fn free(&mut self, f: u64) {
        self.0.free(f).expect("memshim free");
    }
    fn alloc_run(&mut self, n: usize, align_frames: u64) -> Option<u64> {
        self.0.alloc_contiguous(n, align_frames * FRAME, 0)
    }
    fn free_run(&mut self, f: u64, n: usize) {
        self.0
            .free_contiguous(f, n)
            .expect("memshim free_contiguous");
    }
    fn total(&self) -> usize {
        self.0.counts().0 as usize
    }
}

// ---- the naive bitmap -----------------------------------------------------

/// One bit per frame (1 = used), every search from frame 0 — the original
/// design — with a word-at-a-time scan to be fair to it.
struct Naive {
    used: Vec<u64>,
    /// Where filling continues (filling through `alloc` would take
    /// minutes: it is quadratic).
    cursor: usize,
}

impl Naive {
    fn new(frames: usize) -> Self {
        let mut used = vec![0u64; frames.div_ceil(64)];
        used[..LOW / 64].fill(!0);
        Naive { used, cursor: 0 }
    }

    fn is_used(&self, f: usize) -> bool {
        self.used[f / 64] & (1 << (f % 64)) != 0
    }

    fn take_first_free_from(&mut self, from: usize) -> Option<u64> {
        let wi = from + self.used[from..].iter().position(|&w| w != !0)?;
        let bit = (!self.used[wi]).trailing_zeros() as usize;
        self.used[wi] |= 1 << bit;
        Some((wi * 64 + bit) as u64)
    }
}

impl Frames for Naive {
    fn alloc(&mut self) -> Option<u64> {
        self.take_first_free_from(0)
    }
    fn fill_alloc(&mut self) -> Option<u64> {
        let f = self.take_first_free_from(self.cursor)?;
        self.cursor = f as usize / 64;
        Some(f)
    }
    fn free(&mut self, f: u64) {
        self.used[f as usize / 64] &= !(1 << (f % 64));
    }
    fn alloc_run(&mut self, n: usize, align_frames: u64) -> Option<u64> {
        let frames = self.used.len() * 64;
        let mut s = 0;
        while s + n <= frames {
            if (s..s + n).step_by(64).all(|f| self.used[f / 64] == 0) && n.is_multiple_of(64) {
                self.used[s / 64..(s + n) / 64].fill(!0);
                return Some(s as u64);
            }
            if !n.is_multiple_of(64) && (s..s + n).all(|f| !self.is_used(f)) {
                (s..s + n).for_each(|f| self.used[f / 64] |= 1 << (f % 64));
                return Some(s as u64);
            }
            s += align_frames as usize;
        }
        None
    }
    fn free_run(&mut self, f: u64, n: usize) {
        if f.is_multiple_of(64) && n.is_multiple_of(64) {
            self.used[f as usize / 64..(f as usize + n) / 64].fill(0);
        } else {
            (f..f + n as u64).for_each(|g| self.free(g));
        }
    }
    fn total(&self) -> usize {
        self.used.len() * 64 - LOW
    }
}

// ---- bitmap-allocator -------------------------------------------------------

struct Crate(Box<BitAlloc16M>);

impl Crate {
    fn new(frames: usize) -> Self {
        // SAFETY: the type is nested arrays of u16 (all-zero = DEFAULT, all
        // used); building it zeroed on the heap avoids a 2 MiB stack value.
        let mut b = Crate(unsafe { Box::<BitAlloc16M>::new_zeroed().assume_init() });
        b.0.insert(LOW..frames);
        b
    }
}

impl Frames for Crate {
    fn alloc(&mut self) -> Option<u64> {
        self.0.alloc().map(|f| f as u64)
    }
    fn free(&mut self, f: u64) {
        self.0.dealloc(f as usize);
    }
    fn alloc_run(&mut self, n: usize, align_frames: u64) -> Option<u64> {
        let log2 = align_frames.trailing_zeros() as usize;
        self.0.alloc_contiguous(None, n, log2).map(|f| f as u64)
    }
    fn free_run(&mut self, f: u64, n: usize) {
        self.0.dealloc_contiguous(f as usize, n);
    }
    fn total(&self) -> usize {
        (RAM / FRAME) as usize - LOW
    }
}

// ---- measurement ------------------------------------------------------------

struct Opts {
    batches: usize,
    min_batch: Duration,
}

/// Median ns per call of `op` over `opts.batches` batches.
fn time(opts: &Opts, mut op: impl FnMut()) -> f64 {
    let mut per = Vec::new();
    let mut n = 1u64;
    while per.len() < opts.batches {
        let t = Instant::now();
        for _ in 0..n {
            op();
        }
        let el = t.elapsed();
        if el < opts.min_batch {
            n *= 2;
            continue;
        }
        per.push(el.as_nanos() as f64 / n as f64);
    }
    per.sort_by(f64::total_cmp);
    per[per.len() / 2]
}

#[derive(Clone, Copy)]
enum Fill {
    Packed,
    Scattered,
}

/// Brings `a` to `fill` (0..1) of its frames.
fn fill_to(a: &mut dyn Frames, fill: f64, how: Fill) {
    let keep = (a.total() as f64 * fill) as usize;
    match how {
        Fill::Packed => (0..keep).for_each(|_| {
            a.fill_alloc().expect("fill");
        }),
        Fill::Scattered => {
            let mut all: Vec<u64> = std::iter::from_fn(|| a.fill_alloc()).collect();
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
            for i in (1..all.len()).rev() {
                all.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
            }
            all[keep..].iter().for_each(|&f| a.free(f));
        }
    }
}

fn single_pair(opts: &Opts, a: &mut dyn Frames) -> f64 {
    time(opts, || {
        let f = a.alloc().expect("a frame");
        a.free(black_box(f));
    })
}

fn run_pair(opts: &Opts, a: &mut dyn Frames) -> f64 {
    time(opts, || {
        let f = a.alloc_run(512, 512).expect("a 2 MiB run");
        a.free_run(black_box(f), 512);
    })
}

/// One table row: `op` on each allocator after the same `prepare`.
fn row(
    opts: &Opts,
    ram: &HostRam,
    prepare: impl Fn(&mut dyn Frames),
    op: fn(&Opts, &mut dyn Frames) -> f64,
) -> [f64; 3] {
    let frames = (RAM / FRAME) as usize;
    let mut out = [0.0; 3];
    let makers: [&dyn Fn() -> Box<dyn Frames>; 3] = [
        &|| Box::new(Memshim(ram.manager(&[(0, RAM)]))),
        &|| Box::new(Naive::new(frames)),
        &|| Box::new(Crate::new(frames)),
    ];
    for (cell, make) in out.iter_mut().zip(makers) {
        let mut a = make();
        prepare(a.as_mut());
        *cell = op(opts, a.as_mut());
    }
    out
}

/// A typical 64 GiB PC map: low memory, 1 MiB..3 GiB, the PCI hole, 4..65 GiB.
const MAP_64G: [(u64, u64); 3] = [(0, 0x9_FC00), (MIB, 3 * GIB - MIB), (4 * GIB, 60 * GIB)];

/// Frame range `lo..hi` of a map entry (nothing below 1 MiB).
fn frames_of(base: u64, len: u64) -> (usize, usize) {
    let lo = (base.div_ceil(FRAME) as usize).max(LOW);
    (lo, (((base + len) / FRAME) as usize).max(lo))
}

fn init_times(opts: &Opts, ram: &HostRam) -> [f64; 3] {
    let frames = (64 * GIB / FRAME) as usize;
    let m = time(opts, || {
        black_box(ram.manager(&MAP_64G));
    });
    let n = time(opts, || {
        let mut used = vec![!0u64; frames.div_ceil(64)];
        for &(base, len) in &MAP_64G {
            let (lo, hi) = frames_of(base, len);
            // Whole words at once, the partial ends bit by bit.
            let (wlo, whi) = (lo.div_ceil(64), hi / 64);
            (lo..(wlo * 64).min(hi)).for_each(|f| used[f / 64] &= !(1 << (f % 64)));
            if wlo < whi {
                used[wlo..whi].fill(0);
            }
            ((whi * 64).max(lo)..hi).for_each(|f| used[f / 64] &= !(1 << (f % 64)));
        }
        black_box(used);
    });
    let c = time(opts, || {
        // SAFETY: as in `Crate::new`.
        let mut b = unsafe { Box::<BitAlloc16M>::new_zeroed().assume_init() };
        for &(base, len) in &MAP_64G {
            let (lo, hi) = frames_of(base, len);
            b.insert(lo..hi);
        }
        black_box(b);
    });
    [m, n, c]
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.0} ns", ns)
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let opts = Opts {
        batches: if quick { 3 } else { 5 },
        min_batch: Duration::from_millis(if quick { 5 } else { 20 }),
    };
    let ram = HostRam::new();
    let mut rows: Vec<(String, [f64; 3])> = Vec::new();
    for how in [Fill::Packed, Fill::Scattered] {
        for fill in [0.0, 0.5, 0.99, 0.999] {
            if fill == 0.0 && matches!(how, Fill::Scattered) {
                continue; // the same as packed at 0 %
            }
            let name = match how {
                Fill::Packed if fill == 0.0 => "1 frame alloc+free, empty".to_string(),
                Fill::Packed => format!("1 frame alloc+free, {}% full, packed", fill * 100.0),
                Fill::Scattered => format!("1 frame alloc+free, {}% full, scattered", fill * 100.0),
            };
            let r = row(&opts, &ram, |a| fill_to(a, fill, how), single_pair);
            eprintln!("{name}: {r:?}");
            rows.push((name, r));
        }
    }
    for fill in [0.0, 0.5] {
        let name = format!(
            "2 MiB-aligned 512-frame run alloc+free, {}% full, packed",
            fill * 100.0
        );
        let r = row(&opts, &ram, |a| fill_to(a, fill, Fill::Packed), run_pair);
        eprintln!("{name}: {r:?}");
        rows.push((name, r));
    }
    let init_opts = Opts {
        batches: opts.batches,
        min_batch: Duration::ZERO,
    };
    let r = init_times(&init_opts, &ram);
    rows.push(("init from a 64 GiB memory map".into(), r));

    println!(
        "| 16 GiB simulated RAM | memshim | naive bitmap (scan from 0) | bitmap-allocator 0.2.1 |"
    );
    println!("|---|---|---|---|");
    for (name, [a, b, c]) in &rows {
        println!(
            "| {name} | {} | {} | {} |",
            fmt_ns(*a),
            fmt_ns(*b),
            fmt_ns(*c)
        );
    }
    let singles: Vec<f64> = rows
        .iter()
        .filter(|(n, _)| n.starts_with("1 frame"))
        .map(|(_, r)| r[0])
        .collect();
    let worst = singles.iter().copied().fold(0.0, f64::max);
    let init = rows.last().map_or(0.0, |(_, r)| r[0]);
    println!();
    println!(
        "goals: alloc+free < 50 ns at every fill: {} (worst {:.0} ns); 64 GiB init < 100 ms: {} ({})",
        if worst < 50.0 { "met" } else { "MISSED" },
        worst,
        if init < 100e6 { "met" } else { "MISSED" },
        fmt_ns(init)
    );
}
