//! `make bench-mem`: memshim's memory functions side by side with glibc's
//! and with the other ways a kernel could write them, in one run.
//!
//! memshim runs twice: as the host build runs it (the vector path it
//! picks by itself, AVX-512 or AVX2) and as a kernel build runs it by
//! default (general-purpose registers and `rep movsb`/`rep stosb` only).
//! The AVX2 path is shown too, for CPUs without AVX-512.
//!
//! Two axes:
//! * size tables: 8 B to 64 MiB, aligned and misaligned (dst+3, src+5),
//!   the buffers half a page apart;
//! * distance tables: the destination `d` bytes past the source modulo
//!   4096 (d = 0, 1, 8, 32, 63, 64, 2048, and the source 32 bytes past the
//!   destination), separate buffers, the source page-aligned or 5 bytes
//!   past; memcpy, memmove, memcmp and bcmp. Below 2 KiB a batch cycles
//!   through up to eight such pairs spread over the page (see `place`).
//!
//! Every variant is called through a function pointer with the C signature,
//! so each pays the call a C program pays and none is inlined into the
//! timing loop. A cell is the fastest of several interleaved batches of
//! calls on the same buffers (so each size is measured in the cache level
//! it fits), spread over passes through the whole table, each round of a
//! row starting at the next variant. Prints markdown
//! tables (ns per call below 256 B, GB/s above, and ratios), checks the
//! issue's goals, and writes an SVG plot (`--svg PATH`).
//!
//!     cargo run --release -p memshim-bench --bin bench-mem -- [--quick] [--svg PATH]

use memshim::mem::Simd;
use std::arch::asm;
use std::ffi::{c_int, c_void};
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant};

type CopyFn = unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> *mut c_void;
type SetFn = unsafe extern "C" fn(*mut c_void, c_int, usize) -> *mut c_void;
type CmpFn = unsafe extern "C" fn(*const c_void, *const c_void, usize) -> c_int;

// glibc's own (memshim's C symbols are off in this program).
extern "C" {
    fn memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
    fn memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void;
    fn memset(d: *mut c_void, c: c_int, n: usize) -> *mut c_void;
    fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int;
}

// ---- memshim's entry points, by address ------------------------------
// The same machine code as its C symbols (hidden copies: this program keeps
// glibc's), called through a function pointer as C code calls them.

use memshim::mem::c_abi::{
    bcmp as ms_bcmp, memcmp as ms_memcmp, memcpy as ms_memcpy, memmove as ms_memmove,
    memset as ms_memset,
};

// ---- the alternatives ---------------------------------------------------

unsafe extern "C" fn rep_movsb(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    // SAFETY: valid, non-overlapping buffers; DF = 0 per the ABI.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") d => _, inout("rsi") s => _,
             options(nostack, preserves_flags))
    };
    d
}

unsafe extern "C" fn rep_stosb(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    // SAFETY: a valid buffer; DF = 0 per the ABI.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") d => _, in("al") c as u8,
             options(nostack, preserves_flags))
    };
    d
}

/// compiler_builtins' `rep_param` (src/mem/x86_64.rs): bytes up to an
/// 8-aligned destination, then words, then the remaining bytes.
fn rep_param(d: *mut c_void, n: usize) -> (usize, usize, usize) {
    let pre = ((8 - (d as usize & 7)) & 7).min(n);
    (pre, (n - pre) >> 3, (n - pre) & 7)
}

/// compiler_builtins' x86_64 `copy_forward` without the ERMS feature: three `rep`s.
unsafe extern "C" fn three_rep_copy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    let (pre, words, post) = rep_param(d, n);
    // SAFETY: valid, non-overlapping buffers; the three counts sum to n.
    unsafe {
        asm!("rep movsb", "mov rcx, {w}", "rep movsq", "mov rcx, {p}", "rep movsb",
             w = in(reg) words, p = in(reg) post,
             inout("rcx") pre => _, inout("rdi") d => _, inout("rsi") s => _,
             options(nostack, preserves_flags))
    };
    d
}

/// compiler_builtins' x86_64 `copy_backward`: `std`, three `rep`s, `cld`.
unsafe extern "C" fn three_rep_move(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    if (d as usize).wrapping_sub(s as usize) >= n {
        // SAFETY: forward is correct when dst is not inside (src, src + n).
        return unsafe { three_rep_copy(d, s, n) };
    }
    let (pre, words, post) = rep_param(d, n);
    // SAFETY: valid buffers; the direction flag is restored before returning.
    unsafe {
        asm!("std", "rep movsb", "sub rsi, 7", "sub rdi, 7", "mov rcx, {w}", "rep movsq",
             "add rsi, 7", "add rdi, 7", "mov ecx, {p:e}", "rep movsb", "cld",
             w = in(reg) words, p = in(reg) pre,
             inout("rcx") post => _, inout("rdi") d.cast::<u8>().add(n - 1) => _,
             inout("rsi") s.cast::<u8>().add(n - 1) => _,
             options(nostack))
    };
    d
}

