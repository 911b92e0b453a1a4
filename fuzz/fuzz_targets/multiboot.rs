//! Arbitrary Multiboot 1 / Multiboot 2 information and range lists fed to a
//! local frame manager.
//!
//! A 4 MiB buffer plays physical RAM: `phys_offset` is its address and
//! `phys_limit` at most its size, so every physical address the parser
//! follows lands inside it or is refused. Under AddressSanitizer the RAM at
//! and above `phys_limit` is poisoned, and the structure handed over by
//! pointer sits (unless the input asks for it inside RAM) in an allocation of
//! exactly its size, so any read past either is reported.
//!
//! Oracles: init returns Ok or an error and writes nothing on error; on
//! success it writes only its bitmap, in [1 MiB, phys_limit), never over the
//! kernel, the structure, the Multiboot 1 memory map, module table, module
//! contents or strings; `check() == 0`; frames and heap spans it hands out
//! are usable RAM clear of all of those, and go back exactly once.

#![no_main]
#![feature(cfg_sanitize)]

use libfuzzer_sys::fuzz_target;
use memshim::frames::boot::{BootMap, Multiboot1, Multiboot2, Phys};
use memshim::frames::{FrameFault, FrameManager};
use memshim::types::{memshim_boot_config, memshim_range};
use memshim::Error;
use std::alloc::{alloc, Layout};
use std::ops::Range;
use std::sync::OnceLock;

const RAM_BYTES: usize = 4 << 20;
const FRAME: usize = 4096;
const PAT: u8 = 0xA5;
const LOW: u64 = 1 << 20;
const MB1_MAGIC: u32 = 0x2BAD_B002;
const MB2_MAGIC: u32 = 0x36D7_6289;
/// The Multiboot 1 fixed part the parser reads (flags .. mmap_addr).
const MB1_READ: usize = 52;
const MAX_STRING: u64 = 4096;

/// The RAM buffer, filled with `PAT` between runs.
struct Ram(*mut u8);
// SAFETY: libFuzzer runs one input at a time; the pointer is only used then.
unsafe impl Send for Ram {}
// SAFETY: as above.
unsafe impl Sync for Ram {}

fn ram() -> *mut u8 {
    static RAM: OnceLock<Ram> = OnceLock::new();
    RAM.get_or_init(|| {
        let layout = Layout::from_size_align(RAM_BYTES, FRAME).unwrap();
        // SAFETY: non-zero size.
        let p = unsafe { alloc(layout) };
        assert!(!p.is_null());
        // SAFETY: freshly allocated, RAM_BYTES long.
        unsafe { p.write_bytes(PAT, RAM_BYTES) };
        Ram(p)
    })
    .0
}

fn ram_slice() -> &'static mut [u8] {
    // SAFETY: the buffer lives for the process; one input at a time uses it,
    // and no reference is held across a call into memshim.
    unsafe { std::slice::from_raw_parts_mut(ram(), RAM_BYTES) }
}

#[cfg(sanitize = "address")]
extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Makes RAM from `from` on unreadable (under ASan) or readable again.
fn poison_from(from: usize, on: bool) {
    let from = from.min(RAM_BYTES);
    // SAFETY: inside the buffer.
    let p = unsafe { ram().add(from) };
    #[cfg(sanitize = "address")]
    // SAFETY: the range is part of a live allocation this target owns.
    unsafe {
        if on {
            __asan_poison_memory_region(p, RAM_BYTES - from)
        } else {
            __asan_unpoison_memory_region(p, RAM_BYTES - from)
        }
    }
    #[cfg(not(sanitize = "address"))]
    let _ = (p, on);
}

/// Reads the fuzz input; past its end everything reads as zero.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()))
}

/// Whether two ranges share a byte (an empty range shares none).
fn overlaps(a: &Range<u64>, b: &Range<u64>) -> bool {
    !a.is_empty() && !b.is_empty() && a.start < b.end && b.start < a.end
}

/// Usable and unusable memory-map entries, as the parser reports them.
type Map = (Vec<Range<u64>>, Vec<Range<u64>>);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Mb1,
    Mb2,
    Ranges,
}

/// One decoded input.
struct Case<'a> {
    kind: Kind,
    cfg: memshim_boot_config,
    limit: u64,
    /// The structure handed over by pointer (MB1 fixed part or MB2 whole).
    structure: Box<[u8]>,
    /// Its physical address when it sits inside RAM.
    struct_at: Option<u64>,
    /// MB1: bytes copied into RAM at `image_at` (memory map, modules, strings).
    image: &'a [u8],
    image_at: u64,
    ranges: Vec<memshim_range>,
}

