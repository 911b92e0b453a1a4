//! The page map: which heap structure owns each 4 KiB page of memory.
//!
//! A four-level radix tree over address bits 47..12 (nine bits per level,
//! like x86_64 page tables). Every page the heap holds maps to a tagged
//! pointer: a [`Span`](super::spans::Span) record for pages of the TLSF back
//! end, or a [`Slab`](super::slab::Slab) descriptor for pages of a slab.
//! Everything else maps to 0, so a pointer memshim never returned is found
//! foreign in O(1) and exactly, without reading the memory around it.
//!
//! Readers never lock: `free` looks a pointer up with four dependent loads
//! and no branch, because absent subtrees point at shared all-empty nodes
//! instead of null. Writers hold the heap lock; nodes are never freed, so a
//! racing reader always reads mapped memory. The map is out of band: its
//! nodes live in metadata pages, never next to user blocks.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Bytes per page the map resolves.
pub(crate) const PAGE: usize = 4096;
const SHIFT: u32 = 12;
const BITS: u32 = 9;
const FAN: usize = 1 << BITS;
const MASK: usize = FAN - 1;

/// Tag of an entry that points at a slab descriptor.
pub(crate) const TAG_SLAB: usize = 1;
/// Tag of an entry that points at a span record.
pub(crate) const TAG_SPAN: usize = 2;
/// The tag bits of an entry (records are at least 64-byte aligned).
pub(crate) const TAG_MASK: usize = 3;

/// A leaf: one entry per page, covering 2 MiB.
#[repr(C, align(4096))]
pub struct Leaf([AtomicUsize; FAN]);
/// Covers 1 GiB.
#[repr(C, align(4096))]
pub struct Mid([AtomicPtr<Leaf>; FAN]);
/// Covers 512 GiB.
#[repr(C, align(4096))]
pub struct Top([AtomicPtr<Mid>; FAN]);

const _: () = assert!(core::mem::size_of::<Leaf>() == PAGE);
const _: () = assert!(core::mem::size_of::<Mid>() == PAGE);
const _: () = assert!(core::mem::size_of::<Top>() == PAGE);

static EMPTY_LEAF: Leaf = Leaf([const { AtomicUsize::new(0) }; FAN]);
static EMPTY_MID: Mid = Mid([const { AtomicPtr::new(ptr::from_ref(&EMPTY_LEAF).cast_mut()) }; FAN]);
static EMPTY_TOP: Top = Top([const { AtomicPtr::new(ptr::from_ref(&EMPTY_MID).cast_mut()) }; FAN]);

/// The map. Its root (4 KiB) is inline; the rest comes from metadata pages.
#[repr(C, align(4096))]
pub struct PageMap {
    root: [AtomicPtr<Top>; FAN],
}

impl Default for PageMap {
    fn default() -> Self {
        Self::new()
    }
}

impl PageMap {
    /// An empty map: every address is foreign.
    pub const fn new() -> Self {
        Self {
            root: [const { AtomicPtr::new(ptr::from_ref(&EMPTY_TOP).cast_mut()) }; FAN],
        }
    }

    /// The entry of the page holding `a` (0: not the heap's). Lock-free.
    #[inline(always)]
    pub fn get(&self, a: usize) -> usize {
        let i = |level: u32| (a >> (SHIFT + BITS * level)) & MASK;
        let top = self.root[i(3)].load(Ordering::Acquire);
        // SAFETY: every node pointer is either one of the static empty nodes
        // or a node from a metadata page, which is never freed; both stay
        // valid for the life of the program.
        unsafe {
            let mid = (*top).0[i(2)].load(Ordering::Acquire);
            let leaf = (*mid).0[i(1)].load(Ordering::Acquire);
            (*leaf).0[i(0)].load(Ordering::Acquire)
        }
    }