/// compiler_builtins' x86_64 `set_bytes` without ERMS.
unsafe extern "C" fn three_rep_set(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    let (pre, words, post) = rep_param(d, n);
    let w = u64::from(c as u8) * 0x0101_0101_0101_0101;
    // SAFETY: a valid buffer; the three counts sum to n.
    unsafe {
        asm!("rep stosb", "mov rcx, {w}", "rep stosq", "mov rcx, {p}", "rep stosb",
             w = in(reg) words, p = in(reg) post,
             inout("rcx") pre => _, inout("rdi") d => _, in("rax") w,
             options(nostack, preserves_flags))
    };
    d
}

// The original allocator's loops. Volatile keeps them byte (or word)
// loops: otherwise LLVM turns them into calls to memcpy or SSE loops.

unsafe extern "C" fn byte_copy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    let (d8, s8) = (d.cast::<u8>(), s.cast::<u8>());
    for i in 0..n {
        // SAFETY: i < n.
        unsafe { d8.add(i).write_volatile(s8.add(i).read_volatile()) };
    }
    d
}

unsafe extern "C" fn byte_move(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    if (d as usize).wrapping_sub(s as usize) >= n {
        // SAFETY: forward is correct here.
        return unsafe { byte_copy(d, s, n) };
    }
    let (d8, s8) = (d.cast::<u8>(), s.cast::<u8>());
    for i in (0..n).rev() {
        // SAFETY: i < n.
        unsafe { d8.add(i).write_volatile(s8.add(i).read_volatile()) };
    }
    d
}

unsafe extern "C" fn byte_set(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    let d8 = d.cast::<u8>();
    for i in 0..n {
        // SAFETY: i < n.
        unsafe { d8.add(i).write_volatile(c as u8) };
    }
    d
}

unsafe extern "C" fn byte_cmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
    let (a8, b8) = (a.cast::<u8>(), b.cast::<u8>());
    for i in 0..n {
        // SAFETY: i < n.
        let (x, y) = unsafe { (a8.add(i).read_volatile(), b8.add(i).read_volatile()) };
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
    }
    0
}

unsafe extern "C" fn word_copy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    let (d8, s8) = (d.cast::<u8>(), s.cast::<u8>());
    let words = n / 8;
    for i in 0..words {
        // SAFETY: 8 * i + 8 <= n.
        unsafe {
            let w = s8.add(8 * i).cast::<u64>().read_unaligned();
            d8.add(8 * i).cast::<u64>().write_volatile(w)
        };
    }
    for i in 8 * words..n {
        // SAFETY: i < n.
        unsafe { d8.add(i).write_volatile(s8.add(i).read_volatile()) };
    }
    d
}

// ---- what is measured ---------------------------------------------------

#[derive(Clone, Copy)]
enum Call {
    Copy(CopyFn),
    Set(SetFn),
    Cmp(CmpFn),
}

/// A column: what is called, and memshim's vector path during its batches.
#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    call: Call,
    simd: Simd,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Op {
    Memcpy,
    /// Disjoint buffers, through memmove.
    Memmove,
    MemmoveBack,
    MemmoveBackHalf,
    Memset,
    Memcmp,
    Bcmp,
}

/// Distance of the short backward memmove: the register path (a distance
/// of 1 KiB or more takes the `rep movsb` blocks, measured with n / 2).
const BACK_DISTANCE: usize = 64;

/// `(dst - src) mod 4096` on the distance axis; -32: the source 32 bytes
/// past the destination.
const DISTANCES: [isize; 8] = [0, 1, 8, 32, 63, 64, 2048, -32];

/// The names the tables and goals use.
const MEMSHIM: &str = "memshim";
const AVX2: &str = "memshim avx2";
const KERNEL: &str = "memshim kernel";
const GLIBC: &str = "glibc";

impl Op {
    fn title(self) -> String {
        match self {
            Op::Memcpy => "memcpy".into(),
            Op::Memmove => "memmove (disjoint buffers)".into(),
            Op::MemmoveBack => format!("memmove backward (dst = src + {BACK_DISTANCE})"),
            Op::MemmoveBackHalf => "memmove backward (dst = src + n/2)".into(),
            Op::Memset => "memset".into(),
            Op::Memcmp => "memcmp (equal buffers: the whole length is compared)".into(),
            Op::Bcmp => "bcmp (equal buffers; glibc's bcmp is its memcmp)".into(),
        }
    }