fn decode(data: &[u8]) -> Case<'_> {
    let mut inp = Input(data);
    let mode = inp.u8();
    let kind = match mode & 7 {
        0..=2 => Kind::Mb1,
        3..=5 => Kind::Mb2,
        _ => Kind::Ranges,
    };
    let limit = (RAM_BYTES - usize::from(inp.u8()) * 16 * 1024) as u64;
    // Mostly a kernel start and length; with bit 4, any end (end < start
    // is refused as Invalid); with bit 5, anywhere in 4 GiB (mostly outside
    // usable RAM: refused as KernelRange), else inside the first 64 MiB,
    // where the maps' usable RAM usually is.
    let (ks, ke) = (inp.u32(), inp.u32());
    let ks = if mode & 32 != 0 { ks } else { ks % (64 << 20) };
    let ke = if mode & 16 != 0 {
        u64::from(ke)
    } else if mode & 32 != 0 {
        u64::from(ks) + u64::from(ke)
    } else {
        u64::from(ks) + u64::from(ke % (4 << 20))
    };
    let struct_seed = inp.u32() as usize;
    let image_at = (usize::from(inp.u16()) * FRAME % RAM_BYTES) as u64;
    let mut case = Case {
        kind,
        cfg: memshim_boot_config {
            kernel_start: u64::from(ks),
            kernel_end: ke,
            phys_offset: ram() as u64,
            phys_limit: limit,
        },
        limit,
        structure: Box::default(),
        struct_at: None,
        image: &[],
        image_at,
        ranges: Vec::new(),
    };
    match kind {
        Kind::Mb1 => {
            let mut s = inp.take(MB1_READ).to_vec();
            s.resize(MB1_READ, 0);
            // The caller's promise: the fixed fields the flags name are
            // readable (88 bytes with bits 7-11, 116 with bit 12), no more.
            let flags = u32_at(&s, 0);
            let len = if flags & 1 << 12 != 0 {
                116
            } else if flags & 0xF80 != 0 {
                88
            } else {
                MB1_READ
            };
            s.extend_from_slice(inp.take(len - MB1_READ));
            s.resize(len, 0);
            case.structure = s.into_boxed_slice();
            case.image = inp.take(usize::MAX);
        }
        Kind::Mb2 => {
            let mut s = inp.take(usize::MAX).to_vec();
            s.resize(s.len().max(8), 0);
            // The caller's promise: `total_size` bytes are readable (and,
            // so that ASan sees a read past them, no more).
            let total = u32_at(&s, 0) as usize;
            if total > s.len() {
                let len = s.len() as u32;
                s[..4].copy_from_slice(&len.to_le_bytes());
            } else {
                s.truncate(total.max(8));
            }
            case.structure = s.into_boxed_slice();
        }
        Kind::Ranges => {
            while inp.0.len() >= 16 {
                let base = u64::from_le_bytes(inp.take(8).try_into().unwrap());
                let length = u64::from_le_bytes(inp.take(8).try_into().unwrap());
                case.ranges.push(memshim_range { base, length });
            }
        }
    }
    let len = case.structure.len() as u64;
    if mode & 8 != 0 && kind != Kind::Ranges && len <= limit {
        case.struct_at = Some(struct_seed as u64 % (limit - len + 1));
    }
    case
}