    /// Makes sure every node on the way to the pages of `start..end` exists,
    /// taking zeroed pages from `page`. Returns false when `page` ran out
    /// (the nodes made so far stay: they are harmless).
    ///
    /// Caller holds the heap lock (the only writer).
    pub fn reserve(
        &self,
        start: usize,
        end: usize,
        page: &mut dyn FnMut() -> Option<*mut u8>,
    ) -> bool {
        let mut a = start & !(PAGE - 1);
        while a < end {
            let i = |level: u32| (a >> (SHIFT + BITS * level)) & MASK;
            let slot = &self.root[i(3)];
            let Some(top) = node(slot, ptr::from_ref(&EMPTY_TOP).cast_mut(), &EMPTY_MID, page)
            else {
                return false;
            };
            // SAFETY: `top` is a live node (see `get`).
            let slot = unsafe { &(*top).0[i(2)] };
            let Some(mid) = node(
                slot,
                ptr::from_ref(&EMPTY_MID).cast_mut(),
                &EMPTY_LEAF,
                page,
            ) else {
                return false;
            };
            // SAFETY: as above.
            let slot = unsafe { &(*mid).0[i(1)] };
            if node::<Leaf, ()>(slot, ptr::from_ref(&EMPTY_LEAF).cast_mut(), &(), page).is_none() {
                return false;
            }
            // Next 2 MiB boundary (one leaf each).
            let next = (a | ((PAGE << BITS) - 1)).wrapping_add(1);
            if next <= a {
                break;
            }
            a = next;
        }
        true
    }

    /// Sets the entry of every page in `start..end` (page-aligned) to
    /// `value`. [`PageMap::reserve`] must have succeeded for the range.
    ///
    /// Caller holds the heap lock.
    pub fn set(&self, start: usize, end: usize, value: usize) {
        debug_assert!(start % PAGE == 0 && end % PAGE == 0);
        let mut a = start;
        while a < end {
            let i = |level: u32| (a >> (SHIFT + BITS * level)) & MASK;
            let top = self.root[i(3)].load(Ordering::Acquire);
            // SAFETY: nodes are live (see `get`); `reserve` made the real
            // ones, so no write lands in a static empty node (checked).
            unsafe {
                let mid = (*top).0[i(2)].load(Ordering::Acquire);
                let leaf = (*mid).0[i(1)].load(Ordering::Acquire);
                assert!(!ptr::eq(leaf, &EMPTY_LEAF), "page map: set without reserve");
                // Fill the rest of this leaf in one pass.
                let first = i(0);
                let last = ((end - a) / PAGE).min(FAN - first) + first;
                for e in &(&(*leaf).0)[first..last] {
                    e.store(value, Ordering::Release);
                }
                a += (last - first) * PAGE;
            }
        }
    }

    /// Whether any page overlapping `start..end` has an entry `pred`
    /// accepts (never asked of 0). Empty subtrees are skipped whole, so a
    /// range far larger than the heap costs little.
    pub fn any(&self, start: usize, end: usize, pred: impl Fn(usize) -> bool) -> bool {
        self.find(start, end, pred).is_some()
    }

    /// The first address (page-aligned, at or after `start & !(PAGE - 1)`)
    /// of a page in `start..end` whose entry `pred` accepts.
    pub fn find(&self, start: usize, end: usize, pred: impl Fn(usize) -> bool) -> Option<usize> {
        // The map tells addresses apart by bits 47..12 only: walk those keys.
        const KEYS: usize = 1 << 48;
        if end <= start {
            return None;
        }
        let base = start & !(PAGE - 1);
        let k = base & (KEYS - 1);
        let len = end - base;
        let at = |key: usize| base.wrapping_add(key.wrapping_sub(k) & (KEYS - 1));
        if len >= KEYS - k {
            // Reaches (or wraps past) the top of the key space.
            return self
                .find_keys(k, KEYS, &pred)
                .or_else(|| self.find_keys(0, (len - (KEYS - k)).min(k), &pred))
                .map(at);
        }
        self.find_keys(k, k + len, &pred).map(at)
    }

