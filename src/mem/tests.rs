//! Exhaustive small-size sweeps, overlap in both directions, every path
//! (registers with and without fast strings and with the short page
//! distance rule, AVX2, AVX-512), multi-MiB sizes, the C return values and
//! the host build's own choice of path.
//!
//! The test process exports memshim's own memcpy/memcmp (feature `c-api`),
//! so results are checked with plain loops (`#![no_builtins]` keeps them
//! loops), never with slice `==` or `copy_from_slice`. The tests force a
//! path per call (the `_with` functions) and never change the global one,
//! which the rest of the process uses.

use super::cpu::{self, Simd, AVX2, AVX512, ERMS, FSRM, KNOWN, SHORT_PAGE_DISTANCE_SLOW};
use super::entry::forced;
use super::simd::{COPY_REP_MIN as VECTOR_REP_MIN, SET_REP_MIN as VECTOR_SET_REP_MIN};

/// Every path a call can take on this CPU, by name: the register paths
/// (`rep movsq` without fast strings, `rep movsb` with them, and the
/// register loop at short page distances as on AMD), then the vector
/// paths the CPU and OS allow.
fn paths() -> Vec<(&'static str, u8)> {
    let fast = KNOWN | ERMS | FSRM;
    let mut v = vec![
        ("registers, no fast strings", KNOWN),
        ("registers, fast strings", fast),
        (
            "registers, short page distance rule",
            fast | SHORT_PAGE_DISTANCE_SLOW,
        ),
    ];
    let best = cpu::best_simd();
    if best >= Simd::Avx2 {
        v.push(("avx2", fast | AVX2));
    } else {
        eprintln!("AVX2 path not tested: this CPU or OS lacks it");
    }
    if best >= Simd::Avx512 {
        v.push(("avx-512", fast | AVX512));
    } else {
        eprintln!("AVX-512 path not tested: this CPU or OS lacks it");
    }
    v
}

// The entry points on a forced path (copies of the exported code that
// take the path bits as an argument).

/// memcpy on path `p`.
///
/// # Safety
/// As memcpy; `p` one of [`paths`].
unsafe fn forward_with(d: *mut u8, s: *const u8, n: usize, p: u8) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { forced::memshim_test_memcpy(d, s, n, u32::from(p)) }
}

/// memmove on path `p`.
///
/// # Safety
/// As memmove; `p` one of [`paths`].
unsafe fn move_with(d: *mut u8, s: *const u8, n: usize, p: u8) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { forced::memshim_test_memmove(d, s, n, u32::from(p)) }
}

/// memset on path `p`.
///
/// # Safety
/// As memset; `p` one of [`paths`].
unsafe fn set_with(d: *mut u8, c: u8, n: usize, p: u8) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe { forced::memshim_test_memset(d, i32::from(c), n, u32::from(p)) }
}

/// memcmp on path `p`.
///
/// # Safety
/// As memcmp; `p` one of [`paths`].
unsafe fn compare(a: *const u8, b: *const u8, n: usize, p: u8) -> i32 {
    // SAFETY: forwarded contract.
    unsafe { forced::memshim_test_memcmp(a, b, n, u32::from(p)) }
}

/// bcmp on path `p`, as "equal".
///
/// # Safety
/// As bcmp; `p` one of [`paths`].
unsafe fn equal(a: *const u8, b: *const u8, n: usize, p: u8) -> bool {
    // SAFETY: forwarded contract.
    unsafe { forced::memshim_test_bcmp(a, b, n, u32::from(p)) == 0 }
}

const GUARD: usize = 16;
const MAX_SMALL: usize = 512;
/// Room for the largest small size, the largest misalignment and guards.
const SPAN: usize = MAX_SMALL + 16 + 2 * GUARD;

#[repr(C, align(64))]
struct Buf([u8; SPAN]);

/// A byte sequence with no short period, so a misplaced byte shows.
fn pattern(buf: &mut [u8], seed: u32) {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = (x >> 24) as u8;
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (0..a.len()).all(|i| a[i] == b[i])
}

