//! `make bench-mem`: memshim's memory functions side by side with glibc's
//! and with the other ways a kernel could write them, in one run.
//!
//! Every variant is called through a function pointer with the C signature,
//! so each pays the call a C program pays and none is inlined into the
//! timing loop. A cell is the fastest of several interleaved batches of
//! calls on the same buffers (so each size is measured in the cache level
//! it fits), spread over passes through the whole table. Prints markdown tables (ns per call below 256 B, GB/s above,
//! and memshim's time over glibc's), checks the goals, and writes
//! an SVG plot (`--svg PATH`).
//!
//!     cargo run --release -p memshim-bench --bin bench-mem -- [--quick] [--svg PATH]

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

// ---- memshim, shaped like its C symbols -------------------------------

unsafe extern "C" fn ms_memcpy(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    // SAFETY: the benchmark passes valid, non-overlapping buffers.
    unsafe { memshim::mem::copy_forward(d.cast(), s.cast(), n).cast() }
}

unsafe extern "C" fn ms_memmove(d: *mut c_void, s: *const c_void, n: usize) -> *mut c_void {
    // SAFETY: the benchmark passes valid buffers.
    unsafe { memshim::mem::copy(d.cast(), s.cast(), n).cast() }
}

unsafe extern "C" fn ms_memset(d: *mut c_void, c: c_int, n: usize) -> *mut c_void {
    // SAFETY: the benchmark passes a valid buffer.
    unsafe { memshim::mem::set(d.cast(), c as u8, n).cast() }
}

unsafe extern "C" fn ms_memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
    // SAFETY: the benchmark passes valid buffers.
    unsafe { memshim::mem::compare(a.cast(), b.cast(), n) }
}

unsafe extern "C" fn ms_bcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int {
    // SAFETY: the benchmark passes valid buffers.
    c_int::from(unsafe { !memshim::mem::equal(a.cast(), b.cast(), n) })
}

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
    /// memshim with its opt-in AVX2 path switched on for the batch.
    Simd(&'static Call),
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Memcpy,
    MemmoveBack,
    MemmoveBackHalf,
    Memset,
    Memcmp,
}

/// Distance of the short backward memmove: the register path (a distance
/// of 1 KiB or more takes the `rep movsb` blocks, measured with n / 2).
const BACK_DISTANCE: usize = 64;

impl Op {
    fn title(self) -> String {
        match self {
            Op::Memcpy => "memcpy".into(),
            Op::MemmoveBack => format!("memmove backward (dst = src + {BACK_DISTANCE})"),
            Op::MemmoveBackHalf => "memmove backward (dst = src + n/2)".into(),
            Op::Memset => "memset".into(),
            Op::Memcmp => "memcmp (equal buffers: the whole length is compared)".into(),
        }
    }

    fn variants(self) -> Vec<(&'static str, Call)> {
        use Call::*;
        match self {
            Op::Memcpy => vec![
                ("memshim", Copy(ms_memcpy)),
                ("memshim simd", Simd(&Copy(ms_memcpy))),
                ("glibc", Copy(memcpy)),
                ("rep movsb", Copy(rep_movsb)),
                ("3x rep", Copy(three_rep_copy)),
                ("word loop", Copy(word_copy)),
                ("byte loop", Copy(byte_copy)),
            ],
            Op::MemmoveBack | Op::MemmoveBackHalf => vec![
                ("memshim", Copy(ms_memmove)),
                ("memshim simd", Simd(&Copy(ms_memmove))),
                ("glibc", Copy(memmove)),
                ("std 3x rep", Copy(three_rep_move)),
                ("byte loop", Copy(byte_move)),
            ],
            Op::Memset => vec![
                ("memshim", Set(ms_memset)),
                ("memshim simd", Simd(&Set(ms_memset))),
                ("glibc", Set(memset)),
                ("rep stosb", Set(rep_stosb)),
                ("3x rep", Set(three_rep_set)),
                ("byte loop", Set(byte_set)),
            ],
            Op::Memcmp => vec![
                ("memshim", Cmp(ms_memcmp)),
                ("memshim simd", Simd(&Cmp(ms_memcmp))),
                ("glibc", Cmp(memcmp)),
                ("memshim bcmp", Cmp(ms_bcmp)),
                ("byte loop", Cmp(byte_cmp)),
            ],
        }
    }
}

/// Source and destination buffers, page-aligned, pre-faulted.
struct Buffers {
    _mem: Vec<u8>,
    a: *mut u8,
    b: *mut u8,
}

const PAGE: usize = 4096;