    fn find_keys(&self, start: usize, end: usize, pred: &dyn Fn(usize) -> bool) -> Option<usize> {
        let mut a = start & !(PAGE - 1);
        while a < end {
            let i = |level: u32| (a >> (SHIFT + BITS * level)) & MASK;
            let skip = |level: u32| (a | ((PAGE << (BITS * level)) - 1)) + 1;
            let top = self.root[i(3)].load(Ordering::Acquire);
            a = if ptr::eq(top, &EMPTY_TOP) {
                skip(3)
            } else {
                // SAFETY: live nodes (see `get`).
                let mid = unsafe { (*top).0[i(2)].load(Ordering::Acquire) };
                if ptr::eq(mid, &EMPTY_MID) {
                    skip(2)
                } else {
                    // SAFETY: as above.
                    let leaf = unsafe { (*mid).0[i(1)].load(Ordering::Acquire) };
                    if ptr::eq(leaf, &EMPTY_LEAF) {
                        skip(1)
                    } else {
                        // SAFETY: as above.
                        let e = unsafe { (*leaf).0[i(0)].load(Ordering::Acquire) };
                        if e != 0 && pred(e) {
                            return Some(a);
                        }
                        a + PAGE
                    }
                }
            };
        }
        None
    }

    /// How many nodes [`PageMap::reserve`] would have to make for
    /// `start..end`.
    pub fn missing_nodes(&self, start: usize, end: usize) -> usize {
        let mut n = 0;
        let mut a = start & !(PAGE - 1);
        let (mut last_top, mut last_mid) = (usize::MAX, usize::MAX);
        while a < end {
            let i = |level: u32| (a >> (SHIFT + BITS * level)) & MASK;
            let top = self.root[i(3)].load(Ordering::Acquire);
            let top_key = a >> (SHIFT + 3 * BITS);
            let mid_key = a >> (SHIFT + 2 * BITS);
            if ptr::eq(top, &EMPTY_TOP) {
                n += usize::from(top_key != last_top) + usize::from(mid_key != last_mid) + 1;
            } else {
                // SAFETY: live nodes (see `get`).
                let mid = unsafe { (*top).0[i(2)].load(Ordering::Acquire) };
                if ptr::eq(mid, &EMPTY_MID) {
                    n += usize::from(mid_key != last_mid) + 1;
                } else {
                    // SAFETY: as above.
                    let leaf = unsafe { (*mid).0[i(1)].load(Ordering::Acquire) };
                    n += usize::from(ptr::eq(leaf, &EMPTY_LEAF));
                }
            }
            (last_top, last_mid) = (top_key, mid_key);
            let next = (a | ((PAGE << BITS) - 1)).wrapping_add(1);
            if next <= a {
                break;
            }
            a = next;
        }
        n
    }

    /// Pages of metadata the map's nodes occupy (for statistics).
    pub fn node_pages(&self) -> usize {
        let mut n = 0;
        for t in &self.root {
            let top = t.load(Ordering::Acquire);
            if ptr::eq(top, &EMPTY_TOP) {
                continue;
            }
            n += 1;
            // SAFETY: a live node.
            for m in unsafe { &(*top).0 } {
                let mid = m.load(Ordering::Acquire);
                if ptr::eq(mid, &EMPTY_MID) {
                    continue;
                }
                n += 1;
                // SAFETY: a live node.
                n += unsafe { &(*mid).0 }
                    .iter()
                    .filter(|l| !ptr::eq(l.load(Ordering::Acquire), &EMPTY_LEAF))
                    .count();
            }
        }
        n
    }
}