impl Case<'_> {
    fn struct_range(&self) -> Option<Range<u64>> {
        self.struct_at.map(|a| a..a + self.structure.len() as u64)
    }

    fn image_range(&self) -> Range<u64> {
        let end = (self.image_at + self.image.len() as u64).min(RAM_BYTES as u64);
        self.image_at..end
    }

    /// What RAM byte `i` holds before init.
    fn expected(&self, i: u64) -> u8 {
        if let Some(r) = self.struct_range().filter(|r| r.contains(&i)) {
            return self.structure[(i - r.start) as usize];
        }
        if self.image_range().contains(&i) {
            return self.image[(i - self.image_at) as usize];
        }
        PAT
    }

    fn lay_out(&self) {
        let ram = ram_slice();
        let r = self.image_range();
        ram[r.start as usize..r.end as usize]
            .copy_from_slice(&self.image[..(r.end - r.start) as usize]);
        if let Some(r) = self.struct_range() {
            ram[r.start as usize..r.end as usize].copy_from_slice(&self.structure);
        }
    }

    /// Frames whose bytes differ from what was laid out; with `restore`,
    /// RAM is then laid back to all `PAT`.
    fn changed_frames(&self, restore: bool) -> Vec<u64> {
        let ram = ram_slice();
        let pat = [PAT; FRAME];
        let special = [Some(self.image_range()), self.struct_range()];
        let mut changed = Vec::new();
        for (n, chunk) in ram.chunks_exact_mut(FRAME).enumerate() {
            let frame = (n * FRAME) as u64..((n + 1) * FRAME) as u64;
            let touched = special.iter().flatten().any(|r| overlaps(r, &frame));
            let differs = if touched {
                (frame.start..frame.end)
                    .any(|i| chunk[(i - frame.start) as usize] != self.expected(i))
            } else {
                chunk != pat
            };
            if differs {
                changed.push(frame.start);
            }
            if restore && (differs || touched) {
                chunk.fill(PAT);
            }
        }
        changed
    }

    /// Byte ranges the boot loader handed over, as this target reads the
    /// specification: they must survive init and never be handed out.
    fn protected(&self) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        out.push(self.cfg.kernel_start..self.cfg.kernel_end);
        out.extend(self.struct_range());
        let s = &self.structure;
        match self.kind {
            Kind::Mb1 => {
                let flags = u32_at(s, 0);
                if flags & (1 << 6) != 0 {
                    let at = u64::from(u32_at(s, 48));
                    out.push(at..at + u64::from(u32_at(s, 44)));
                }
                if flags & (1 << 2) != 0 {
                    out.push(self.string(u64::from(u32_at(s, 16))));
                }
                if flags & (1 << 3) != 0 {
                    let (count, at) = (u64::from(u32_at(s, 20)), u64::from(u32_at(s, 24)));
                    out.push(at..at + count * 16);
                    for i in 0..count.min(256) {
                        let e = at + i * 16;
                        let field = |k: u64| u64::from(self.ram_u32(e + k));
                        out.push(field(0)..field(4));
                        out.push(self.string(field(8)));
                    }
                }
            }
            Kind::Mb2 => {
                let mut at = 8usize;
                while at + 8 <= s.len() {
                    let (ty, size) = (u32_at(s, at), u32_at(s, at + 4) as usize);
                    if ty == 0 || size < 8 {
                        break;
                    }
                    if ty == 3 {
                        out.push(u64::from(u32_at(s, at + 8))..u64::from(u32_at(s, at + 12)));
                    }
                    at = (at + size).next_multiple_of(8);
                }
            }
            Kind::Ranges => {}
        }
        out
    }

    /// A u32 of RAM as laid out (0 outside RAM or above the limit).
    fn ram_u32(&self, phys: u64) -> u32 {
        if phys + 4 > self.limit {
            return 0;
        }
        u32::from_le_bytes(std::array::from_fn(|k| self.expected(phys + k as u64)))
    }

    /// The NUL-terminated string at `phys`, as far as it can be read.
    fn string(&self, phys: u64) -> Range<u64> {
        let room = self.limit.saturating_sub(phys).min(MAX_STRING);
        let len = (0..room)
            .position(|k| self.expected(phys + k) == 0)
            .map_or(room.max(1), |k| k as u64 + 1);
        phys..phys + len
    }

    /// The map as the parser reports it (walking `reserved` too).
    fn map(&self, m: &dyn BootMap) -> Map {
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        m.entries(&mut |base, len, usable| {
            let r = base..base.saturating_add(len);
            if usable {
                good.push(r)
            } else {
                bad.push(r)
            }
        });
        m.reserved(&mut |_, _| {});
        (good, bad)
    }

    /// Parses and walks the structure directly, then starts a manager.
    fn init(&self, fm: &mut FrameManager) -> (Result<(), Error>, Option<Map>) {
        let phys = Phys {
            offset: self.cfg.phys_offset,
            limit: self.limit,
        };
        let info = match self.struct_at {
            // SAFETY: inside the RAM buffer.
            Some(at) => unsafe { ram().add(at as usize) }.cast_const(),
            None => self.structure.as_ptr(),
        };
        match self.kind {
            Kind::Mb1 => {
                // SAFETY: `info` holds the fixed part its flags name; physical
                // memory below the limit is the RAM buffer.
                let map = unsafe { Multiboot1::parse(info, phys) }
                    .ok()
                    .map(|m| self.map(&m));
                // SAFETY: as above; the manager owns RAM below the limit.
                (
                    unsafe { fm.init_multiboot(MB1_MAGIC, info, &self.cfg) },
                    map,
                )
            }
            Kind::Mb2 => {
                // SAFETY: `info` holds `total_size` bytes (patched in decode).
                let map = unsafe { Multiboot2::parse(info, phys) }
                    .ok()
                    .map(|m| self.map(&m));
                // SAFETY: as above.
                (
                    unsafe { fm.init_multiboot(MB2_MAGIC, info, &self.cfg) },
                    map,
                )
            }
            Kind::Ranges => {
                let map = self
                    .ranges
                    .iter()
                    .map(|r| r.base..r.base.saturating_add(r.length));
                let map = (map.collect(), Vec::new());
                // SAFETY: the manager owns RAM below the limit.
                (
                    unsafe { fm.init_ranges(&self.ranges, &self.cfg) },
                    Some(map),
                )
            }
        }
    }
}