// A plain loop on purpose: `copy_from_slice` would call the memcpy under test.
#[allow(clippy::manual_memcpy)]
fn copy_into(dst: &mut [u8], src: &[u8]) {
    for i in 0..dst.len() {
        dst[i] = src[i];
    }
}

/// A 64-aligned heap buffer of `len` bytes (a `Vec` of 64-byte units), so
/// that offsets into it fix the alignment the functions see.
struct Aligned(Vec<[u8; 64]>, usize);

impl Aligned {
    fn new(len: usize, seed: u32) -> Aligned {
        let mut a = Aligned(vec![[0; 64]; len.div_ceil(64)], len);
        pattern(a.bytes(), seed);
        a
    }
    fn bytes(&mut self) -> &mut [u8] {
        let len = self.1;
        // SAFETY: the vector holds at least `len` initialised bytes.
        unsafe { core::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), len) }
    }
}

/// Both memcpy and memmove on every path over every size 0..=512 and
/// every source and destination misalignment 0..=15, checking the guard
/// bytes around the destination on both sides.
#[test]
fn copies_every_small_size_and_alignment() {
    let mut src = Buf([0; SPAN]);
    let mut dst = Buf([0; SPAN]);
    let mut fresh = Buf([0; SPAN]);
    pattern(&mut src.0, 1);
    pattern(&mut fresh.0, 2);
    copy_into(&mut dst.0, &fresh.0);
    for (name, path) in paths() {
        for memmove in [false, true] {
            for n in 0..=MAX_SMALL {
                for sa in 0..16 {
                    for da in 0..16 {
                        let (s, d) = (GUARD + sa, GUARD + da);
                        let out = dst.0.as_mut_ptr();
                        // SAFETY: s + n and d + n are inside the buffers; they
                        // are distinct arrays, so they do not overlap.
                        unsafe {
                            if memmove {
                                move_with(out.add(d), src.0.as_ptr().add(s), n, path);
                            } else {
                                forward_with(out.add(d), src.0.as_ptr().add(s), n, path);
                            }
                        }
                        let (lo, hi) = (d - GUARD, d + n + GUARD);
                        assert!(
                            same(&dst.0[d..d + n], &src.0[s..s + n]),
                            "{name}: n {n} sa {sa} da {da}"
                        );
                        assert!(
                            same(&dst.0[lo..d], &fresh.0[lo..d]),
                            "{name}: underrun n {n} da {da}"
                        );
                        assert!(
                            same(&dst.0[d + n..hi], &fresh.0[d + n..hi]),
                            "{name}: overrun n {n} da {da}"
                        );
                        copy_into(&mut dst.0[lo..hi], &fresh.0[lo..hi]);
                    }
                }
            }
        }
    }
}

#[test]
fn sets_every_small_size_and_alignment() {
    let mut dst = Buf([0; SPAN]);
    let mut fresh = Buf([0; SPAN]);
    pattern(&mut fresh.0, 3);
    copy_into(&mut dst.0, &fresh.0);
    for (name, path) in paths() {
        for c in [0u8, 0x5a, 0xff] {
            for n in 0..=MAX_SMALL {
                for da in 0..16 {
                    let d = GUARD + da;
                    // SAFETY: d + n is inside the buffer.
                    unsafe { set_with(dst.0.as_mut_ptr().add(d), c, n, path) };
                    let (lo, hi) = (d - GUARD, d + n + GUARD);
                    assert!(
                        dst.0[d..d + n].iter().all(|&b| b == c),
                        "{name}: n {n} da {da} c {c}"
                    );
                    assert!(
                        same(&dst.0[lo..d], &fresh.0[lo..d]),
                        "{name}: underrun n {n} da {da}"
                    );
                    assert!(
                        same(&dst.0[d + n..hi], &fresh.0[d + n..hi]),
                        "{name}: overrun n {n} da {da}"
                    );
                    copy_into(&mut dst.0[lo..hi], &fresh.0[lo..hi]);
                }
            }
        }
    }
}

