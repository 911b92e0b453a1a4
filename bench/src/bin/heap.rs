//! Heap benchmark (`make bench-heap`): memshim's malloc/free against glibc's,
//! side by side in one run, as ns per operation and the ratio to glibc.
//!
//! memshim is called through its Rust API (`memshim::global`), which is
//! exactly what its C `malloc`/`free` run minus the errno store: the global
//! lock, the TLSF heap and mmap growth. glibc is called through its C
//! symbols (this program does not link memshim's C symbols).
//!
//! Workloads:
//! * `pairs N`: malloc(N) then free, repeated (the hottest path);
//! * `churn`: 10 000 live blocks of random sizes 16..1024 B; each step frees
//!   a random one and allocates a new one (fragmentation, list reuse);
//! * `big churn`: the same with sizes 16 B..64 KiB over 1 000 live blocks;
//! * `fragmented free`: free every other block of 100 000, then the rest
//!   (merges with one and with both neighbours).

use memshim_bench::Rng;
use std::hint::black_box;
use std::time::Instant;

extern "C" {
    fn malloc(n: usize) -> *mut u8;
    fn free(p: *mut u8);
}

struct Alloc {
    malloc: fn(usize) -> *mut u8,
    free: fn(*mut u8),
}

fn ms_malloc(n: usize) -> *mut u8 {
    memshim::global::alloc(n, 16)
}
fn ms_free(p: *mut u8) {
    // SAFETY: only pointers from ms_malloc are freed here.
    unsafe { memshim::global::free(p) }
}
fn glibc_malloc(n: usize) -> *mut u8 {
    // SAFETY: plain malloc.
    unsafe { malloc(n) }
}
fn glibc_free(p: *mut u8) {
    // SAFETY: only pointers from glibc_malloc are freed here.
    unsafe { free(p) }
}

fn touch(p: *mut u8) {
    assert!(!p.is_null(), "allocation failed");
    // SAFETY: every block is at least one byte.
    unsafe { p.write_volatile(1) };
}

/// ns per operation (one malloc or one free counts as one operation).
fn pairs(a: &Alloc, size: usize, iters: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        let p = (a.malloc)(black_box(size));
        touch(p);
        (a.free)(p);
    }
    t.elapsed().as_nanos() as f64 / (2 * iters) as f64
}

fn churn(a: &Alloc, live: usize, max: u64, steps: usize) -> f64 {
    let mut rng = Rng(0x1234_5678);
    let mut slots: Vec<*mut u8> = (0..live)
        .map(|_| (a.malloc)(16 + (rng.next_u64() % max) as usize))
        .collect();
    let t = Instant::now();
    for _ in 0..steps {
        let i = (rng.next_u64() % live as u64) as usize;
        (a.free)(slots[i]);
        let p = (a.malloc)(16 + (rng.next_u64() % max) as usize);
        touch(p);
        slots[i] = p;
    }
    let ns = t.elapsed().as_nanos() as f64 / (2 * steps) as f64;
    for p in slots {
        (a.free)(p);
    }
    ns
}

fn fragmented_free(a: &Alloc, n: usize) -> f64 {
    let ptrs: Vec<*mut u8> = (0..n).map(|i| (a.malloc)(32 + (i % 7) * 16)).collect();
    let t = Instant::now();
    for p in ptrs.iter().step_by(2) {
        (a.free)(*p);
    }
    for p in ptrs.iter().skip(1).step_by(2) {
        (a.free)(*p);
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

/// Median of `reps` runs of `f`.
fn median(reps: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut v: Vec<f64> = (0..reps).map(|_| f()).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[reps / 2]
}

fn main() {
    let allocs = [
        Alloc {
            malloc: ms_malloc,
            free: ms_free,
        },
        Alloc {
            malloc: glibc_malloc,
            free: glibc_free,
        },
    ];
    type Work = Box<dyn Fn(&Alloc) -> f64>;
    let work: Vec<(String, Work)> = vec![
        ("pairs 16 B".into(), Box::new(|a| pairs(a, 16, 2_000_000))),
        ("pairs 256 B".into(), Box::new(|a| pairs(a, 256, 2_000_000))),
        (
            "pairs 4 KiB".into(),
            Box::new(|a| pairs(a, 4096, 1_000_000)),
        ),
        (
            "pairs 256 KiB".into(),
            Box::new(|a| pairs(a, 256 << 10, 100_000)),
        ),
        (
            "churn 16..1024 B, 10k live".into(),
            Box::new(|a| churn(a, 10_000, 1008, 1_000_000)),
        ),
        (
            "churn 16 B..64 KiB, 1k live".into(),
            Box::new(|a| churn(a, 1_000, 65_520, 500_000)),
        ),
        (
            "fragmented free, 100k blocks".into(),
            Box::new(|a| fragmented_free(a, 100_000)),
        ),
    ];
    println!("| workload | memshim ns/op | glibc ns/op | memshim / glibc |");
    println!("|---|---|---|---|");
    for (name, f) in &work {
        // Interleave the allocators so drift on a shared machine hits both.
        let mut res = [Vec::new(), Vec::new()];
        for _ in 0..5 {
            for (i, a) in allocs.iter().enumerate() {
                res[i].push(median(1, || f(a)));
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let (m, g) = (med(&mut res[0]), med(&mut res[1]));
        println!("| {name} | {m:.1} | {g:.1} | {:.2}x |", m / g);
    }
}
