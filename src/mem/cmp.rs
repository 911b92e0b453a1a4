//! memcmp and bcmp.

use super::{load, load_block};

/// Compares `n` bytes as unsigned chars (memcmp): negative, zero or
/// positive as the first differing byte of `a` is below, absent or above
/// that of `b`.
///
/// # Safety
/// `a` and `b` readable for `n` bytes.
#[inline(always)]
pub unsafe fn compare(a: *const u8, b: *const u8, n: usize) -> i32 {
    // Bytes before `i` are known equal, so a last word or block that
    // overlaps them finds the first difference of what remains.
    // SAFETY: every load: it lies inside [0, n): blocks start at
    // i <= n - 32 or at n - 32 when n >= 32, words at i < n - 8 or at n - 8
    // when n >= 8, and `short_key` takes n < 8.
    unsafe {
        if n < 8 {
            return order(short_key(a, n), short_key(b, n));
        }
        let mut i = 0;
        if n >= 32 {
            #[cfg(target_os = "linux")]
            if n > 64 && super::simd::enabled() {
                return super::simd::compare(a, b, n);
            }
            while n - i > 32 {
                let (x, y) = (load_block(a.add(i)), load_block(b.add(i)));
                if differ(x, y) {
                    return first_order(x, y);
                }
                i += 32;
            }
            let (x, y) = (load_block(a.add(n - 32)), load_block(b.add(n - 32)));
            return if differ(x, y) { first_order(x, y) } else { 0 };
        }
        while n - i > 8 {
            let (x, y): (u64, u64) = (load(a.add(i)), load(b.add(i)));
            if x != y {
                return order(x.swap_bytes(), y.swap_bytes());
            }
            i += 8;
        }
        let (x, y): (u64, u64) = (load(a.add(n - 8)), load(b.add(n - 8)));
        order(x.swap_bytes(), y.swap_bytes())
    }
}

/// Whether `n` bytes are equal (bcmp is `!equal`).
///
/// # Safety
/// `a` and `b` readable for `n` bytes.
#[inline(always)]
pub unsafe fn equal(a: *const u8, b: *const u8, n: usize) -> bool {
    // SAFETY: every branch: each load lies inside [0, n): the pairs start
    // at 0 and at n - width with width <= n.
    unsafe {
        if n < 8 {
            return short_key(a, n) == short_key(b, n);
        }
        #[cfg(target_os = "linux")]
        if n > 64 && super::simd::enabled() {
            return super::simd::compare(a, b, n) == 0;
        }
        let mut i = 0;
        while n - i > 32 {
            if differ(load_block(a.add(i)), load_block(b.add(i))) {
                return false;
            }
            i += 32;
        }
        if n >= 32 {
            return !differ(load_block(a.add(n - 32)), load_block(b.add(n - 32)));
        }
        let (a0, a1): (u64, u64) = (load(a), load(a.add(n - 8)));
        let (b0, b1): (u64, u64) = (load(b), load(b.add(n - 8)));
        if n <= 16 {
            return (a0 ^ b0) | (a1 ^ b1) == 0;
        }
        let (a2, a3): (u64, u64) = (load(a.add(8)), load(a.add(n - 16)));
        let (b2, b3): (u64, u64) = (load(b.add(8)), load(b.add(n - 16)));
        (a0 ^ b0) | (a1 ^ b1) | (a2 ^ b2) | (a3 ^ b3) == 0
    }
}

/// The first `n < 8` bytes as a big-endian number that orders like them:
/// two overlapping 4-byte words from each end, or, below 4 bytes, the
/// bytes at 0, n/2 and n-1 (a repeated byte changes no order).
///
/// # Safety
/// `n < 8`; `p` readable for `n` bytes.
#[inline(always)]
unsafe fn short_key(p: *const u8, n: usize) -> u64 {
    // SAFETY: every index is below n (n >= 4 for the word loads, n >= 1
    // for the byte loads).
    unsafe {
        if n >= 4 {
            let hi = load::<u32>(p).swap_bytes();
            let lo = load::<u32>(p.add(n - 4)).swap_bytes();
            (u64::from(hi) << 32) | u64::from(lo)
        } else if n > 0 {
            let (x, y, z) = (
                load::<u8>(p),
                load::<u8>(p.add(n / 2)),
                load::<u8>(p.add(n - 1)),
            );
            (u64::from(x) << 16) | (u64::from(y) << 8) | u64::from(z)
        } else {
            0
        }
    }
}

#[inline(always)]
fn differ(x: [u64; 4], y: [u64; 4]) -> bool {
    (x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) != 0
}

/// The order of the first differing word of two different blocks.
#[cold]
fn first_order(x: [u64; 4], y: [u64; 4]) -> i32 {
    let k = (0..4).find(|&k| x[k] != y[k]).unwrap_or(3);
    order(x[k].swap_bytes(), y[k].swap_bytes())
}

/// -1, 0 or 1 as `x` is below, equal to or above `y`.
#[inline(always)]
fn order(x: u64, y: u64) -> i32 {
    i32::from(x > y) - i32::from(x < y)
}
