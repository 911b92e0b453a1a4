//! Exhaustive small-size sweeps, overlap in both directions, both
//! long-copy strategies, multi-MiB sizes and the C return values.
//!
//! The test process exports memshim's own memcpy/memcmp (feature `c-api`),
//! so results are checked with plain loops (`#![no_builtins]` keeps them
//! loops), never with slice `==` or `copy_from_slice`.

use super::cmp::{compare, equal};
use super::copy::{forward_with, move_with};
use super::set::set_with;

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

/// Both memcpy and memmove over every size 0..=512 and every source and
/// destination misalignment 0..=15, checking the guard bytes around the
/// destination on both sides.
#[test]
fn copies_every_small_size_and_alignment() {
    let mut src = Buf([0; SPAN]);
    let mut dst = Buf([0; SPAN]);
    let mut fresh = Buf([0; SPAN]);
    pattern(&mut src.0, 1);
    pattern(&mut fresh.0, 2);
    copy_into(&mut dst.0, &fresh.0);
    for memmove in [false, true] {
        for n in 0..=MAX_SMALL {
            for sa in 0..16 {
                for da in 0..16 {
                    let (s, d) = (GUARD + sa, GUARD + da);
                    let out = dst.0.as_mut_ptr();
                    // SAFETY: s + n and d + n are inside the buffers; they are
                    // distinct arrays, so they do not overlap.
                    unsafe {
                        if memmove {
                            move_with(out.add(d), src.0.as_ptr().add(s), n, || true);
                        } else {
                            forward_with(out.add(d), src.0.as_ptr().add(s), n, || true);
                        }
                    }
                    let (lo, hi) = (d - GUARD, d + n + GUARD);
                    assert!(
                        same(&dst.0[d..d + n], &src.0[s..s + n]),
                        "n {n} sa {sa} da {da}"
                    );
                    assert!(
                        same(&dst.0[lo..d], &fresh.0[lo..d]),
                        "underrun n {n} da {da}"
                    );
                    assert!(
                        same(&dst.0[d + n..hi], &fresh.0[d + n..hi]),
                        "overrun n {n} da {da}"
                    );
                    copy_into(&mut dst.0[lo..hi], &fresh.0[lo..hi]);
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
    for c in [0u8, 0x5a, 0xff] {
        for n in 0..=MAX_SMALL {
            for da in 0..16 {
                let d = GUARD + da;
                // SAFETY: d + n is inside the buffer.
                unsafe { set_with(dst.0.as_mut_ptr().add(d), c, n, || true) };
                let (lo, hi) = (d - GUARD, d + n + GUARD);
                assert!(
                    dst.0[d..d + n].iter().all(|&b| b == c),
                    "n {n} da {da} c {c}"
                );
                assert!(
                    same(&dst.0[lo..d], &fresh.0[lo..d]),
                    "underrun n {n} da {da}"
                );
                assert!(
                    same(&dst.0[d + n..hi], &fresh.0[d + n..hi]),
                    "overrun n {n} da {da}"
                );
                copy_into(&mut dst.0[lo..hi], &fresh.0[lo..hi]);
            }
        }
    }
}

/// Positions of the first difference tried for size `n`: every one for
/// short sizes, otherwise the word and block edges and both ends.
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
        n / 2,
        back(9),
        back(8),
        back(2),
        back(1),
    ];
    let every = if n <= 40 { 0..n } else { 0..0 };
    every.chain(edges.into_iter().filter(move |&p| n > 40 && p < n))
}

/// memcmp and bcmp over every size 0..=512 and misalignment pair: equal
/// buffers (with differing bytes just outside), then, for sixteen pairs
/// that give each side every misalignment (the code never branches on
/// alignment; this keeps the debug-build run short), a first difference at
/// each tried position with a later difference of the opposite sign, in
/// both orders, with bytes whose signed-char order is the reverse of their
/// unsigned order.
#[test]
fn compares_every_small_size_and_alignment() {
    let mut a = Buf([0; SPAN]);
    let mut b = Buf([0; SPAN]);
    pattern(&mut a.0, 4);
    copy_into(&mut b.0, &a.0);
    for n in 0..=MAX_SMALL {
        for sa in 0..16 {
            for sb in 0..16 {
                let (pa, pb) = (GUARD + sa, GUARD + sb);
                // Same contents at the two offsets; guards differ.
                copy_into(&mut b.0[pb..pb + n], &a.0[pa..pa + n]);
                b.0[pb - 1] = !a.0[pa - 1];
                b.0[pb + n] = !a.0[pa + n];
                let (x, y) = (a.0.as_ptr(), b.0.as_ptr());
                // SAFETY: all calls below: pa + n and pb + n are in the buffers.
                unsafe {
                    assert_eq!(compare(x.add(pa), y.add(pb), n), 0, "n {n} sa {sa} sb {sb}");
                    assert!(equal(x.add(pa), y.add(pb), n), "n {n} sa {sa} sb {sb}");
                }
                if sb != (sa * 7 + 3) % 16 {
                    continue;
                }
                for p in diff_positions(n) {
                    let (keep_a, keep_b) = (a.0[pa + p], b.0[pb + p]);
                    let later = (p + 1 < n).then(|| (a.0[pa + n - 1], b.0[pb + n - 1]));
                    a.0[pa + p] = 0x80;
                    b.0[pb + p] = 0x01;
                    if p + 1 < n {
                        a.0[pa + n - 1] = 0x00;
                        b.0[pb + n - 1] = 0xff;
                    }
                    let (x, y) = (a.0.as_ptr(), b.0.as_ptr());
                    // SAFETY: pa + n and pb + n are in the buffers.
                    unsafe {
                        assert!(
                            compare(x.add(pa), y.add(pb), n) > 0,
                            "n {n} p {p} sa {sa} sb {sb}"
                        );
                        assert!(
                            compare(y.add(pb), x.add(pa), n) < 0,
                            "n {n} p {p} sa {sa} sb {sb}"
                        );
                        assert!(
                            !equal(x.add(pa), y.add(pb), n),
                            "n {n} p {p} sa {sa} sb {sb}"
                        );
                    }
                    a.0[pa + p] = keep_a;
                    b.0[pb + p] = keep_b;
                    if let Some((la, lb)) = later {
                        a.0[pa + n - 1] = la;
                        b.0[pb + n - 1] = lb;
                    }
                }
            }
        }
    }
}

/// memmove at every distance 1..=80 (and n/2, n-1, n+1) in both
/// directions for every size 0..=512.
#[test]
fn moves_overlapping_at_every_short_distance() {
    const ROOM: usize = 2 * MAX_SMALL + 64;
    let mut buf = [0u8; ROOM];
    let mut before = [0u8; ROOM];
    pattern(&mut before, 5);
    copy_into(&mut buf, &before);
    for n in 0..=MAX_SMALL {
        let distances = (1..=80).chain([n / 2 + 1, n.saturating_sub(1).max(1), n + 1]);
        for dist in distances {
            for up in [false, true] {
                let (s, d) = if up {
                    (GUARD, GUARD + dist)
                } else {
                    (GUARD + dist, GUARD)
                };
                check_move(&mut buf, &before, s, d, n, true);
            }
        }
    }
}

/// Moves `n` bytes from `s` to `d` inside `buf` (holding `before`), checks
/// the result against the original and restores `buf`.
fn check_move(buf: &mut [u8], before: &[u8], s: usize, d: usize, n: usize, fast: bool) {
    let p = buf.as_mut_ptr();
    // SAFETY: the callers keep s + n and d + n inside `buf`.
    unsafe { move_with(p.add(d), p.add(s), n, || fast) };
    for i in 0..buf.len() {
        let want = if (d..d + n).contains(&i) {
            before[s + i - d]
        } else {
            before[i]
        };
        assert_eq!(
            buf[i], want,
            "memmove n {n} from {s} to {d} fast {fast}: byte {i}"
        );
    }
    copy_into(buf, before);
}

/// Around the register/`rep` thresholds, both strategies (with and without
/// fast strings), overlapping in both directions at short and long
/// distances.
#[test]
fn moves_around_the_thresholds_with_both_strategies() {
    const ROOM: usize = 4096;
    let mut buf = vec![0u8; ROOM];
    let mut before = vec![0u8; ROOM];
    pattern(&mut before, 6);
    copy_into(&mut buf, &before);
    for n in (700..=1300)
        .step_by(37)
        .chain([767, 768, 769, 1023, 1024, 1025])
    {
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
            n - 1,
            n + 3,
        ] {
            for up in [false, true] {
                for fast in [false, true] {
                    let (s, d) = if up { (5, 5 + dist) } else { (5 + dist, 5) };
                    check_move(&mut buf, &before, s, d, n, fast);
                }
            }
        }
    }
}

/// Sizes past the thresholds, several alignments, both strategies.
#[test]
fn copies_and_sets_long_sizes_with_both_strategies() {
    const ROOM: usize = 2200;
    let mut src = vec![0u8; ROOM];
    let mut dst = vec![0u8; ROOM];
    pattern(&mut src, 7);
    for fast in [false, true] {
        for n in (513..2100).step_by(11) {
            for (sa, da) in [(0, 0), (1, 0), (0, 7), (5, 3), (8, 8), (15, 9)] {
                pattern(&mut dst, 8);
                // SAFETY: 48 + 15 + n < ROOM.
                unsafe {
                    forward_with(
                        dst.as_mut_ptr().add(48 + da),
                        src.as_ptr().add(48 + sa),
                        n,
                        || fast,
                    )
                };
                assert!(
                    same(&dst[48 + da..48 + da + n], &src[48 + sa..48 + sa + n]),
                    "n {n} fast {fast}"
                );
                assert!(
                    dst[47 + da] != src[47 + sa] || dst[48 + da + n] != src[48 + sa + n] || n == 0
                );
                let (lo, hi) = (dst[47 + da], dst[48 + da + n]);
                // SAFETY: as above.
                unsafe { set_with(dst.as_mut_ptr().add(48 + da), 0xc3, n, || fast) };
                assert!(
                    dst[48 + da..48 + da + n].iter().all(|&b| b == 0xc3),
                    "n {n} fast {fast}"
                );
                assert_eq!(
                    (dst[47 + da], dst[48 + da + n]),
                    (lo, hi),
                    "guard n {n} fast {fast}"
                );
            }
        }
    }
}

/// Several MiB: copy, move both ways, fill and compare.
#[test]
fn handles_multi_mib_sizes() {
    let n = 3 * 1024 * 1024 + 13;
    let mut src = vec![0u8; n + 64];
    let mut dst = vec![0u8; n + 64];
    pattern(&mut src, 9);
    for fast in [false, true] {
        // SAFETY: every range below is inside vectors of n + 64 bytes.
        unsafe {
            forward_with(dst.as_mut_ptr().add(3), src.as_ptr().add(1), n, || fast);
            assert!(same(&dst[3..3 + n], &src[1..1 + n]));
            assert_eq!(compare(dst.as_ptr().add(3), src.as_ptr().add(1), n), 0);
            dst[3 + n - 2] ^= 0x80;
            assert!(compare(dst.as_ptr().add(3), src.as_ptr().add(1), n) != 0);
            assert!(!equal(dst.as_ptr().add(3), src.as_ptr().add(1), n));

            // Backward by 33 bytes and by 1 MiB, then forward by 33 bytes.
            for dist in [33, 1 << 20] {
                copy_into(&mut dst, &src);
                move_with(
                    dst.as_mut_ptr().add(dist),
                    dst.as_ptr(),
                    n + 64 - dist,
                    || fast,
                );
                assert!(same(&dst[dist..], &src[..n + 64 - dist]), "dist {dist}");
            }
            copy_into(&mut dst, &src);
            move_with(dst.as_mut_ptr(), dst.as_ptr().add(33), n, || fast);
            assert!(same(&dst[..n], &src[33..33 + n]));

            set_with(dst.as_mut_ptr().add(1), 0x7e, n, || fast);
            assert!(dst[1..1 + n].iter().all(|&b| b == 0x7e) && dst[0] == src[33]);
        }
    }
}

/// The C wrappers: return values per C11 and the `int` to `unsigned char`
/// conversion of memset.
#[cfg(feature = "c-api")]
#[test]
fn c_entry_points_return_what_the_standard_says() {
    use crate::ffi::string::{bcmp, bzero, memcmp, memcpy, memmove, memset};
    let mut a = [1u8; 100];
    let b = [2u8; 100];
    let pa = a.as_mut_ptr().cast();
    // SAFETY: every call stays inside the 100-byte arrays.
    unsafe {
        assert_eq!(memcpy(pa, b.as_ptr().cast(), 100), pa);
        assert_eq!(memmove(pa, a.as_ptr().add(1).cast(), 99), pa);
        assert_eq!(memset(pa, 0x1ff, 50), pa);
        assert!(a[..50].iter().all(|&x| x == 0xff) && a[50] == 2);
        assert!(memcmp(pa, b.as_ptr().cast(), 100) > 0);
        assert!(bcmp(pa, b.as_ptr().cast(), 100) != 0);
        assert_eq!(bcmp(pa, pa, 100), 0);
        bzero(pa, 100);
        assert!(a.iter().all(|&x| x == 0));
    }
}

/// CPUID agrees with what the kernel reports in /proc/cpuinfo.
#[test]
fn string_features_match_cpuinfo() {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return;
    };
    let Some(flags) = info.lines().find(|l| l.starts_with("flags")) else {
        return;
    };
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    let got = super::cpu::string_features();
    assert_eq!((got.erms, got.fsrm), (has("erms"), has("fsrm")));
}

