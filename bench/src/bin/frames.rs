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
//! A second table gives memshim's worst cases on a 64 GiB map: one call
//! each (median of repeated calls) of the constrained requests whose
//! search the fill pattern makes hardest — failing ones, which must look
//! at everything that could fit — and the single-frame call that does the
//! most bookkeeping.
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
const BUF: u64 = 16 * MIB;
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

/// Page-aligned host memory playing physical 0..len, of which memshim
/// may touch 0..limit.
struct HostRam {
    ptr: *mut u8,
    len: u64,
    limit: u64,
}

impl HostRam {
    fn new() -> Self {
        Self::with(BUF, BUF)
    }

    /// `len` bytes of host memory; `limit` may be larger when memshim
    /// places its bitmap inside `len` and touches nothing else (failing
    /// heap growth hands out nothing).
    fn with(len: u64, limit: u64) -> Self {
        let layout = std::alloc::Layout::from_size_align(len as usize, 4096).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        HostRam { ptr, len, limit }
    }

    fn config(&self) -> memshim_boot_config {
        memshim_boot_config {
            kernel_start: 0,
            kernel_end: 0,
            phys_offset: self.ptr as u64,
            phys_limit: self.limit,
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
        let layout = std::alloc::Layout::from_size_align(self.len as usize, 4096).unwrap();
        // SAFETY: allocated in `with` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
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

// ---- worst cases (memshim alone, 64 GiB) ------------------------------------

/// Frames of the 64 GiB worst-case map (one usable range from 0).
const WORST_FRAMES: u64 = 64 * GIB / FRAME;

/// A 64 GiB manager with every frame allocated except those `free(f)`
/// selects (frames memshim reserves stay reserved). The frames given back
/// go back as runs, so building a map stays quick.
fn worst_map(ram: &HostRam, free: impl Fn(u64) -> bool) -> FrameManager {
    let mut fm = ram.manager(&[(0, 64 * GIB)]);
    while fm.alloc().is_some() {}
    let mut f = LOW as u64;
    while f < WORST_FRAMES {
        let start = f;
        while f < WORST_FRAMES && free(f) {
            f += 1;
        }
        if f > start
            && fm
                .free_contiguous(start * FRAME, (f - start) as usize)
                .is_err()
        {
            // A run touching a frame memshim reserved (its bitmap): frame by frame.
            (start..f).for_each(|g| {
                let _ = fm.free(g * FRAME);
            });
        }
        f += 1;
    }
    fm
}

/// One worst-case row: `name`, the map, the timed call.
struct Worst {
    name: &'static str,
    free: fn(u64) -> bool,
    call: fn(&mut FrameManager),
}

fn worst_rows(opts: &Opts) -> Vec<(&'static str, f64)> {
    // The bitmap sits at 16 MiB inside 32 MiB of host memory; phys_limit
    // covers all 64 GiB so heap growth may search all of it (a failing
    // search hands out nothing, so nothing past the bitmap is touched).
    let ram = HostRam::with(32 * MIB, 64 * GIB);
    let rows = [
        Worst {
            name: "contiguous(2, 0, 0), fails: every other frame used",
            free: |f| f % 2 == 1,
            call: |fm| assert_eq!(fm.alloc_contiguous(2, 0, 0), None),
        },
        Worst {
            name: "heap growth of 128 KiB, fails: every 32nd frame used (3 %)",
            free: |f| f % 32 != 0,
            call: |fm| assert!(fm.heap_grow(128 << 10).is_none()),
        },
        Worst {
            name: "contiguous(512, 2 MiB, 0), fails: 2 of every 1024 frames used, no aligned 2 MiB free",
            free: |f| !matches!(f % 1024, 0 | 1023),
            call: |fm| assert_eq!(fm.alloc_contiguous(512, 2 * MIB, 0), None),
        },
        Worst {
            name: "contiguous(16, 64 KiB, 16 MiB), fails: every other frame used",
            free: |f| f % 2 == 1,
            call: |fm| assert_eq!(fm.alloc_contiguous(16, 64 << 10, 16 * MIB), None),
        },
        Worst {
            name: "contiguous(2, 0, 0) + free, one pair free at the top of RAM",
            free: |f| f % 2 == 1 || f == WORST_FRAMES - 2,
            call: |fm| {
                let p = fm.alloc_contiguous(2, 0, 0).expect("the last pair");
                fm.free_contiguous(black_box(p), 2).unwrap();
            },
        },
        Worst {
            name: "1 frame free + alloc, the free at a random frame (50 % scattered)",
            free: |f| (f.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63) == 0,
            call: |fm| {
                // A random allocated frame back, then one out again (the
                // next-fit frame, so the fill level stays put).
                thread_local!(static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(7) });
                loop {
                    let r = RNG.with(|c| {
                        let mut g = Rng(c.get());
                        let v = g.next_u64();
                        c.set(g.0);
                        v
                    });
                    let f = (LOW as u64 + r % (WORST_FRAMES - LOW as u64)) * FRAME;
                    if fm.free(f).is_ok() {
                        break;
                    }
                }
                fm.alloc().expect("a frame");
            },
        },
    ];
    let mut out: Vec<(&'static str, f64)> = rows
        .iter()
        .map(|w| {
            let mut fm = worst_map(&ram, w.free);
            let t = time(opts, || (w.call)(&mut fm));
            eprintln!("{}: {}", w.name, fmt_ns(t));
            (w.name, t)
        })
        .collect();
    let name = "1 frame free or alloc at random (50 % scattered): slowest 0.1 % of 200000 calls";
    let t = slowest_single_calls(&ram);
    eprintln!("{name}: {}", fmt_ns(t));
    out.push((name, t));
    out
}

/// Single-frame calls timed one by one (each includes ~20 ns of clock
/// reads): the 99.9th percentile, which catches the calls that do the
/// most bookkeeping (they come every few dozen calls) but not the rare
/// preemption of a shared machine.
fn slowest_single_calls(ram: &HostRam) -> f64 {
    let mut fm = worst_map(ram, |f| (f.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 63) == 0);
    let mut rng = Rng(11);
    let mut times = Vec::with_capacity(200_000);
    while times.len() < 200_000 {
        let f = (LOW as u64 + rng.next_u64() % (WORST_FRAMES - LOW as u64)) * FRAME;
        let t = Instant::now();
        let ok = fm.free(black_box(f)).is_ok();
        let el = t.elapsed();
        if !ok {
            continue;
        }
        times.push(el.as_nanos() as f64);
        let t = Instant::now();
        black_box(fm.alloc().expect("a frame"));
        times.push(t.elapsed().as_nanos() as f64);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() * 999 / 1000]
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
    let worst_cases = worst_rows(&opts);
    println!();
    println!("| worst cases, 64 GiB map, one call | memshim |");
    println!("|---|---|");
    for (name, t) in &worst_cases {
        println!("| {name} | {} |", fmt_ns(*t));
    }
    let slowest = worst_cases.iter().map(|w| w.1).fold(0.0, f64::max);
    println!();
    println!(
        "goals: alloc+free < 50 ns at every fill: {} (worst {:.0} ns); 64 GiB init < 100 ms: {} ({}); \
         no frame call above 10 µs on 64 GiB: {} (slowest {})",
        if worst < 50.0 { "met" } else { "MISSED" },
        worst,
        if init < 100e6 { "met" } else { "MISSED" },
        fmt_ns(init),
        if slowest < 10e3 { "met" } else { "MISSED" },
        fmt_ns(slowest)
    );
}
