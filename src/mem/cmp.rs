//! memcmp and bcmp above 64 bytes on the register path: 32 bytes per step
//! as eight 8-byte loads, differences ORed into one test.

use super::load_block;

/// memcmp above 64 bytes on the register path: negative, zero or positive
/// as the first differing byte of `a` is below, absent or above that of
/// `b` (as unsigned char). Reached from the entry points (`entry`).
///
/// # Safety
/// `n > 64`; `a` and `b` readable for `n` bytes.
pub(crate) unsafe extern "C" fn compare_long(
    a: *const u8,
    b: *const u8,
    n: usize,
    _path: u32,
) -> i32 {
    // Bytes before `i` are known equal, so the last block, which overlaps
    // them, finds the first difference of what remains.
    // SAFETY: every block starts at i <= n - 32 or at n - 32 (n > 64).
    unsafe {
        let mut i = 0;
        while n - i > 32 {
            let (x, y) = (load_block(a.add(i)), load_block(b.add(i)));
            if differ(x, y) {
                return first_order(x, y);
            }
            i += 32;
        }
        let (x, y) = (load_block(a.add(n - 32)), load_block(b.add(n - 32)));
        if differ(x, y) {
            first_order(x, y)
        } else {
            0
        }
    }
}

/// bcmp above 64 bytes on the register path: 0 when the bytes are equal,
/// 1 otherwise.
///
/// # Safety
/// `n > 64`; `a` and `b` readable for `n` bytes.
pub(crate) unsafe extern "C" fn equal_long(
    a: *const u8,
    b: *const u8,
    n: usize,
    _path: u32,
) -> i32 {
    // SAFETY: as in `compare_long`.
    unsafe {
        let mut i = 0;
        while n - i > 32 {
            if differ(load_block(a.add(i)), load_block(b.add(i))) {
                return 1;
            }
            i += 32;
        }
        i32::from(differ(load_block(a.add(n - 32)), load_block(b.add(n - 32))))
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
    let (x, y) = (x[k].swap_bytes(), y[k].swap_bytes());
    i32::from(x > y) - i32::from(x < y)
}