/// The opt-in AVX2 path, called directly (the global switch stays off so
/// that the other tests keep testing the register path).
#[cfg(target_os = "linux")]
mod simd {
    use super::super::simd;
    use super::{pattern, same};

    fn usable() -> bool {
        let ok = simd::usable();
        if !ok {
            eprintln!("skipped: this CPU or OS has no AVX2");
        }
        ok
    }

    /// memmove through the SIMD path, choosing the direction as `move_with` does.
    ///
    /// # Safety
    /// As memmove; `n > 64`.
    unsafe fn simd_move(d: *mut u8, s: *const u8, n: usize) {
        // SAFETY: forwarded contract; the direction precondition is checked.
        unsafe {
            if (d as usize).wrapping_sub(s as usize) < n {
                simd::copy_backward(d, s, n);
            } else {
                simd::copy_forward(d, s, n);
            }
        }
    }

    #[test]
    fn copies_sets_and_moves() {
        if !usable() {
            return;
        }
        const ROOM: usize = 12 * 1024;
        let mut before = vec![0u8; ROOM];
        pattern(&mut before, 10);
        let mut buf = before.clone();
        let sizes = (65..=1100).chain((4000..4300).step_by(7)).chain([5000]);
        for n in sizes {
            for (sa, da) in [(0, 0), (5, 3), (1, 31), (32, 0)] {
                // Disjoint copy, then fill, at [6000 + da, ...) from [sa, ...).
                let (s, d) = (sa, 6000 + da);
                // SAFETY: s + n and d + n are inside `buf` and disjoint.
                unsafe { simd::copy_forward(buf.as_mut_ptr().add(d), buf.as_ptr().add(s), n) };
                assert!(same(&buf[d..d + n], &before[s..s + n]), "copy n {n}");
                assert!(
                    buf[d - 1] == before[d - 1] && buf[d + n] == before[d + n],
                    "copy guard n {n}"
                );
                // SAFETY: as above.
                unsafe { simd::set(buf.as_mut_ptr().add(d), 0xa7, n) };
                assert!(buf[d..d + n].iter().all(|&b| b == 0xa7), "set n {n}");
                assert!(
                    buf[d - 1] == before[d - 1] && buf[d + n] == before[d + n],
                    "set guard n {n}"
                );
                super::copy_into(&mut buf, &before);
            }
            if n > 400 && ![512, 777, 1100].contains(&n) {
                continue;
            }
            for dist in [1, 31, 32, 33, 64, 127, 128, 129, n / 2 + 1, n - 1] {
                for up in [false, true] {
                    let (s, d) = if up { (7, 7 + dist) } else { (7 + dist, 7) };
                    // SAFETY: s + n and d + n are inside `buf`.
                    unsafe { simd_move(buf.as_mut_ptr().add(d), buf.as_ptr().add(s), n) };
                    for i in 0..d + n + 8 {
                        let want = if (d..d + n).contains(&i) {
                            before[s + i - d]
                        } else {
                            before[i]
                        };
                        assert_eq!(buf[i], want, "memmove n {n} from {s} to {d}: byte {i}");
                    }
                    super::copy_into(&mut buf, &before);
                }
            }
        }
    }