    /// Every column of the size table.
    fn variants(self) -> Vec<Variant> {
        let best = memshim::mem::best_simd();
        let v = |name, call, simd| Variant { name, call, simd };
        let (ms, avx2, kernel) = (best, Simd::Avx2.min(best), Simd::Off);
        use Call::*;
        match self {
            Op::Memcpy | Op::Memmove => vec![
                v(MEMSHIM, Copy(ms_memcpy), ms),
                v(AVX2, Copy(ms_memcpy), avx2),
                v(KERNEL, Copy(ms_memcpy), kernel),
                v(GLIBC, Copy(memcpy), ms),
                v("rep movsb", Copy(rep_movsb), ms),
                v("3x rep", Copy(three_rep_copy), ms),
                v("word loop", Copy(word_copy), ms),
                v("byte loop", Copy(byte_copy), ms),
            ],
            Op::MemmoveBack | Op::MemmoveBackHalf => vec![
                v(MEMSHIM, Copy(ms_memmove), ms),
                v(AVX2, Copy(ms_memmove), avx2),
                v(KERNEL, Copy(ms_memmove), kernel),
                v(GLIBC, Copy(memmove), ms),
                v("std 3x rep", Copy(three_rep_move), ms),
                v("byte loop", Copy(byte_move), ms),
            ],
            Op::Memset => vec![
                v(MEMSHIM, Set(ms_memset), ms),
                v(AVX2, Set(ms_memset), avx2),
                v(KERNEL, Set(ms_memset), kernel),
                v(GLIBC, Set(memset), ms),
                v("rep stosb", Set(rep_stosb), ms),
                v("3x rep", Set(three_rep_set), ms),
                v("byte loop", Set(byte_set), ms),
            ],
            Op::Memcmp | Op::Bcmp => vec![
                v(MEMSHIM, Cmp(ms_memcmp), ms),
                v(AVX2, Cmp(ms_memcmp), avx2),
                v(KERNEL, Cmp(ms_memcmp), kernel),
                v(GLIBC, Cmp(memcmp), ms),
                v("memshim bcmp", Cmp(ms_bcmp), ms),
                v("kernel bcmp", Cmp(ms_bcmp), kernel),
                v("byte loop", Cmp(byte_cmp), ms),
            ],
        }
    }

    /// The columns of the distance table: memshim as the host and as a
    /// kernel runs it, and glibc.
    fn distance_variants(self) -> Vec<Variant> {
        let best = memshim::mem::best_simd();
        let v = |name, call, simd| Variant { name, call, simd };
        use Call::*;
        let (copy, cmp): (CopyFn, CmpFn) = match self {
            Op::Memmove => (ms_memmove, ms_memcmp),
            Op::Bcmp => (ms_memcpy, ms_bcmp),
            _ => (ms_memcpy, ms_memcmp),
        };
        match self {
            Op::Memcpy | Op::Memmove => vec![
                v(MEMSHIM, Copy(copy), best),
                v(KERNEL, Copy(copy), Simd::Off),
                v(
                    GLIBC,
                    Copy(if self == Op::Memcpy { memcpy } else { memmove }),
                    best,
                ),
            ],
            _ => vec![
                v(MEMSHIM, Cmp(cmp), best),
                v(KERNEL, Cmp(cmp), Simd::Off),
                v(GLIBC, Cmp(memcmp), best),
            ],
        }
    }
}

/// Source and destination buffers, page-aligned, pre-faulted.
struct Buffers {
    _mem: Vec<u8>,
    a: *mut u8,
    /// The size tables' destination: half a page past a page boundary.
    b: *mut u8,
    /// The page the distance tables place their destination in.
    c: *mut u8,
}

const PAGE: usize = 4096;

impl Buffers {
    fn new(max: usize) -> Self {
        // `a` also holds the backward memmove: n bytes moved up by n / 2;
        // `c` destinations up to 3.5 KiB + 2 KiB past its second page.
        let (room_a, room_b) = (max + max / 2 + 2 * PAGE, max + 4 * PAGE);
        let mut mem = vec![0x5au8; room_a + room_b + 2 * PAGE];
        let base = mem.as_mut_ptr();
        let a = base.wrapping_add(base.align_offset(PAGE));
        // Half a page apart, so that small copies do not suffer 4 KiB aliasing
        // (a load looking like it depends on the previous call's store).
        let c = a.wrapping_add(room_a);
        let b = c.wrapping_add(PAGE / 2);
        Buffers { _mem: mem, a, b, c }
    }
}

/// The most placements a distance-axis batch cycles through.
const PLACEMENTS: usize = 8;

/// How many placements a batch on `n` bytes cycles through: as many as fit
/// in a page with `n + 64` bytes each, and at least two half a page apart
/// (so that a call's first loads never meet the last call's last stores,
/// its first and last 64 bytes); one off the distance axis.
fn placement_count(n: usize, dist: Option<isize>) -> usize {
    match dist {
        Some(_) => (PAGE / (n + 64).next_power_of_two()).clamp(2, PLACEMENTS),
        None => 1,
    }
}

/// Where a call of `op` on `n` bytes reads and writes: `(dst, src)`.
/// On the distance axis, placement `k` of `count` moves both buffers
/// `k * (4096 / count - 64)` bytes further into their pages, keeping the
/// distance: a batch cycles through them, so that a call does not load
/// from the page offsets the last calls stored to (4 KiB aliasing across
/// calls, which costs every implementation alike: glibc's 64-byte memcpy
/// took 17 ns at distance -32 with one placement) and what remains is the
/// distance inside each call.
fn place(
    op: Op,
    buf: &Buffers,
    (n, misalign, dist): (usize, bool, Option<isize>),
    (k, count): (usize, usize),
) -> (*mut u8, *mut u8) {
    if let Some(d) = dist {
        // 64 bytes short of an even split: with 512-byte steps, distance
        // 2048 put one placement's stores at the page offsets another
        // loads from four calls later (a 32-byte memmove took 7.6 ns).
        let step = if count > 1 { PAGE / count - 64 } else { 0 };
        let off = if misalign { 5 } else { 0 } + k * step;
        let dst = buf.c.wrapping_add(PAGE + off).wrapping_offset(d);
        return (dst, buf.a.wrapping_add(off));
    }
    let (da, sa) = if misalign { (3, 5) } else { (0, 0) };
    match op {
        Op::MemmoveBack => (
            buf.a.wrapping_add(BACK_DISTANCE + da),
            buf.a.wrapping_add(sa),
        ),
        Op::MemmoveBackHalf => (buf.a.wrapping_add(n / 2 + da), buf.a.wrapping_add(sa)),
        _ => (buf.b.wrapping_add(da), buf.a.wrapping_add(sa)),
    }
}