impl Buffers {
    fn new(max: usize) -> Self {
        // `a` also holds the backward memmove: n bytes moved up by n / 2.
        let (room_a, room_b) = (max + max / 2 + 2 * PAGE, max + 2 * PAGE);
        let mut mem = vec![0x5au8; room_a + room_b + 2 * PAGE];
        let base = mem.as_mut_ptr();
        let a = base.wrapping_add(base.align_offset(PAGE));
        // Half a page apart, so that small copies do not suffer 4 KiB aliasing
        // (a load looking like it depends on the previous call's store).
        let b = a.wrapping_add(room_a + PAGE / 2);
        Buffers { _mem: mem, a, b }
    }
}

/// Calls `call` on size `n` `iters` times; returns the time per call.
fn time(op: Op, call: Call, buf: &Buffers, n: usize, misalign: bool, iters: u64) -> f64 {
    let (da, sa) = if misalign { (3, 5) } else { (0, 0) };
    let (dst, src) = match op {
        Op::MemmoveBack => (
            buf.a.wrapping_add(BACK_DISTANCE + da),
            buf.a.wrapping_add(sa),
        ),
        Op::MemmoveBackHalf => (buf.a.wrapping_add(n / 2 + da), buf.a.wrapping_add(sa)),
        _ => (buf.b.wrapping_add(da), buf.a.wrapping_add(sa)),
    };
    let (dst, src, n) = (
        black_box(dst).cast::<c_void>(),
        black_box(src).cast::<c_void>(),
        black_box(n),
    );
    let start = Instant::now();
    // SAFETY: the buffers hold n + BACK_DISTANCE + 8 bytes past each base.
    unsafe {
        match call {
            Call::Copy(f) => {
                let f = black_box(f);
                for _ in 0..iters {
                    f(dst, src, n);
                }
            }
            Call::Set(f) => {
                let f = black_box(f);
                for _ in 0..iters {
                    f(dst, 0x5a, n);
                }
            }
            Call::Cmp(f) => {
                let f = black_box(f);
                for _ in 0..iters {
                    black_box(f(dst, src, n));
                }
            }
            Call::Simd(_) => unreachable!("unwrapped by run"),
        }
    }
    start.elapsed().as_secs_f64() * 1e9 / iters as f64
}

/// [`time`] for a variant, with memshim's AVX2 path on only for `Simd`.
fn run(op: Op, call: Call, buf: &Buffers, n: usize, misalign: bool, iters: u64) -> f64 {
    // Every batch starts the same way (set_enabled runs CPUID, which a
    // hypervisor traps), whichever variant it times.
    let (simd, call) = match call {
        Call::Simd(inner) => (true, *inner),
        _ => (false, call),
    };
    // "memshim" is the register path (what a kernel runs by default),
    // "memshim simd" the host build's own choice.
    let want = if simd {
        memshim::mem::best_simd()
    } else {
        memshim::mem::Simd::Off
    };
    let on = memshim::mem::set_simd(want) != memshim::mem::Simd::Off;
    assert_eq!(on, simd, "no AVX2: run without the simd variant");
    time(op, call, buf, n, misalign, iters)
}

struct Row {
    op: Op,
    size: usize,
    misalign: bool,
    /// Calls per batch, per variant, in `op.variants()` order.
    iters: Vec<u64>,
    /// ns per call of every batch, per variant.
    samples: Vec<Vec<f64>>,
    /// The fastest batch, per variant.
    ns: Vec<f64>,
}

impl Row {
    /// Sizes each variant's batch to take about `batch`.
    fn calibrate(op: Op, buf: &Buffers, size: usize, misalign: bool, batch: Duration) -> Row {
        let variants = op.variants();
        let iters: Vec<u64> = variants
            .iter()
            .map(|&(_, call)| {
                let once = run(op, call, buf, size, misalign, 1)
                    .max(run(op, call, buf, size, misalign, 4));
                ((batch.as_secs_f64() * 1e9 / once.max(1.0)) as u64).clamp(1, 50_000_000)
            })
            .collect();
        let samples = vec![Vec::new(); variants.len()];
        Row {
            op,
            size,
            misalign,
            iters,
            samples,
            ns: Vec::new(),
        }
    }