    #[test]
    fn compares() {
        if !usable() {
            return;
        }
        let mut a = vec![0u8; 700];
        pattern(&mut a, 11);
        let mut b = a.clone();
        for n in 65..=600 {
            for (pa, pb) in [(0, 0), (3, 17), (32, 1)] {
                super::copy_into(&mut b[pb..pb + n], &a[pa..pa + n]);
                let (x, y) = (a.as_ptr(), b.as_ptr());
                // SAFETY: pa + n and pb + n are inside the vectors.
                let same_bytes = unsafe { simd::compare(x.add(pa), y.add(pb), n) };
                assert_eq!(same_bytes, 0, "n {n}");
                let positions = [0, 1, 31, 32, 33, 63, 64, 65, n / 2, n - 33, n - 32, n - 1];
                for p in positions.into_iter().filter(|&p| p < n) {
                    let keep = (a[pa + p], b[pb + p], a[pa + n - 1], b[pb + n - 1]);
                    a[pa + p] = 0x80;
                    b[pb + p] = 0x01;
                    if p + 1 < n {
                        a[pa + n - 1] = 0x00;
                        b[pb + n - 1] = 0xff;
                    }
                    let (x, y) = (a.as_ptr(), b.as_ptr());
                    // SAFETY: as above.
                    unsafe {
                        assert!(simd::compare(x.add(pa), y.add(pb), n) > 0, "n {n} p {p}");
                        assert!(simd::compare(y.add(pb), x.add(pa), n) < 0, "n {n} p {p}");
                    }
                    (a[pa + n - 1], b[pb + n - 1]) = (keep.2, keep.3);
                    (a[pa + p], b[pb + p]) = (keep.0, keep.1);
                }
            }
        }
    }

    #[test]
    fn handles_multi_mib_sizes() {
        if !usable() {
            return;
        }
        let n = 3 * 1024 * 1024 + 13;
        let mut src = vec![0u8; n + 64];
        pattern(&mut src, 12);
        let mut dst = vec![0u8; n + 64];
        // SAFETY: all ranges are inside vectors of n + 64 bytes.
        unsafe {
            simd::copy_forward(dst.as_mut_ptr().add(3), src.as_ptr().add(1), n);
            assert!(same(&dst[3..3 + n], &src[1..1 + n]));
            assert_eq!(
                simd::compare(dst.as_ptr().add(3), src.as_ptr().add(1), n),
                0
            );
            simd::copy_backward(dst.as_mut_ptr().add(40), dst.as_ptr().add(3), n);
            assert!(same(&dst[40..40 + n], &src[1..1 + n]));
            simd::set(dst.as_mut_ptr().add(1), 0x3c, n);
            assert!(dst[1..1 + n].iter().all(|&b| b == 0x3c));
        }
    }
}