/// Calls `v` on `n` bytes about `iters` times, cycling through the
/// placements `at`; returns the time per call.
fn time(v: Variant, at: &[(*mut u8, *mut u8)], n: usize, iters: u64) -> f64 {
    // Every batch starts the same way (set_simd runs CPUID, which a
    // hypervisor traps), whichever variant it times.
    let got = memshim::mem::set_simd(v.simd);
    assert_eq!(got, v.simd, "{}: vector path not available", v.name);
    let at: Vec<(*mut c_void, *const c_void)> = at
        .iter()
        .map(|&(d, s)| (d.cast(), s.cast_const().cast()))
        .collect();
    let (at, n) = (black_box(&at[..]), black_box(n));
    let rounds = iters.div_ceil(at.len() as u64);
    let start = Instant::now();
    // SAFETY: `place` keeps every range inside the buffers.
    unsafe {
        match v.call {
            Call::Copy(f) => {
                let f = black_box(f);
                for _ in 0..rounds {
                    for &(d, s) in at {
                        f(d, s, n);
                    }
                }
            }
            Call::Set(f) => {
                let f = black_box(f);
                for _ in 0..rounds {
                    for &(d, _) in at {
                        f(d, 0x5a, n);
                    }
                }
            }
            Call::Cmp(f) => {
                let f = black_box(f);
                for _ in 0..rounds {
                    for &(d, s) in at {
                        black_box(f(d, s, n));
                    }
                }
            }
        }
    }
    start.elapsed().as_secs_f64() * 1e9 / (rounds * at.len() as u64) as f64
}

struct Row {
    op: Op,
    size: usize,
    misalign: bool,
    /// `Some(d)` on the distance axis.
    dist: Option<isize>,
    variants: Vec<Variant>,
    /// Calls per batch, per variant.
    iters: Vec<u64>,
    /// ns per call of every batch, per variant.
    samples: Vec<Vec<f64>>,
    /// The fastest batch, per variant.
    ns: Vec<f64>,
}

impl Row {
    /// Sizes each variant's batch to take about `batch`.
    fn calibrate(
        op: Op,
        buf: &Buffers,
        (size, misalign, dist): (usize, bool, Option<isize>),
        batch: Duration,
    ) -> Row {
        let variants = if dist.is_some() {
            op.distance_variants()
        } else {
            op.variants()
        };
        let at = Row::placements(op, buf, size, misalign, dist);
        let iters: Vec<u64> = variants
            .iter()
            .map(|&v| {
                let once = time(v, &at, size, 1).max(time(v, &at, size, 4));
                ((batch.as_secs_f64() * 1e9 / once.max(1.0)) as u64).clamp(1, 50_000_000)
            })
            .collect();
        let samples = vec![Vec::new(); variants.len()];
        Row {
            op,
            size,
            misalign,
            dist,
            variants,
            iters,
            samples,
            ns: Vec::new(),
        }
    }

    /// Runs `repeats` batches of every variant, interleaved so that a
    /// noisy moment hits every variant alike, each round starting at the
    /// next variant (`turn`): the first batch after another row pays for
    /// that row's dirty cache lines (8 % at 64 MiB), so no variant is
    /// always first.
    fn sample(&mut self, buf: &Buffers, repeats: usize, turn: &mut usize) {
        let at = Row::placements(self.op, buf, self.size, self.misalign, self.dist);
        let len = self.variants.len();
        // Twice the batches where noise is largest: calls of a few ns, and
        // DRAM, where other programs on the machine compete for bandwidth.
        let repeats = if self.size <= 4 * KIB || self.size >= 8 * MIB {
            2 * repeats
        } else {
            repeats
        };
        // One untimed call each first: the row before left the caches and
        // the TLB in its own state (a 64 MiB memset after 8 MiB ones ran at
        // 19 GB/s against 28 in the row after it, for every variant).
        for &v in &self.variants {
            time(v, &at, self.size, 1);
        }
        for _ in 0..repeats {
            *turn += 1;
            for j in 0..len {
                let k = (*turn + j) % len;
                let ns = time(self.variants[k], &at, self.size, self.iters[k]);
                self.samples[k].push(ns);
            }
        }
    }

    /// The placements a batch cycles through.
    fn placements(
        op: Op,
        buf: &Buffers,
        size: usize,
        misalign: bool,
        dist: Option<isize>,
    ) -> Vec<(*mut u8, *mut u8)> {
        let count = placement_count(size, dist);
        (0..count)
            .map(|k| place(op, buf, (size, misalign, dist), (k, count)))
            .collect()
    }