/// A range handed out must be usable RAM (each frame inside one usable
/// entry, none touching an unusable one), at or above 1 MiB, and clear of
/// everything protected and of the bitmap.
fn assert_fit(r: &Range<u64>, map: &Map, keep: &[Range<u64>], bitmap: &[u64]) {
    assert!(
        r.start >= LOW && r.start.is_multiple_of(FRAME as u64),
        "handed out {r:x?}"
    );
    for f in r.clone().step_by(FRAME) {
        let frame = f..f + FRAME as u64;
        assert!(
            map.0.iter().any(|u| u.start <= f && frame.end <= u.end),
            "frame {f:#x} not inside a usable entry"
        );
        assert!(
            !map.1.iter().any(|u| overlaps(u, &frame)),
            "frame {f:#x} overlaps an unusable entry"
        );
    }
    assert!(
        !keep.iter().any(|k| overlaps(k, r)),
        "{r:x?} overlaps boot-loader data or the kernel"
    );
    assert!(
        !bitmap.iter().any(|&f| overlaps(&(f..f + FRAME as u64), r)),
        "{r:x?} overlaps the bitmap"
    );
}

/// Hands out and takes back frames and a heap span; all must fit.
fn exercise(
    fm: &mut FrameManager,
    case: &Case<'_>,
    map: &Map,
    keep: &[Range<u64>],
    bitmap: &[u64],
) {
    let counts = fm.counts();
    let mut got = Vec::new();
    for _ in 0..8 {
        let Some(f) = fm.alloc() else { break };
        assert_fit(&(f..f + FRAME as u64), map, keep, bitmap);
        assert!(!got.contains(&f), "frame {f:#x} handed out twice");
        got.push(f);
    }
    let run = fm.alloc_contiguous(3, 4 * FRAME as u64, 0);
    if let Some(f) = run {
        assert_eq!(f % (4 * FRAME as u64), 0);
        assert_fit(&(f..f + 3 * FRAME as u64), map, keep, bitmap);
    }
    if let Some((p, len)) = fm.heap_grow(2 * FRAME + 1) {
        let phys = p.as_ptr() as u64 - case.cfg.phys_offset;
        assert_eq!(len, 3 * FRAME);
        assert!(
            phys + len as u64 <= case.limit,
            "heap span above phys_limit"
        );
        assert_fit(&(phys..phys + len as u64), map, keep, bitmap);
        // SAFETY: just returned by heap_grow, unused.
        let released = unsafe { fm.heap_release(p, len) };
        assert!(released, "heap_release refused its own span");
    }
    for &f in &got {
        assert_eq!(fm.free(f), Ok(()));
        assert_eq!(fm.free(f), Err(FrameFault::DoubleFree(f)));
    }
    if let Some(f) = run {
        assert_eq!(fm.free_contiguous(f, 3), Ok(()));
    }
    assert_eq!(fm.counts(), counts, "frames lost");
    assert_eq!(fm.check(), 0, "check() after frees");
}

fuzz_target!(|data: &[u8]| {
    let case = decode(data);
    case.lay_out();
    poison_from(case.limit as usize, true);
    let mut fm = FrameManager::new();
    let (r, map) = case.init(&mut fm);
    poison_from(case.limit as usize, false);
    let written = case.changed_frames(false);
    // MB_DEBUG=1 when replaying an input: what init said and where it wrote.
    if std::env::var_os("MB_DEBUG").is_some() {
        let (first, last) = (written.first(), written.last());
        eprintln!(
            "init {:?}{}: {r:?}; bitmap frames {first:x?}..={last:x?}; protected {:x?}",
            case.kind,
            if case.struct_at.is_some() {
                " in RAM"
            } else {
                ""
            },
            case.protected()
        );
    }
    match r {
        Ok(()) => {
            let map = map.expect("init accepted what parse refused");
            assert_eq!(fm.check(), 0, "check() after init");
            assert!(!written.is_empty(), "no bitmap written");
            let keep = case.protected();
            for &f in &written {
                let frame = f..f + FRAME as u64;
                assert!(
                    f >= LOW && frame.end <= case.limit,
                    "wrote frame {f:#x} outside [1 MiB, limit)"
                );
                assert!(
                    !keep.iter().any(|k| overlaps(k, &frame)),
                    "bitmap frame {f:#x} over boot-loader data or the kernel"
                );
            }
            poison_from(case.limit as usize, true);
            exercise(&mut fm, &case, &map, &keep, &written);
            poison_from(case.limit as usize, false);
        }
        Err(e) => {
            assert!(
                written.is_empty(),
                "failed init ({e:?}) wrote RAM at {:#x}",
                written[0]
            );
            assert!(!fm.is_initialised());
        }
    }
    let after = case.changed_frames(true);
    assert!(
        after.iter().all(|f| written.contains(f)),
        "RAM written outside the bitmap after init"
    );
});