/// The node `slot` points at, made from a fresh page (its entries pointing
/// at `child_empty`) if it is still the shared empty node `empty`.
fn node<N, C>(
    slot: &AtomicPtr<N>,
    empty: *mut N,
    child_empty: &C,
    page: &mut dyn FnMut() -> Option<*mut u8>,
) -> Option<*mut N> {
    let cur = slot.load(Ordering::Acquire);
    if cur != empty {
        return Some(cur);
    }
    let p = page()?;
    // Every node is 512 pointer-sized slots: the child empty node (a leaf's
    // children are plain zero entries, `C = ()`).
    let fill = if core::mem::size_of::<C>() == 0 {
        ptr::null_mut()
    } else {
        ptr::from_ref(child_empty).cast_mut()
    };
    let slots = p.cast::<AtomicPtr<C>>();
    for k in 0..FAN {
        // SAFETY: `p` is a fresh, exclusively owned, 4096-byte aligned page.
        unsafe { slots.add(k).write(AtomicPtr::new(fill)) };
    }
    let n = p.cast::<N>();
    slot.store(n, Ordering::Release);
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::{alloc_zeroed, Layout};

    fn pages() -> impl FnMut() -> Option<*mut u8> {
        || {
            // SAFETY: a non-zero, page-aligned layout; leaked on purpose
            // (nodes live as long as the map).
            Some(unsafe { alloc_zeroed(Layout::from_size_align(PAGE, PAGE).unwrap()) })
        }
    }

    #[test]
    fn empty_map_knows_nothing() {
        let m = Box::new(PageMap::new());
        for a in [
            0usize,
            4096,
            0x7fff_ffff_f000,
            usize::MAX,
            0xffff_8000_0000_0000,
        ] {
            assert_eq!(m.get(a), 0);
        }
    }

    #[test]
    fn ranges_map_exactly_their_pages() {
        let m = Box::new(PageMap::new());
        let mut page = pages();
        // Crosses a 2 MiB and a 1 GiB boundary.
        let (s, e) = (0x3fe0_0000 - 3 * PAGE, 0x4000_0000 + 5 * PAGE);
        assert!(m.reserve(s, e, &mut page));
        m.set(s, e, 0x1000 | TAG_SPAN);
        assert_eq!(m.get(s - 1), 0);
        assert_eq!(m.get(s), 0x1000 | TAG_SPAN);
        assert_eq!(m.get(0x3fff_ffff), 0x1000 | TAG_SPAN);
        assert_eq!(m.get(e - 1), 0x1000 | TAG_SPAN);
        assert_eq!(m.get(e), 0);
        m.set(s + PAGE, s + 2 * PAGE, 0x2000 | TAG_SLAB);
        assert_eq!(m.get(s + PAGE + 17), 0x2000 | TAG_SLAB);
        assert_eq!(m.get(s), 0x1000 | TAG_SPAN);
        m.set(s, e, 0);
        assert_eq!(m.get(s + PAGE), 0);
        // Kernel-half addresses use their own subtree.
        let k = 0xffff_8000_0010_0000usize;
        assert!(m.reserve(k, k + PAGE, &mut page));
        m.set(k, k + PAGE, 0x3000 | TAG_SPAN);
        assert_eq!(m.get(k + 5), 0x3000 | TAG_SPAN);
        assert_eq!(m.get(0x0000_7000_0010_0000), 0);
        // Low half: 1 top, 2 mids (GiB 0 and 1), 3 leaves; kernel half: 1 + 1 + 1.
        assert_eq!(m.node_pages(), 6 + 3);
    }

    #[test]
    fn any_finds_entries_and_skips_empty_subtrees() {
        let m = Box::new(PageMap::new());
        let mut page = pages();
        let a = 0x7f00_0000_0000usize;
        assert_eq!(m.missing_nodes(a, a + PAGE), 3);
        assert!(m.reserve(a, a + PAGE, &mut page));
        assert_eq!(m.missing_nodes(a, a + PAGE), 0);
        assert_eq!(m.missing_nodes(a, a + (4 << 20)), 1);
        m.set(a, a + PAGE, 3);
        assert!(m.any(0, usize::MAX, |e| e == 3));
        assert!(m.any(a + PAGE - 1, a + PAGE, |e| e == 3));
        assert!(!m.any(a + PAGE, 1 << 47, |_| true));
        assert!(!m.any(0, a, |_| true));
        assert!(!m.any(0, usize::MAX, |e| e == 4));
        assert_eq!(m.find(a - 5 * PAGE, a + 9, |_| true), Some(a));
        assert_eq!(m.find(a + 9, a + PAGE, |_| true), Some(a));
    }

    #[test]
    fn reserve_fails_cleanly_without_pages() {
        let m = Box::new(PageMap::new());
        let mut none = || None;
        assert!(!m.reserve(0x10_0000, 0x20_0000, &mut none));
        assert_eq!(m.get(0x10_0000), 0);
    }
}