    /// Other programs only ever add time, so the fastest batch is the
    /// estimate least disturbed by them.
    fn finish(&mut self) {
        self.ns = self
            .samples
            .iter()
            .map(|v| v.iter().copied().fold(f64::INFINITY, f64::min))
            .collect();
    }

    /// The time of the variant named `name`, if the row has it.
    fn get(&self, name: &str) -> Option<f64> {
        let k = self.variants.iter().position(|v| v.name == name)?;
        Some(self.ns[k])
    }
}

// ---- reporting ------------------------------------------------------------

fn size_label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn dist_label(d: isize) -> String {
    if d < 0 {
        format!("src+{}", -d)
    } else {
        format!("{d}")
    }
}

/// Below this size cells are ns per call; from it, GB/s.
const NS_BELOW: usize = 256;

fn cell(size: usize, ns: f64) -> String {
    if size < NS_BELOW {
        format!("{ns:.1} ns")
    } else {
        format!("{:.1}", size as f64 / ns)
    }
}

fn align_label(r: &Row) -> &'static str {
    match (r.misalign, r.dist.is_some()) {
        (false, _) => "aligned",
        (true, false) => "dst+3 src+5",
        (true, true) => "src+5",
    }
}

fn size_table(op: Op, rows: &[Row]) -> String {
    let variants = op.variants();
    let names: Vec<&str> = variants.iter().map(|v| v.name).collect();
    let mut t = format!(
        "### {}\n\n| size | align | {} | memshim / glibc | avx2 / glibc | kernel / glibc |\n|---|---|",
        op.title(),
        names.join(" | ")
    );
    t += &"---|".repeat(names.len() + 3);
    t.push('\n');
    for r in rows.iter().filter(|r| r.op == op && r.dist.is_none()) {
        let cells: Vec<String> = r.ns.iter().map(|&ns| cell(r.size, ns)).collect();
        let ratio = |name| r.get(name).unwrap_or(f64::NAN) / r.get(GLIBC).unwrap_or(f64::NAN);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.2}x | {:.2}x | {:.2}x |",
            size_label(r.size),
            align_label(r),
            cells.join(" | "),
            ratio(MEMSHIM),
            ratio(AVX2),
            ratio(KERNEL),
        );
    }
    t
}

/// One table per variant of the distance axis: the variant's speed at each
/// distance, and (memshim) its time over glibc's in the same cell.
fn distance_tables(op: Op, rows: &[Row]) -> String {
    let mut t = String::new();
    let heads: Vec<String> = DISTANCES.iter().map(|&d| dist_label(d)).collect();
    for name in [MEMSHIM, KERNEL, GLIBC] {
        let versus = if name == GLIBC {
            ""
        } else {
            " (time over glibc's)"
        };
        let _ = write!(
            t,
            "### {} by distance (dst - src mod 4096): {name}{versus}\n\n| size | align | {} |\n|---|---|{}\n",
            op.title(),
            heads.join(" | "),
            "---|".repeat(DISTANCES.len())
        );
        for r0 in rows
            .iter()
            .filter(|r| r.op == op && r.dist == Some(DISTANCES[0]))
        {
            let cells: Vec<String> = DISTANCES
                .iter()
                .map(|&d| {
                    let Some(r) = find(rows, op, r0.size, r0.misalign, Some(d)) else {
                        return "-".into();
                    };
                    let (ns, g) = (
                        r.get(name).unwrap_or(f64::NAN),
                        r.get(GLIBC).unwrap_or(f64::NAN),
                    );
                    if name == GLIBC {
                        cell(r.size, ns)
                    } else {
                        format!("{} ({:.2}x)", cell(r.size, ns), ns / g)
                    }
                })
                .collect();
            let _ = writeln!(
                t,
                "| {} | {} | {} |",
                size_label(r0.size),
                align_label(r0),
                cells.join(" | ")
            );
        }
        t.push('\n');
    }
    t
}

fn find(rows: &[Row], op: Op, size: usize, misalign: bool, dist: Option<isize>) -> Option<&Row> {
    rows.iter()
        .find(|r| r.op == op && r.size == size && r.misalign == misalign && r.dist == dist)
}