    /// Runs `repeats` batches of every variant, interleaved so that a
    /// noisy moment hits every variant alike.
    fn sample(&mut self, buf: &Buffers, repeats: usize) {
        for _ in 0..repeats {
            for (k, &(_, call)) in self.op.variants().iter().enumerate() {
                let ns = run(self.op, call, buf, self.size, self.misalign, self.iters[k]);
                self.samples[k].push(ns);
            }
        }
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
}

// ---- reporting ------------------------------------------------------------

fn size_label(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
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

/// Index of the variant named `name` in `op.variants()`.
fn index(op: Op, name: &str) -> usize {
    op.variants()
        .iter()
        .position(|v| v.0 == name)
        .unwrap_or_else(|| panic!("no variant {name}"))
}

fn table(op: Op, rows: &[Row]) -> String {
    let names: Vec<&str> = op.variants().iter().map(|v| v.0).collect();
    let mut t = format!(
        "### {}\n\n| size | align | {} | memshim / glibc | simd / glibc |\n|---|---|",
        op.title(),
        names.join(" | ")
    );
    t += &"---|".repeat(names.len() + 2);
    t.push('\n');
    let (ms, simd, glibc) = (
        index(op, "memshim"),
        index(op, "memshim simd"),
        index(op, "glibc"),
    );
    for r in rows.iter().filter(|r| r.op == op) {
        let cells: Vec<String> = r.ns.iter().map(|&ns| cell(r.size, ns)).collect();
        let align = if r.misalign { "dst+3 src+5" } else { "aligned" };
        let _ = writeln!(
            t,
            "| {} | {align} | {} | {:.2}x | {:.2}x |",
            size_label(r.size),
            cells.join(" | "),
            r.ns[ms] / r.ns[glibc],
            r.ns[simd] / r.ns[glibc],
        );
    }
    t
}

/// One of the goals: the time of `subject` over `against`'s, at
/// most `max`, in every row of `ops` with a size in `sizes`.
struct Goal {
    what: &'static str,
    ops: &'static [Op],
    sizes: (usize, usize),
    subject: &'static str,
    against: &'static str,
    max: f64,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn goals() -> Vec<Goal> {
    use Op::*;
    let all = (0, usize::MAX);
    let g = |what, ops, sizes, subject, against, max| Goal {
        what,
        ops,
        sizes,
        subject,
        against,
        max,
    };
    let copies: &'static [Op] = &[Memcpy, Memset];
    vec![
        g(
            "memcpy/memset <= 64 B: within 1.3x of glibc",
            copies,
            (0, 64),
            "memshim",
            "glibc",
            1.3,
        ),
        g(
            "memcpy/memset 128 B - 2 KiB: within 3x of glibc",
            copies,
            (128, 2 * KIB),
            "memshim",
            "glibc",
            3.0,
        ),
        g(
            "memcpy/memset >= 4 KiB: within 1.10x of glibc",
            copies,
            (4 * KIB, usize::MAX),
            "memshim",
            "glibc",
            1.10,
        ),
        g(
            "memcpy/memset >= 1 MiB: faster than glibc",
            copies,
            (MIB, usize::MAX),
            "memshim",
            "glibc",
            1.0,
        ),
        g(
            "backward memmove >= 4 KiB, dst = src + 64: within 2.5x of glibc",
            &[MemmoveBack],
            (4 * KIB, usize::MAX),
            "memshim",
            "glibc",
            2.5,
        ),
        g(
            "backward memmove >= 4 KiB, dst = src + n/2: within 2.5x of glibc",
            &[MemmoveBackHalf],
            (4 * KIB, usize::MAX),
            "memshim",
            "glibc",
            2.5,
        ),
        g(
            "memcmp >= 256 B: within 4.5x of glibc",
            &[Memcmp],
            (256, usize::MAX),
            "memshim",
            "glibc",
            4.5,
        ),
        g(
            "memcmp >= 256 B: 10x faster than a byte loop",
            &[Memcmp],
            (256, usize::MAX),
            "memshim",
            "byte loop",
            0.1,
        ),
        g(
            "SIMD path, every size: within 1.10x of glibc (parity)",
            &[Memcpy, Memset, MemmoveBack, MemmoveBackHalf, Memcmp],
            all,
            "memshim simd",
            "glibc",
            1.10,
        ),
    ]
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Memcpy => "memcpy",
        Op::MemmoveBack => "memmove backward, dst = src + 64",
        Op::MemmoveBackHalf => "memmove backward, dst = src + n/2",
        Op::Memset => "memset",
        Op::Memcmp => "memcmp",
    }
}

fn check_goals(rows: &[Row]) -> String {
    let mut out = String::from(
        "### Goals (time ratio against the reference, worst row)\n\n| goal | worst | at | met |\n|---|---|---|---|\n",
    );
    for g in goals() {
        let worst = rows
            .iter()
            .filter(|r| g.ops.contains(&r.op) && (g.sizes.0..=g.sizes.1).contains(&r.size))
            .map(|r| {
                (
                    r.ns[index(r.op, g.subject)] / r.ns[index(r.op, g.against)],
                    r,
                )
            })
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((ratio, r)) = worst {
            let at = format!(
                "{} {} {}",
                op_name(r.op),
                size_label(r.size),
                if r.misalign { "misaligned" } else { "aligned" }
            );
            let met = if ratio <= g.max { "yes" } else { "NO" };
            let _ = writeln!(out, "| {} | {ratio:.2}x | {at} | {met} |", g.what);
        }
    }
    out
}

// ---- the plot ---------------------------------------------------------------

const COLORS: [&str; 7] = [
    "#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f",
];

/// GB/s against size (both log scales), one panel per operation, aligned rows.
fn svg(rows: &[Row], ops: &[Op]) -> String {
    let (pw, ph, ml, mt, mb, mr) = (460.0, 300.0, 60.0, 40.0, 45.0, 20.0);
    let (cols, w) = (2, 2.0 * (ml + pw + mr));
    let h = ops.len().div_ceil(2) as f64 * (mt + ph + mb) + 30.0;
    let sizes: Vec<usize> = rows
        .iter()
        .filter(|r| r.op == ops[0] && !r.misalign)
        .map(|r| r.size)
        .collect();
    let (xmin, xmax) = (
        (sizes[0] as f64).log2(),
        (*sizes.last().unwrap_or(&8) as f64).log2(),
    );
    let (ymin, ymax) = (0.1f64.log10(), 1000f64.log10());
    let mut s = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' font-family='sans-serif' font-size='11'>\n\
         <rect width='100%' height='100%' fill='white'/>\n\
         <text x='{}' y='18' font-size='14' text-anchor='middle'>memshim bench-mem: GB/s by size, aligned buffers (make bench-mem)</text>\n",
        w / 2.0
    );
    for (i, &op) in ops.iter().enumerate() {
        let ox = (i % cols) as f64 * (ml + pw + mr) + ml;
        let oy = (i / cols) as f64 * (mt + ph + mb) + mt + 20.0;
        let x = |n: usize| ox + ((n as f64).log2() - xmin) / (xmax - xmin) * pw;
        let y = |gbs: f64| oy + ph - (gbs.max(0.1).log10() - ymin) / (ymax - ymin) * ph;
        let _ = writeln!(
            s,
            "<rect x='{ox}' y='{oy}' width='{pw}' height='{ph}' fill='none' stroke='#444'/>"
        );
        let _ = writeln!(
            s,
            "<text x='{}' y='{}' font-size='12' text-anchor='middle'>{}</text>",
            ox + pw / 2.0,
            oy - 6.0,
            op_name(op)
        );
        for gbs in [0.1, 1.0, 10.0, 100.0, 1000.0] {
            let yy = y(gbs);
            let _ = writeln!(s, "<line x1='{ox}' y1='{yy}' x2='{}' y2='{yy}' stroke='#ddd'/><text x='{}' y='{}' text-anchor='end'>{gbs}</text>", ox + pw, ox - 4.0, yy + 4.0);
        }
        for &n in sizes.iter().step_by(2) {
            let xx = x(n);
            let _ = writeln!(s, "<line x1='{xx}' y1='{oy}' x2='{xx}' y2='{}' stroke='#eee'/><text x='{xx}' y='{}' text-anchor='middle'>{}</text>", oy + ph, oy + ph + 14.0, size_label(n));
        }
        let _ = writeln!(
            s,
            "<text x='{}' y='{}' transform='rotate(-90 {} {})' text-anchor='middle'>GB/s</text>",
            ox - 42.0,
            oy + ph / 2.0,
            ox - 42.0,
            oy + ph / 2.0
        );
        for (k, (name, _)) in op.variants().iter().enumerate() {
            let pts: Vec<String> = rows
                .iter()
                .filter(|r| r.op == op && !r.misalign)
                .map(|r| format!("{:.1},{:.1}", x(r.size), y(r.size as f64 / r.ns[k])))
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
        (Duration::from_millis(2), 6, 2)
    };
    let buf = Buffers::new(max);
    let f = memshim::mem::cpu::string_features();
    println!(
        "## bench-mem: CPU ERMS {} FSRM {}; each cell the fastest of {} interleaved batches of about {} ms over {passes} passes\n",
        f.erms,
        f.fsrm,
        passes * repeats,
        batch.as_millis()
    );
    let ops = [
        Op::Memcpy,
        Op::Memset,
        Op::MemmoveBack,
        Op::MemmoveBackHalf,
        Op::Memcmp,
    ];
    let mut rows = Vec::new();
    for op in ops {
        for &size in &sizes {
            for misalign in [false, true] {
                rows.push(Row::calibrate(op, &buf, size, misalign, batch));
            }
        }
    }
    for pass in 1..=passes {
        eprintln!("bench-mem: pass {pass} of {passes}");
        for row in &mut rows {
            row.sample(&buf, repeats);
        }
    }
    for row in &mut rows {
        row.finish();
    }
    for op in ops {
        println!("{}", table(op, &rows));
    }
    println!("{}", check_goals(&rows));
    if let Some(path) = svg_path {
        match std::fs::write(&path, svg(&rows, &ops)) {
            Ok(()) => println!("plot written to {path}"),
            Err(e) => {
                eprintln!("bench-mem: cannot write {path}: {e}");
                std::process::exit(1);
            }
        }
    }
}