/// Positions of the first difference tried for size `n`: every one for
/// short sizes, otherwise the word, block and vector edges and both ends.
fn diff_positions(n: usize) -> impl Iterator<Item = usize> {
    let back = |k: usize| n.wrapping_sub(k);
    let edges = [
        0,
        1,
        7,
        8,
        9,
        15,
        16,
        31,
        32,
        33,
        63,
        64,
        65,
        127,
        128,
        191,
        192,
        255,
        256,
        257,
        n / 2,
        back(129),
        back(128),
        back(65),
        back(64),
        back(33),
        back(9),
        back(8),
        back(2),
        back(1),
    ];
    let every = if n <= 40 { 0..n } else { 0..0 };
    every.chain(edges.into_iter().filter(move |&p| n > 40 && p < n))
}

/// Sets a first difference at `p` (0x80 against 0x01: the signed-char
/// order is the reverse) and a later one of the opposite sign at the last
/// byte, then checks memcmp in both orders and bcmp; restores the bytes.
fn check_difference(a: &mut [u8], b: &mut [u8], p: usize, path: u8, what: &str) {
    let n = a.len();
    let keep = (a[p], b[p], a[n - 1], b[n - 1]);
    a[p] = 0x80;
    b[p] = 0x01;
    if p + 1 < n {
        a[n - 1] = 0x00;
        b[n - 1] = 0xff;
    }
    let (x, y) = (a.as_ptr(), b.as_ptr());
    // SAFETY: both slices hold n bytes.
    unsafe {
        assert!(compare(x, y, n, path) > 0, "{what}: n {n} p {p}");
        assert!(compare(y, x, n, path) < 0, "{what}: n {n} p {p}");
        assert!(!equal(x, y, n, path), "{what}: n {n} p {p}");
    }
    (a[n - 1], b[n - 1]) = (keep.2, keep.3);
    (a[p], b[p]) = (keep.0, keep.1);
}

/// memcmp and bcmp on every path over every size 0..=512 and
/// misalignment pair: equal buffers (with differing bytes just outside),
/// then, for sixteen pairs that give each side every misalignment (the
/// code never branches on alignment; this keeps the debug-build run
/// short), a first difference at each tried position with a later
/// difference of the opposite sign, in both orders.
#[test]
fn compares_every_small_size_and_alignment() {
    let mut a = Buf([0; SPAN]);
    let mut b = Buf([0; SPAN]);
    pattern(&mut a.0, 4);
    copy_into(&mut b.0, &a.0);
    for (name, path) in paths() {
        for n in 0..=MAX_SMALL {
            for sa in 0..16 {
                for sb in 0..16 {
                    let (pa, pb) = (GUARD + sa, GUARD + sb);
                    // Same contents at the two offsets; guards differ.
                    copy_into(&mut b.0[pb..pb + n], &a.0[pa..pa + n]);
                    b.0[pb - 1] = !a.0[pa - 1];
                    b.0[pb + n] = !a.0[pa + n];
                    let (x, y) = (a.0.as_ptr(), b.0.as_ptr());
                    // SAFETY: pa + n and pb + n are in the buffers.
                    unsafe {
                        assert_eq!(
                            compare(x.add(pa), y.add(pb), n, path),
                            0,
                            "{name}: n {n} sa {sa} sb {sb}"
                        );
                        assert!(
                            equal(x.add(pa), y.add(pb), n, path),
                            "{name}: n {n} sa {sa} sb {sb}"
                        );
                    }
                    if sb != (sa * 7 + 3) % 16 {
                        continue;
                    }
                    for p in diff_positions(n) {
                        let what = format!("{name}: sa {sa} sb {sb}");
                        let (ra, rb) = (&mut a.0[pa..pa + n], &mut b.0[pb..pb + n]);
                        check_difference(ra, rb, p, path, &what);
                    }
                }
            }
        }
    }
}