/// What a goal measures in a row.
#[derive(Clone, Copy)]
enum Measure {
    /// Time of the first variant over the second's, same row.
    Versus(&'static str, &'static str),
    /// Time of the variant over its time at distance 0 (same size and
    /// alignment).
    OverDistanceZero(&'static str),
}

/// One of the goals: `measure` at most `max` in every row of `ops`
/// with a size in `sizes` (on the axes `axes` selects).
struct Goal {
    what: &'static str,
    ops: &'static [Op],
    sizes: (usize, usize),
    measure: Measure,
    max: f64,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn goals() -> Vec<Goal> {
    use Measure::*;
    use Op::*;
    let all = (0, usize::MAX);
    let g = |what, ops, sizes, measure, max| Goal {
        what,
        ops,
        sizes,
        measure,
        max,
    };
    let copies: &'static [Op] = &[Memcpy, Memset];
    vec![
        g(
            "host memcpy, every size, alignment and distance: within 1.10x of glibc",
            &[Memcpy],
            all,
            Versus(MEMSHIM, GLIBC),
            1.10,
        ),
        g(
            "host memmove (disjoint, backward +64, backward n/2), every size and distance: within 1.10x",
            &[Memmove, MemmoveBack, MemmoveBackHalf],
            all,
            Versus(MEMSHIM, GLIBC),
            1.10,
        ),
        g(
            "host memset, every size and alignment: within 1.10x of glibc",
            &[Memset],
            all,
            Versus(MEMSHIM, GLIBC),
            1.10,
        ),
        g(
            "host memcmp, every size, alignment and distance: within 1.25x of glibc",
            &[Memcmp],
            all,
            Versus(MEMSHIM, GLIBC),
            1.25,
        ),
        g(
            "host bcmp (size table), every size and alignment: within 1.25x of glibc's memcmp",
            &[Memcmp],
            all,
            Versus("memshim bcmp", GLIBC),
            1.25,
        ),
        g(
            "host bcmp, every distance: within 1.25x of glibc",
            &[Bcmp],
            all,
            Versus(MEMSHIM, GLIBC),
            1.25,
        ),
        g(
            "host memcpy/memmove at every distance: within 1.25x of distance 0",
            &[Memcpy, Memmove],
            all,
            OverDistanceZero(MEMSHIM),
            1.25,
        ),
        g(
            "kernel memcpy/memset <= 64 B, every distance: within 1.3x of glibc",
            copies,
            (0, 64),
            Versus(KERNEL, GLIBC),
            1.3,
        ),
        g(
            "kernel memcpy/memset 128 B - 2 KiB: within 3x of glibc",
            copies,
            (128, 2 * KIB),
            Versus(KERNEL, GLIBC),
            3.0,
        ),
        g(
            "kernel memcpy/memset >= 4 KiB, every distance: within 1.10x of glibc",
            copies,
            (4 * KIB, usize::MAX),
            Versus(KERNEL, GLIBC),
            1.10,
        ),
        g(
            "kernel memcpy/memset >= 1 MiB: faster than glibc",
            copies,
            (MIB, usize::MAX),
            Versus(KERNEL, GLIBC),
            1.0,
        ),
        g(
            "kernel memcpy/memmove at every distance: within 1.25x of distance 0",
            &[Memcpy, Memmove],
            all,
            OverDistanceZero(KERNEL),
            1.25,
        ),
        g(
            "kernel backward memmove >= 4 KiB, dst = src + 64: within 2.5x of glibc",
            &[MemmoveBack],
            (4 * KIB, usize::MAX),
            Versus(KERNEL, GLIBC),
            2.5,
        ),
        g(
            "kernel backward memmove >= 4 KiB, dst = src + n/2: within 2.5x of glibc",
            &[MemmoveBackHalf],
            (4 * KIB, usize::MAX),
            Versus(KERNEL, GLIBC),
            2.5,
        ),
        g(
            "kernel memcmp >= 256 B: within 4.5x of glibc",
            &[Memcmp],
            (256, usize::MAX),
            Versus(KERNEL, GLIBC),
            4.5,
        ),
        g(
            "kernel memcmp >= 256 B: 10x faster than a byte loop",
            &[Memcmp],
            (256, usize::MAX),
            Versus(KERNEL, "byte loop"),
            0.1,
        ),
    ]
}

/// The goal's ratio in one row, if it applies there.
fn ratio(m: Measure, r: &Row, rows: &[Row]) -> Option<f64> {
    match m {
        Measure::Versus(a, b) => Some(r.get(a)? / r.get(b)?),
        Measure::OverDistanceZero(a) => {
            let r0 = find(rows, r.op, r.size, r.misalign, Some(0))?;
            r.dist?;
            Some(r.get(a)? / r0.get(a)?)
        }
    }
}

fn where_label(r: &Row) -> String {
    let dist = r
        .dist
        .map(|d| format!(" distance {}", dist_label(d)))
        .unwrap_or_default();
    format!("{:?} {} {}{dist}", r.op, size_label(r.size), align_label(r)).to_lowercase()
}

fn check_goals(rows: &[Row]) -> String {
    let mut out = String::from(
        "### Goals (time ratio, worst row; how many rows miss)\n\n| goal | worst | at | rows over | met |\n|---|---|---|---|---|\n",
    );
    let mut misses = String::from("### The rows over each goal (the worst eight)\n\n");
    for g in goals() {
        let mut ratios: Vec<(f64, &Row)> = rows
            .iter()
            .filter(|r| g.ops.contains(&r.op) && (g.sizes.0..=g.sizes.1).contains(&r.size))
            .filter_map(|r| Some((ratio(g.measure, r, rows)?, r)))
            .collect();
        ratios.sort_by(|a, b| b.0.total_cmp(&a.0));
        let over: Vec<String> = ratios
            .iter()
            .take_while(|x| x.0 > g.max)
            .map(|(x, r)| format!("{x:.2}x {}", where_label(r)))
            .collect();
        if let Some(&(worst, r)) = ratios.first() {
            let met = if worst <= g.max { "yes" } else { "NO" };
            let _ = writeln!(
                out,
                "| {} | {worst:.2}x | {} | {} of {} | {met} |",
                g.what,
                where_label(r),
                over.len(),
                ratios.len()
            );
        }
        if !over.is_empty() {
            let shown: Vec<&str> = over.iter().take(8).map(String::as_str).collect();
            let _ = writeln!(misses, "- {}: {}", g.what, shown.join("; "));
        }
    }
    out + "\n" + &misses
}

// ---- the plot ---------------------------------------------------------------

const COLORS: [&str; 8] = [
    "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f", "#17becf",
];

/// A panel: log2 sizes on x, `y` (log10 of the value between `lo` and
/// `hi`) on y, one polyline per series.
struct Panel<'a> {
    title: String,
    unit: &'static str,
    lo: f64,
    hi: f64,
    ticks: &'a [f64],
    /// (label, points (size, value)).
    series: Vec<(String, Vec<(usize, f64)>)>,
}

fn svg(panels: &[Panel]) -> String {
    let (pw, ph, ml, mt, mb, mr) = (460.0, 300.0, 60.0, 40.0, 45.0, 20.0);
    let (cols, w) = (2, 2.0 * (ml + pw + mr));
    let h = panels.len().div_ceil(2) as f64 * (mt + ph + mb) + 30.0;
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='11'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='18' font-size='14' text-anchor='middle'>memshim bench-mem (make bench-mem): by size, log scales</text>\n",
        w / 2.0
    );
    for (i, p) in panels.iter().enumerate() {
        let sizes: Vec<usize> = p
            .series
            .first()
            .map(|s| s.1.iter().map(|x| x.0).collect())
            .unwrap_or_default();
        let (Some(&first), Some(&last)) = (sizes.first(), sizes.last()) else {
            continue;
        };
        let (xmin, xmax) = (
            (first as f64).log2(),
            (last as f64).log2().max((first as f64).log2() + 1.0),
        );
        let ox = (i % cols) as f64 * (ml + pw + mr) + ml;
        let oy = (i / cols) as f64 * (mt + ph + mb) + mt + 20.0;
        let x = |n: usize| ox + ((n as f64).log2() - xmin) / (xmax - xmin) * pw;
        let (ylo, yhi) = (p.lo.log10(), p.hi.log10());
        let y = |v: f64| oy + ph - (v.clamp(p.lo, p.hi).log10() - ylo) / (yhi - ylo) * ph;
        let _ = writeln!(
            s,
            "<rect x='{ox}' y='{oy}' width='{pw}' height='{ph}' fill='none' stroke='#444'/>"
        );
        let _ = writeln!(
            s,
            "<text x='{}' y='{}' font-size='12' text-anchor='middle'>{}</text>",
            ox + pw / 2.0,
            oy - 6.0,
            p.title
        );
        for &t in p.ticks {
            let yy = y(t);
            let _ = writeln!(s, "<line x1='{ox}' y1='{yy}' x2='{}' y2='{yy}' stroke='#ddd'/><text x='{}' y='{}' text-anchor='end'>{t}</text>", ox + pw, ox - 4.0, yy + 4.0);
        }
        for &n in sizes.iter().step_by(2) {
            let xx = x(n);
            let _ = writeln!(s, "<line x1='{xx}' y1='{oy}' x2='{xx}' y2='{}' stroke='#eee'/><text x='{xx}' y='{}' text-anchor='middle'>{}</text>", oy + ph, oy + ph + 14.0, size_label(n));
        }
        let _ = writeln!(
            s,
            "<text x='{}' y='{}' transform='rotate(-90 {} {})' text-anchor='middle'>{}</text>",
            ox - 42.0,
            oy + ph / 2.0,
            ox - 42.0,
            oy + ph / 2.0,
            p.unit
        );
        for (k, (name, pts)) in p.series.iter().enumerate() {
            let pts: Vec<String> = pts
                .iter()
                .map(|&(n, v)| format!("{:.1},{:.1}", x(n), y(v)))
                .collect();
            let (color, width) = (COLORS[k % COLORS.len()], if k == 0 { 2.5 } else { 1.5 });
            let _ = writeln!(
                s,
                "<polyline fill='none' stroke='{color}' stroke-width='{width}' points='{}'/>",
                pts.join(" ")
            );
            let (lx, ly) = (ox + 8.0, oy + 14.0 + 13.0 * k as f64);
            let _ = writeln!(s, "<line x1='{lx}' y1='{}' x2='{}' y2='{}' stroke='{color}' stroke-width='{width}'/><text x='{}' y='{ly}'>{name}</text>", ly - 4.0, lx + 18.0, ly - 4.0, lx + 22.0);
        }
    }
    s + "</svg>\n"
}

/// GB/s by size of every size-table variant, aligned rows.
fn speed_panel(op: Op, rows: &[Row]) -> Panel<'static> {
    let series = op
        .variants()
        .iter()
        .map(|v| {
            let pts = rows
                .iter()
                .filter(|r| r.op == op && !r.misalign && r.dist.is_none())
                .filter_map(|r| Some((r.size, r.size as f64 / r.get(v.name)?)))
                .collect();
            (v.name.to_string(), pts)
        })
        .collect();
    Panel {
        title: op.title(),
        unit: "GB/s",
        lo: 0.1,
        hi: 1000.0,
        ticks: &[0.1, 1.0, 10.0, 100.0, 1000.0],
        series,
    }
}

/// memcpy's time at each distance over its time at distance 0 (aligned
/// source), for variant `name`.
fn distance_panel(rows: &[Row], name: &'static str) -> Panel<'static> {
    let series = DISTANCES
        .iter()
        .map(|&d| {
            let pts = rows
                .iter()
                .filter(|r| r.op == Op::Memcpy && !r.misalign && r.dist == Some(d))
                .filter_map(|r| Some((r.size, ratio(Measure::OverDistanceZero(name), r, rows)?)))
                .collect();
            (format!("distance {}", dist_label(d)), pts)
        })
        .collect();
    Panel {
        title: format!("memcpy, {name}: time at distance d / time at distance 0"),
        unit: "time ratio",
        lo: 0.5,
        hi: 4.0,
        ticks: &[0.5, 0.8, 1.0, 1.25, 2.0, 4.0],
        series,
    }
}

/// memshim's (host) memcpy time over glibc's at each distance.
fn versus_panel(rows: &[Row], name: &'static str) -> Panel<'static> {
    let series = DISTANCES
        .iter()
        .map(|&d| {
            let pts = rows
                .iter()
                .filter(|r| r.op == Op::Memcpy && !r.misalign && r.dist == Some(d))
                .filter_map(|r| Some((r.size, r.get(name)? / r.get(GLIBC)?)))
                .collect();
            (format!("distance {}", dist_label(d)), pts)
        })
        .collect();
    Panel {
        title: format!("memcpy by distance: {name} time / glibc time"),
        unit: "time ratio",
        lo: 0.5,
        hi: 4.0,
        ticks: &[0.5, 0.8, 1.0, 1.1, 1.3, 2.0, 4.0],
        series,
    }
}

// ---- main ---------------------------------------------------------------------

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut quick, mut svg_path) = (false, None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--svg" => svg_path = args.next(),
            _ => {
                eprintln!("usage: bench-mem [--quick] [--svg PATH]");
                std::process::exit(2);
            }
        }
    }
    let max = if quick { 8 * MIB } else { 64 * MIB };
    let sizes: Vec<usize> = [
        8,
        16,
        32,
        64,
        128,
        256,
        512,
        KIB,
        2 * KIB,
        4 * KIB,
        16 * KIB,
        64 * KIB,
        256 * KIB,
        MIB,
        8 * MIB,
        64 * MIB,
    ]
    .into_iter()
    .filter(|&n| n <= max)
    .collect();
    // Passes over the whole table, so a burst of load from other
    // programs is unlikely to cover all the batches of any one cell.
    let (batch, passes, repeats) = if quick {
        (Duration::from_millis(1), 1, 3)
    } else {
        (Duration::from_millis(1), 6, 2)
    };
    let buf = Buffers::new(max);
    let f = memshim::mem::cpu::string_features();
    println!(
        "## bench-mem: CPU ERMS {} FSRM {}; memshim's vector path {:?} (host default), kernel path: registers; each cell the fastest of {} interleaved batches of about {} ms over {passes} passes\n",
        f.erms,
        f.fsrm,
        memshim::mem::best_simd(),
        passes * repeats,
        batch.as_millis()
    );
    let size_ops = [
        Op::Memcpy,
        Op::Memset,
        Op::MemmoveBack,
        Op::MemmoveBackHalf,
        Op::Memcmp,
    ];
    let distance_ops = [Op::Memcpy, Op::Memmove, Op::Memcmp, Op::Bcmp];
    let mut rows = Vec::new();
    for op in size_ops {
        for &size in &sizes {
            for misalign in [false, true] {
                rows.push(Row::calibrate(op, &buf, (size, misalign, None), batch));
            }
        }
    }
    for op in distance_ops {
        for &size in &sizes {
            for misalign in [false, true] {
                for d in DISTANCES {
                    rows.push(Row::calibrate(op, &buf, (size, misalign, Some(d)), batch));
                }
            }
        }
    }
    let mut turn = 0;
    for pass in 1..=passes {
        eprintln!("bench-mem: pass {pass} of {passes}");
        for row in &mut rows {
            row.sample(&buf, repeats, &mut turn);
        }
    }
    for row in &mut rows {
        row.finish();
    }
    // The host default again, for whatever runs after.
    memshim::mem::set_simd(memshim::mem::best_simd());
    for op in size_ops {
        println!("{}", size_table(op, &rows));
    }
    for op in distance_ops {
        println!("{}", distance_tables(op, &rows));
    }
    println!("{}", check_goals(&rows));
    if let Some(path) = svg_path {
        let mut panels: Vec<Panel> = size_ops.iter().map(|&op| speed_panel(op, &rows)).collect();
        panels.push(versus_panel(&rows, MEMSHIM));
        panels.push(distance_panel(&rows, MEMSHIM));
        panels.push(versus_panel(&rows, KERNEL));
        panels.push(distance_panel(&rows, KERNEL));
        panels.push(distance_panel(&rows, GLIBC));
        match std::fs::write(&path, svg(&panels)) {
            Ok(()) => println!("plot written to {path}"),
            Err(e) => {
                eprintln!("bench-mem: cannot write {path}: {e}");
                std::process::exit(1);
            }
        }
    }
}