/// memcmp and bcmp past the vector loops' first steps: every size up to
/// 2200 at a few alignments, a first difference at the step edges.
#[test]
fn compares_long_sizes() {
    let mut a = Aligned::new(2300, 13);
    let mut b = Aligned::new(2300, 13);
    for (name, path) in paths() {
        for n in (513..2200).step_by(7).chain([1023, 1024, 1025, 2048]) {
            for (sa, sb) in [(0, 0), (3, 17), (32, 1), (63, 0)] {
                let (ra, rb) = (&mut a.bytes()[sa..sa + n], &mut b.bytes()[sb..sb + n]);
                copy_into(rb, ra);
                // SAFETY: both slices hold n bytes.
                unsafe {
                    assert_eq!(
                        compare(ra.as_ptr(), rb.as_ptr(), n, path),
                        0,
                        "{name}: n {n}"
                    );
                    assert!(equal(ra.as_ptr(), rb.as_ptr(), n, path), "{name}: n {n}");
                }
                for p in diff_positions(n).chain([300, 511, 512, 513, 767, 768, 1000]) {
                    if p < n {
                        check_difference(ra, rb, p, path, name);
                    }
                }
            }
        }
    }
}

/// Moves `n` bytes from `s` to `d` inside `buf` (holding `before`) on
/// `path`, checks the result (and the guard bytes around the destination)
/// against the original and restores `buf`.
fn check_move(buf: &mut [u8], before: &[u8], s: usize, d: usize, n: usize, path: (&str, u8)) {
    let p = buf.as_mut_ptr();
    // SAFETY: the callers keep s + n and d + n inside `buf`.
    unsafe { move_with(p.add(d), p.add(s), n, path.1) };
    let (lo, hi) = (d.saturating_sub(GUARD), (d + n + GUARD).min(buf.len()));
    for i in lo..hi {
        let want = if (d..d + n).contains(&i) {
            before[s + i - d]
        } else {
            before[i]
        };
        assert_eq!(
            buf[i], want,
            "{}: memmove n {n} from {s} to {d}: byte {i}",
            path.0
        );
    }
    copy_into(&mut buf[lo..hi], &before[lo..hi]);
}

/// memmove at every distance 1..=80 (and n/2, n-1, n+1) in both
/// directions for every size 0..=512, on every path.
#[test]
fn moves_overlapping_at_every_short_distance() {
    const ROOM: usize = 2 * MAX_SMALL + 64;
    let mut buf = [0u8; ROOM];
    let mut before = [0u8; ROOM];
    pattern(&mut before, 5);
    copy_into(&mut buf, &before);
    for path in paths() {
        for n in 0..=MAX_SMALL {
            let distances = (1..=80).chain([n / 2 + 1, n.saturating_sub(1).max(1), n + 1]);
            for dist in distances {
                for up in [false, true] {
                    let (s, d) = if up {
                        (GUARD, GUARD + dist)
                    } else {
                        (GUARD + dist, GUARD)
                    };
                    check_move(&mut buf, &before, s, d, n, path);
                }
            }
        }
    }
}

/// Around the thresholds (register loop / `rep`, the vector loops'
/// direction-free sizes), every path, overlapping in both directions at
/// short and long distances, page distances included.
#[test]
fn moves_around_the_thresholds_on_every_path() {
    const ROOM: usize = 4096 + 1400;
    let mut buf = vec![0u8; ROOM];
    let mut before = vec![0u8; ROOM];
    pattern(&mut before, 6);
    copy_into(&mut buf, &before);
    for path in paths() {
        for n in (700..=1300).step_by(37).chain([
            255, 256, 257, 511, 512, 513, 767, 768, 769, 1023, 1024, 1025,
        ]) {
            for dist in [
                1,
                7,
                8,
                31,
                32,
                63,
                64,
                65,
                100,
                767,
                1023,
                1024,
                1025,
                1500,
                4095,
                4097,
                n - 1,
                n + 3,
            ] {
                for up in [false, true] {
                    let (s, d) = if up { (5, 5 + dist) } else { (5 + dist, 5) };
                    if s.max(d) + n <= ROOM {
                        check_move(&mut buf, &before, s, d, n, path);
                    }
                }
            }
        }
    }
}

/// Disjoint copies and fills past the thresholds, on every path, at
/// every destination offset 0..=63 from a source that is aligned, 1 byte
/// off, and 1..=63 bytes short of a page distance (the distances where
/// `rep movsb` is slow).
#[test]
fn copies_and_sets_long_sizes_on_every_path() {
    let mut src = Aligned::new(8192 + 2200, 7);
    let mut dst = Aligned::new(8192 + 2200, 8);
    let fresh: Vec<u8> = dst.bytes().to_vec();
    for (name, path) in paths() {
        for n in (513..2100).step_by(53).chain([767, 768, 769, 2048]) {
            for (sa, da) in (0..64)
                .map(|k| (0, k))
                .chain([(1, 0), (5, 3), (8, 8), (15, 9)])
            {
                // Destination one page plus `da` past the source's page offset.
                let (s, d) = (64 + sa, 4096 + 64 + sa + da);
                let (sp, dp) = (src.bytes().as_ptr(), dst.bytes().as_mut_ptr());
                // SAFETY: s + n and d + n are inside the buffers.
                unsafe { forward_with(dp.add(d), sp.add(s), n, path) };
                let (srcb, dstb) = (src.bytes().to_vec(), dst.bytes());
                assert!(
                    same(&dstb[d..d + n], &srcb[s..s + n]),
                    "{name}: n {n} da {da}"
                );
                assert!(
                    dstb[d - 1] == fresh[d - 1] && dstb[d + n] == fresh[d + n],
                    "{name}: guard n {n} da {da}"
                );
                // SAFETY: as above.
                unsafe { set_with(dp.add(d), 0xc3, n, path) };
                let dstb = dst.bytes();
                assert!(
                    dstb[d..d + n].iter().all(|&b| b == 0xc3),
                    "{name}: set n {n}"
                );
                assert!(
                    dstb[d - 1] == fresh[d - 1] && dstb[d + n] == fresh[d + n],
                    "{name}: set guard n {n} da {da}"
                );
                copy_into(&mut dstb[d - 1..d + n + 1], &fresh[d - 1..d + n + 1]);
            }
        }
    }
}

/// Around the vector path's `rep movsb`/`rep stosb` thresholds, equally
/// and unequally aligned, overlapping forward and backward too.
#[test]
fn copies_around_the_vector_rep_thresholds() {
    let big = VECTOR_REP_MIN.max(VECTOR_SET_REP_MIN) + 4096;
    let mut src = Aligned::new(big + 256, 14);
    let mut dst = Aligned::new(2 * big + 256, 15);
    let before: Vec<u8> = dst.bytes().to_vec();
    for (name, path) in paths() {
        for n in [VECTOR_REP_MIN - 1, VECTOR_REP_MIN, VECTOR_SET_REP_MIN + 1] {
            for (sa, da) in [(0, 0), (64, 0), (7, 7), (0, 1), (3, 40)] {
                let (sp, dp) = (src.bytes().as_ptr(), dst.bytes().as_mut_ptr());
                // SAFETY: sa + n and da + n are inside the buffers.
                unsafe { forward_with(dp.add(da), sp.add(sa), n, path) };
                let srcb = src.bytes().to_vec();
                let dstb = dst.bytes();
                assert!(same(&dstb[da..da + n], &srcb[sa..sa + n]), "{name}: n {n}");
                assert_eq!(dstb[da + n], before[da + n], "{name}: guard n {n}");
                // SAFETY: da + n is inside the buffer.
                unsafe { set_with(dp.add(da), 0x11, n, path) };
                let dstb = dst.bytes();
                assert!(
                    dstb[da..da + n].iter().all(|&b| b == 0x11),
                    "{name}: set n {n}"
                );
                assert_eq!(dstb[da + n], before[da + n], "{name}: set guard n {n}");
                copy_into(dstb, &before);
            }
            for dist in [64, 128, 4096, 1 << 16] {
                for up in [false, true] {
                    let (s, d) = if up { (64, 64 + dist) } else { (64 + dist, 64) };
                    check_move(dst.bytes(), &before, s, d, n, (name, path));
                }
            }
        }
    }
}

/// Several MiB: copy, move both ways, fill and compare, on every path.
#[test]
fn handles_multi_mib_sizes() {
    let n = 3 * 1024 * 1024 + 13;
    let mut src = vec![0u8; n + 64];
    let mut dst = vec![0u8; n + 64];
    pattern(&mut src, 9);
    for (name, p) in paths() {
        // SAFETY: every range below is inside vectors of n + 64 bytes.
        unsafe {
            forward_with(dst.as_mut_ptr().add(3), src.as_ptr().add(1), n, p);
            assert!(same(&dst[3..3 + n], &src[1..1 + n]), "{name}");
            assert_eq!(compare(dst.as_ptr().add(3), src.as_ptr().add(1), n, p), 0);
            dst[3 + n - 2] ^= 0x80;
            assert!(compare(dst.as_ptr().add(3), src.as_ptr().add(1), n, p) != 0);
            assert!(!equal(dst.as_ptr().add(3), src.as_ptr().add(1), n, p));

            // Backward by 33 bytes and by 1 MiB, then forward by 33 bytes.
            for dist in [33, 1 << 20] {
                copy_into(&mut dst, &src);
                move_with(dst.as_mut_ptr().add(dist), dst.as_ptr(), n + 64 - dist, p);
                assert!(
                    same(&dst[dist..], &src[..n + 64 - dist]),
                    "{name}: dist {dist}"
                );
            }
            copy_into(&mut dst, &src);
            move_with(dst.as_mut_ptr(), dst.as_ptr().add(33), n, p);
            assert!(same(&dst[..n], &src[33..33 + n]), "{name}");

            set_with(dst.as_mut_ptr().add(1), 0x7e, n, p);
            assert!(dst[1..1 + n].iter().all(|&b| b == 0x7e) && dst[0] == src[33]);
        }
    }
}

/// The C wrappers: return values per C11 and the `int` to `unsigned char`
/// conversion of memset, short and long (the long calls take the path the
/// process chose).
#[cfg(feature = "c-api")]
#[test]
fn c_entry_points_return_what_the_standard_says() {
    use crate::ffi::string::{bcmp, bzero, memcmp, memcpy, memmove, memset};
    for len in [100, 5000] {
        let mut a = vec![1u8; len];
        let b = vec![2u8; len];
        let pa = a.as_mut_ptr().cast();
        // SAFETY: every call stays inside the arrays of `len` bytes.
        unsafe {
            assert_eq!(memcpy(pa, b.as_ptr().cast(), len), pa);
            assert_eq!(memmove(pa, a.as_ptr().add(1).cast(), len - 1), pa);
            assert_eq!(memset(pa, 0x1ff, 50), pa);
            assert!(a[..50].iter().all(|&x| x == 0xff) && a[50] == 2);
            assert!(memcmp(pa, b.as_ptr().cast(), len) > 0);
            assert!(memcmp(b.as_ptr().cast(), pa, len) < 0);
            assert!(bcmp(pa, b.as_ptr().cast(), len) != 0);
            assert_eq!(bcmp(pa, pa, len), 0);
            bzero(pa, len);
            assert!(a.iter().all(|&x| x == 0));
        }
    }
}

/// The flags line of /proc/cpuinfo, if there is one.
fn cpuinfo_flags() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("flags"))?;
    Some(line.to_string())
}

/// CPUID agrees with what the kernel reports in /proc/cpuinfo.
#[test]
fn string_features_match_cpuinfo() {
    let Some(flags) = cpuinfo_flags() else {
        return;
    };
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let got = cpu::string_features();
    assert_eq!((got.erms, got.fsrm), (has("erms"), has("fsrm")));
}

/// The host build chose its vector path by itself (nothing in this
/// process calls `set_simd` or `memshim_enable_simd`): the widest the CPU
/// and the kernel allow, as /proc/cpuinfo reports them (Linux lists
/// `avx2` and `avx512*` only when it saves their state).
#[test]
fn host_build_takes_the_best_vector_path_by_itself() {
    assert_eq!(cpu::active_simd(), cpu::best_simd());
    let Some(flags) = cpuinfo_flags() else {
        return;
    };
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let intel = info.contains("GenuineIntel");
    let want = if has("avx512f") && has("avx512bw") && (has("avx_vnni") || !intel) {
        Simd::Avx512
    } else if has("avx2") {
        Simd::Avx2
    } else {
        Simd::Off
    };
    assert_eq!(cpu::active_simd(), want);
}
