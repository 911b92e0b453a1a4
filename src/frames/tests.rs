//! Frame manager tests on the host: a page-aligned buffer plays physical
//! RAM from address 0 (`phys_offset` = the buffer's address, `phys_limit`
//! = its length); the memory maps claim more RAM above it, which is
//! tracked and handed out but never touched. Each test owns a local
//! `FrameManager` (tests run in parallel; the global one is shared).

use super::*;
use std::collections::HashSet;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Host memory standing in for physical addresses `0..len`.
struct Ram {
    ptr: *mut u8,
    len: usize,
}

impl Ram {
    fn new(len: u64) -> Self {
        let layout = std::alloc::Layout::from_size_align(len as usize, 4096).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Ram {
            ptr,
            len: len as usize,
        }
    }

    fn put(&mut self, phys: u64, bytes: &[u8]) {
        assert!(phys as usize + bytes.len() <= self.len);
        // SAFETY: in bounds (checked above) of our own allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(phys as usize), bytes.len())
        };
    }

    fn virt(&self, phys: u64) -> *const u8 {
        self.ptr.wrapping_add(phys as usize)
    }

    /// Kernel at 1 MiB..2 MiB+0x123; RAM reachable below the buffer's end.
    fn cfg(&self) -> memshim_boot_config {
        memshim_boot_config {
            kernel_start: MIB,
            kernel_end: 2 * MIB + 0x123,
            phys_offset: self.ptr as u64,
            phys_limit: self.len as u64,
        }
    }
}

impl Drop for Ram {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, 4096).unwrap();
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr, layout) };
    }
}

// ---------------------------------------------------------------------------
// Synthetic Multiboot 1 structures

/// The fixed part of a Multiboot 1 information structure (116 bytes).
#[derive(Default, Clone, Copy)]
struct Mb1 {
    flags: u32,
    mem_lower: u32,
    mem_upper: u32,
    cmdline: u32,
    mods_count: u32,
    mods_addr: u32,
    mmap_length: u32,
    mmap_addr: u32,
}

impl Mb1 {
    fn bytes(&self) -> [u8; 116] {
        let mut b = [0u8; 116];
        let mut put = |at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put(0, self.flags); //        +0  flags: which fields below are valid
        put(4, self.mem_lower); //    +4  mem_lower: KiB of RAM from 0 (bit 0)
        put(8, self.mem_upper); //    +8  mem_upper: KiB of RAM from 1 MiB (bit 0)
        put(12, 0xFFFF_FFFF); //      +12 boot_device (bit 1): ignored
        put(16, self.cmdline); //     +16 cmdline: physical address of a C string (bit 2)
        put(20, self.mods_count); //  +20 mods_count (bit 3)
        put(24, self.mods_addr); //   +24 mods_addr: physical address of the module list
                                 //                            +28 syms[4] (bits 4/5): left zero
        put(44, self.mmap_length); // +44 mmap_length: bytes of memory map (bit 6)
        put(48, self.mmap_addr); //   +48 mmap_addr: physical address of the map
                                 //                            +52 drives, config table, loader name, APM,
                                 //                                VBE, framebuffer: left zero
        b
    }
}

const MB1_MEM: u32 = 1 << 0;
const MB1_CMDLINE: u32 = 1 << 2;
const MB1_MODS: u32 = 1 << 3;
const MB1_MMAP: u32 = 1 << 6;

/// One Multiboot 1 memory-map entry with an explicit `size` field.
fn mb1_entry(size: u32, base: u64, len: u64, ty: u32) -> Vec<u8> {
    let mut e = Vec::new();
    e.extend(size.to_le_bytes()); // +0  size: bytes that follow this field (>= 20)
    e.extend(base.to_le_bytes()); // +4  base_addr
    e.extend(len.to_le_bytes()); //  +12 length
    e.extend(ty.to_le_bytes()); //   +20 type: 1 usable, 2 reserved, 3 ACPI, 4 NVS, 5 bad
    e.resize(4 + size.max(20) as usize, 0); // any extra bytes the size field claims
    e
}

/// A BIOS-style map: low memory, the EBDA/ROM hole, RAM from 1 MiB to
/// 256 MiB, the PCI hole, and 64 MiB above 4 GiB (small, so debug-build
/// tests that take every frame stay fast).
fn bios_map() -> Vec<u8> {
    [
        mb1_entry(20, 0, 0x9_FC00, 1),
        mb1_entry(20, 0x9_FC00, 0x400, 2),
        mb1_entry(20, 0xF_0000, 0x1_0000, 2),
        mb1_entry(20, MIB, 255 * MIB, 1),
        mb1_entry(20, 3 * GIB, GIB, 2),
        mb1_entry(20, 4 * GIB, 64 * MIB, 1),
    ]
    .concat()
}

/// One Multiboot 1 module-list entry.
fn mb1_module(start: u32, end: u32, string: u32) -> Vec<u8> {
    [start, end, string, 0] // mod_start, mod_end, string, reserved
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// Physical layout of the Multiboot 1 fixture, all inside the 8 MiB buffer.
const INFO: u64 = 0x1_0000; // info structure (below 1 MiB, as GRUB puts it)
const MMAP: u64 = 0x1_0100; // memory map
const MODS: u64 = 0x1_0400; // module list
const MODSTR: u64 = 0x1_0500; // module string
const CMDLINE: u64 = 0x1_0600; // command line
const MODULE: (u64, u64) = (3 * MIB, 3 * MIB + 100_000); // module contents

/// An 8 MiB RAM with a full Multiboot 1 structure: bios_map, one module,
/// a command line.
fn mb1_fixture() -> (Ram, Mb1) {
    let mut ram = Ram::new(8 * MIB);
    let map = bios_map();
    ram.put(MMAP, &map);
    ram.put(
        MODS,
        &mb1_module(MODULE.0 as u32, MODULE.1 as u32, MODSTR as u32),
    );
    ram.put(MODSTR, b"initrd\0");
    ram.put(CMDLINE, b"console=ttyS0\0");
    let info = Mb1 {
        flags: MB1_MEM | MB1_CMDLINE | MB1_MODS | MB1_MMAP,
        mem_lower: 639,
        mem_upper: 255 * 1024,
        cmdline: CMDLINE as u32,
        mods_count: 1,
        mods_addr: MODS as u32,
        mmap_length: map.len() as u32,
        mmap_addr: MMAP as u32,
    };
    ram.put(INFO, &info.bytes());
    (ram, info)
}

/// Writes `info` at INFO and starts a manager from it.
fn init_mb1(ram: &mut Ram, info: &Mb1) -> Result<FrameManager, Error> {
    ram.put(INFO, &info.bytes());
    let mut fm = FrameManager::new();
    // SAFETY: the structure lives in `ram`, which outlives `fm` in every test.
    unsafe { fm.init_multiboot(boot::MB1_MAGIC, ram.virt(INFO), &ram.cfg()) }.map(|()| fm)
}

// ---------------------------------------------------------------------------
// Synthetic Multiboot 2 structures

/// A Multiboot 2 structure under construction: 8-byte header, then tags
/// (type, size, payload), each starting 8-byte aligned.
struct Mb2(Vec<u8>);

impl Mb2 {
    fn new() -> Self {
        Mb2(vec![0; 8]) // +0 total_size (set by `end`), +4 reserved
    }

    fn tag(mut self, ty: u32, payload: &[u8]) -> Self {
        self.0.resize(self.0.len().next_multiple_of(8), 0);
        self.0.extend(ty.to_le_bytes()); //                           +0 type
        self.0.extend((8 + payload.len() as u32).to_le_bytes()); //   +4 size (header included, padding not)
        self.0.extend(payload); //                                    +8 payload
        self
    }

    /// Memory-map tag (6): entry_size, entry_version 0, then entries of
    /// base, length, type, reserved, padded to `entry_size`.
    fn mmap(self, entry_size: u32, entries: &[(u64, u64, u32)]) -> Self {
        let mut p = Vec::new();
        p.extend(entry_size.to_le_bytes()); // +8  entry_size
        p.extend(0u32.to_le_bytes()); //       +12 entry_version
        for &(base, len, ty) in entries {
            let start = p.len();
            p.extend(base.to_le_bytes()); //   +0  base_addr
            p.extend(len.to_le_bytes()); //    +8  length
            p.extend(ty.to_le_bytes()); //     +16 type
            p.extend(0u32.to_le_bytes()); //   +20 reserved
            p.resize(start + entry_size as usize, 0);
        }
        self.tag(6, &p)
    }

    /// Module tag (3): mod_start, mod_end, then the NUL-terminated string.
    fn module(self, start: u32, end: u32, name: &str) -> Self {
        let mut p = Vec::new();
        p.extend(start.to_le_bytes());
        p.extend(end.to_le_bytes());
        p.extend(name.as_bytes());
        p.push(0);
        self.tag(3, &p)
    }

    /// Basic memory information tag (4): mem_lower, mem_upper in KiB.
    fn meminfo(self, lower: u32, upper: u32) -> Self {
        let p: Vec<u8> = [lower, upper]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        self.tag(4, &p)
    }

    /// Adds the end tag (type 0, size 8) and sets total_size.
    fn end(self) -> Vec<u8> {
        let mut b = self.tag(0, &[]).0;
        let total = b.len() as u32;
        b[0..4].copy_from_slice(&total.to_le_bytes());
        b
    }
}

const MB2_AT: u64 = 4 * MIB + 0x800; // above 1 MiB, so its reservation shows

fn mb2_entries() -> Vec<(u64, u64, u32)> {
    vec![
        (0, 0x9_FC00, 1),
        (MIB, 255 * MIB, 1),
        (0xF_0000, 0x1_0000, 2),
        (4 * GIB, 512 * MIB, 1),
    ]
}

fn init_mb2(ram: &mut Ram, info: &[u8]) -> Result<FrameManager, Error> {
    ram.put(MB2_AT, info);
    let mut fm = FrameManager::new();
    // SAFETY: the structure lives in `ram`, which outlives `fm`.
    unsafe { fm.init_multiboot(boot::MB2_MAGIC, ram.virt(MB2_AT), &ram.cfg()) }.map(|()| fm)
}

fn init_ranges(ram: &Ram, ranges: &[(u64, u64)]) -> Result<FrameManager, Error> {
    let list: Vec<memshim_range> = ranges
        .iter()
        .map(|&(base, length)| memshim_range { base, length })
        .collect();
    let mut fm = FrameManager::new();
    // SAFETY: `ram` plays the RAM below phys_limit and outlives `fm`.
    unsafe { fm.init_ranges(&list, &ram.cfg()) }.map(|()| fm)
}

/// The bitmap's physical range.
fn bitmap_of(fm: &FrameManager) -> (u64, u64) {
    let t = fm.table.as_ref().unwrap();
    (t.phys, t.phys + t.shape.bytes())
}

/// A xorshift64 generator: the tests' deterministic randomness.
fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// Takes every frame; returns them in order of allocation.
fn drain(fm: &mut FrameManager) -> Vec<u64> {
    std::iter::from_fn(|| fm.alloc()).collect()
}

fn overlaps(f: u64, (s, e): (u64, u64)) -> bool {
    f < e && s < f + FRAME
}

// ---------------------------------------------------------------------------
// Exhaustion: every frame exactly once, none forbidden

#[test]
fn mb1_exhaustion_hands_out_every_frame_once_and_nothing_reserved() {
    let (mut ram, info) = mb1_fixture();
    let mut fm = init_mb1(&mut ram, &info).unwrap();
    let (managed, free) = fm.counts();
    assert_eq!(managed, free);
    let bitmap = bitmap_of(&fm);
    let all = drain(&mut fm);
    assert_eq!(all.len() as u64, managed);
    assert_eq!(fm.counts(), (managed, 0));
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a frame was handed out twice");
    let forbidden = [
        (0, MIB),
        (MIB, 2 * MIB + 0x123), // kernel
        MODULE,
        (INFO, INFO + 116),
        (MMAP, MMAP + bios_map().len() as u64),
        (MODS, MODS + 16),
        (MODSTR, MODSTR + 7),
        (CMDLINE, CMDLINE + 14),
        bitmap,
        (3 * GIB, 4 * GIB), // PCI hole
    ];
    for &f in &all {
        assert_eq!(f % FRAME, 0);
        for r in forbidden {
            assert!(!overlaps(f, r), "frame {f:#x} inside {r:x?}");
        }
        assert!(
            f < 256 * MIB || (4 * GIB..4 * GIB + 64 * MIB).contains(&f),
            "{f:#x}"
        );
    }
    // Everything usable that is not forbidden was handed out.
    let expect = 255 * MIB / FRAME + 64 * MIB / FRAME // RAM from 1 MiB and above 4 GiB
        - ((2 * MIB + 0x123).div_ceil(FRAME) - MIB / FRAME) // kernel
        - 25 // module: 100000 bytes = 24.4 frames
        - (bitmap.1 - bitmap.0).div_ceil(FRAME);
    assert_eq!(managed, expect);
    assert_eq!(fm.check(), 0);
    for &f in all.iter().rev() {
        fm.free(f).unwrap();
    }
    assert_eq!(fm.counts(), (managed, managed));
    assert_eq!(fm.check(), 0);
    assert_eq!(drain(&mut fm).len() as u64, managed, "same count again");
}

#[test]
fn single_frames_prefer_above_16_mib_then_use_the_dma_zone() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 32 * MIB)]).unwrap();
    let all = drain(&mut fm);
    let first_low = all.iter().position(|&f| f < 16 * MIB).unwrap();
    assert!(all[..first_low].iter().all(|&f| f >= 16 * MIB));
    assert_eq!(first_low as u64, 16 * MIB / FRAME);
    assert!(all[first_low..]
        .iter()
        .all(|&f| (MIB..16 * MIB).contains(&f)));
    // Next fit: the hint moves on, and wraps once the top is reached.
    fm.free(8 * MIB).unwrap();
    fm.free(30 * MIB).unwrap();
    fm.free(20 * MIB).unwrap();
    assert_eq!(
        fm.alloc(),
        Some(20 * MIB),
        "wraps above 16 MiB before the DMA zone"
    );
    assert_eq!(fm.alloc(), Some(30 * MIB));
    assert_eq!(fm.alloc(), Some(8 * MIB));
    assert_eq!(fm.alloc(), None);
}

// ---------------------------------------------------------------------------
// Multiboot 1 parsing

#[test]
fn mb1_structures_are_reserved_when_above_1_mib() {
    // Same structure, moved above 1 MiB: the info, map, module list and
    // strings must now be reserved explicitly.
    let mut ram = Ram::new(8 * MIB);
    let base = 5 * MIB;
    let map = bios_map();
    ram.put(base + 0x100, &map);
    ram.put(
        base + 0x2000,
        &mb1_module(MODULE.0 as u32, MODULE.1 as u32, (base + 0x3FFE) as u32),
    );
    ram.put(base + 0x3FFE, b"a name crossing a page\0");
    ram.put(base + 0x5000, b"cmdline\0");
    let info = Mb1 {
        flags: MB1_CMDLINE | MB1_MODS | MB1_MMAP,
        cmdline: (base + 0x5000) as u32,
        mods_count: 1,
        mods_addr: (base + 0x2000) as u32,
        mmap_length: map.len() as u32,
        mmap_addr: (base + 0x100) as u32,
        ..Mb1::default()
    };
    ram.put(base, &info.bytes());
    let mut fm = FrameManager::new();
    // SAFETY: the structure lives in `ram`, which outlives `fm`.
    unsafe { fm.init_multiboot(boot::MB1_MAGIC, ram.virt(base), &ram.cfg()) }.unwrap();
    let all: HashSet<u64> = drain(&mut fm).into_iter().collect();
    for page in [
        base,
        base + 0x2000,
        base + 0x3000,
        base + 0x4000,
        base + 0x5000,
    ] {
        assert!(!all.contains(&page), "{page:#x} handed out");
    }
    assert!(all.contains(&(base + 0x1000)) && all.contains(&(base + 0x6000)));
}

#[test]
fn mb1_bad_magic_null_and_bad_config() {
    let (mut ram, info) = mb1_fixture();
    let mut fm = FrameManager::new();
    let p = ram.virt(INFO);
    let cfg = ram.cfg();
    // SAFETY: every call below reads the structure, which lives in `ram`.
    unsafe {
        assert_eq!(
            fm.init_multiboot(0x1BAD_B002, p, &cfg),
            Err(Error::BadMagic)
        );
        assert_eq!(
            fm.init_multiboot(boot::MB1_MAGIC, core::ptr::null(), &cfg),
            Err(Error::Invalid)
        );
        assert_eq!(
            fm.init_multiboot(boot::MB2_MAGIC, core::ptr::null(), &cfg),
            Err(Error::Invalid)
        );
        let odd = memshim_boot_config {
            phys_offset: cfg.phys_offset + 8,
            ..cfg
        };
        assert_eq!(
            fm.init_multiboot(boot::MB1_MAGIC, p, &odd),
            Err(Error::Invalid)
        );
        let backwards = memshim_boot_config {
            kernel_start: 2 * MIB,
            kernel_end: MIB,
            ..cfg
        };
        assert_eq!(
            fm.init_multiboot(boot::MB1_MAGIC, p, &backwards),
            Err(Error::Invalid)
        );
        let tiny = memshim_boot_config {
            phys_limit: MIB + FRAME,
            ..cfg
        };
        // The map is below the limit, but no room for the bitmap.
        assert_eq!(
            fm.init_multiboot(boot::MB1_MAGIC, p, &tiny),
            Err(Error::NoMemory)
        );
    }
    assert!(!fm.is_initialised());
    let mut fm = init_mb1(&mut ram, &info).unwrap();
    // SAFETY: as above.
    let again = unsafe { fm.init_multiboot(boot::MB1_MAGIC, p, &cfg) };
    assert_eq!(again, Err(Error::Already));
}

/// Starts a manager from the fixture with the info and map edited by
/// `edit`; returns how many frames it hands out.
fn mb1_with(edit: impl FnOnce(&mut Mb1, &mut Vec<u8>)) -> Result<u64, Error> {
    let (mut ram, mut info) = mb1_fixture();
    let mut map = bios_map();
    edit(&mut info, &mut map);
    ram.put(MMAP, &map);
    let mut fm = init_mb1(&mut ram, &info)?;
    assert_eq!(fm.check(), 0);
    Ok(drain(&mut fm).len() as u64)
}

#[test]
fn mb1_malformed_maps_are_refused() {
    // An entry whose size field is below the 20-byte minimum.
    let r = mb1_with(|_, m| m[0..4].copy_from_slice(&16u32.to_le_bytes()));
    assert_eq!(r.err(), Some(Error::BadBootInfo));
    // The last entry's size runs past mmap_length.
    let r = mb1_with(|i, _| i.mmap_length -= 4);
    assert_eq!(r.err(), Some(Error::BadBootInfo));
    // Two stray bytes after the last entry (not even a size field).
    let r = mb1_with(|i, m| {
        m.extend([0, 0]);
        i.mmap_length += 2;
    });
    assert_eq!(r.err(), Some(Error::BadBootInfo));
    // A map larger than 1 MiB.
    let r = mb1_with(|i, _| i.mmap_length = (MIB + 24) as u32);
    assert_eq!(r.err(), Some(Error::BadBootInfo));
    // A map above phys_limit (would be read outside the RAM we may touch).
    let r = mb1_with(|i, _| i.mmap_addr = (8 * MIB - 16) as u32);
    assert_eq!(r.err(), Some(Error::Range));
    // More than 4096 entries.
    let r = mb1_with(|i, m| {
        *m = (0..4097)
            .flat_map(|k| mb1_entry(20, k * MIB, MIB, 1))
            .collect();
        i.mmap_length = m.len() as u32;
    });
    assert_eq!(r.err(), Some(Error::BadBootInfo));
    // Neither a map nor mem_lower/mem_upper.
    let r = mb1_with(|i, _| i.flags = MB1_MODS);
    assert_eq!(r.err(), Some(Error::NoMemoryMap));
    // Module list: too many modules, list above the limit, end before start.
    let r = mb1_with(|i, _| i.mods_count = 257);
    assert_eq!(r.err(), Some(Error::BadBootInfo));
    let r = mb1_with(|i, _| i.mods_addr = (8 * MIB - 8) as u32);
    assert_eq!(r.err(), Some(Error::Range));
    let (mut ram, info) = mb1_fixture();
    ram.put(MODS, &mb1_module(0x30_0000, 0x20_0000, MODSTR as u32));
    assert_eq!(init_mb1(&mut ram, &info).err(), Some(Error::BadBootInfo));
}

#[test]
fn mb1_tolerated_map_quirks() {
    let frames = |r: Result<u64, Error>| r.unwrap();
    let normal = frames(mb1_with(|_, _| {}));
    // Zero-size entries, a zero-length map with flag set (falls back to
    // mem_lower/mem_upper), and unsorted, overlapping entries.
    let r = mb1_with(|i, m| {
        m.extend(mb1_entry(20, 7 * GIB, 0, 1));
        i.mmap_length = m.len() as u32;
    });
    assert_eq!(frames(r), normal);
    let r = mb1_with(|i, m| {
        let mut e: Vec<Vec<u8>> = m.chunks(24).map(<[u8]>::to_vec).collect();
        e.reverse();
        e.push(mb1_entry(20, 100 * MIB, 50 * MIB, 1)); // inside 1..256 MiB
        *m = e.concat();
        i.mmap_length = m.len() as u32;
    });
    assert_eq!(frames(r), normal);
    // Bigger entries (size 28) are walked by their own size field.
    let r = mb1_with(|i, m| {
        *m = m
            .chunks(24)
            .flat_map(|e| {
                let base = u64::from_le_bytes(e[4..12].try_into().unwrap());
                let len = u64::from_le_bytes(e[12..20].try_into().unwrap());
                let ty = u32::from_le_bytes(e[20..24].try_into().unwrap());
                mb1_entry(28, base, len, ty)
            })
            .collect();
        i.mmap_length = m.len() as u32;
    });
    assert_eq!(frames(r), normal);
    let (mut ram, mut info) = mb1_fixture();
    // Map flag clear: mem_upper decides (1 MiB + 64 MiB).
    info.flags = MB1_MEM;
    info.mem_upper = 64 * 1024;
    let mut fm = init_mb1(&mut ram, &info).unwrap();
    let all = drain(&mut fm);
    assert_eq!(all.iter().max(), Some(&(65 * MIB - FRAME)));
    // A reserved entry overlapping a usable one wins.
    let r = mb1_with(|i, m| {
        m.extend(mb1_entry(20, 128 * MIB, 16 * MIB, 2));
        i.mmap_length = m.len() as u32;
    });
    assert_eq!(frames(r), normal - 16 * MIB / FRAME);
    // Entries beyond the 52-bit physical space are clipped, not trusted.
    let r = mb1_with(|i, m| {
        m.extend(mb1_entry(20, (1 << 52) - 2 * FRAME, u64::MAX / 2, 1));
        i.mmap_length = m.len() as u32;
    });
    assert_eq!(
        r.err(),
        Some(Error::NoMemory),
        "the 64 MiB bitmap for 1 TiB does not fit in 8 MiB"
    );
    // No usable RAM above 1 MiB.
    let r = mb1_with(|i, m| {
        *m = mb1_entry(20, 0, 0x9_FC00, 1);
        i.mmap_length = m.len() as u32;
    });
    assert_eq!(r.err(), Some(Error::NoMemory));
}

#[test]
fn frames_above_4_gib_and_above_phys_limit_are_handed_out() {
    let (mut ram, info) = mb1_fixture();
    let mut fm = init_mb1(&mut ram, &info).unwrap();
    let all = drain(&mut fm);
    assert!(all.contains(&(4 * GIB)) && all.contains(&(4 * GIB + 64 * MIB - FRAME)));
    let (_, bitmap_end) = bitmap_of(&fm);
    assert!(bitmap_end <= 8 * MIB, "bitmap must sit below phys_limit");
}

/// An ELF32 section header: name, type, flags, addr, offset, size, link,
/// info, addralign, entsize (40 bytes).
fn shdr32(ty: u32, flags: u32, addr: u32, size: u32) -> Vec<u8> {
    [0, ty, flags, addr, 0, size, 0, 0, 0, 0]
        .iter()
        .flat_map(|v: &u32| v.to_le_bytes())
        .collect()
}

/// An ELF64 section header: name (4), type (4), flags (8), addr (8),
/// offset (8), size (8), link (4), info (4), addralign (8), entsize (8).
fn shdr64(ty: u32, flags: u64, addr: u64, size: u64) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(0u32.to_le_bytes());
    h.extend(ty.to_le_bytes());
    h.extend(flags.to_le_bytes());
    h.extend(addr.to_le_bytes());
    h.extend(0u64.to_le_bytes());
    h.extend(size.to_le_bytes());
    h.resize(64, 0);
    h
}

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_NOBITS: u32 = 8;
const SHF_WRITE_ALLOC: u32 = 3;

/// Physical layout of the "every structure" Multiboot 1 fixture: each one
/// in usable RAM above 1 MiB (page `INFO5 + n * 0x1000` unless noted).
const INFO5: u64 = 5 * MIB;
const SYMTAB: (u64, u64) = (6 * MIB, 6 * MIB + 0x1800); // loaded by the boot loader
const FB: (u64, u64) = (6 * MIB + 0x1_0000, 6 * MIB + 0x1_4000); // 4096-byte pitch x 4 rows
const BSS: u64 = 7 * MIB; // a NOBITS section: part of the kernel image, not reserved here
const TEXT: u64 = 7 * MIB + 0x8000; // an ALLOC section: ditto

/// The fixed part with flags bits 5 (ELF) and 7-12 set, every pointer
/// aimed at a structure in usable RAM; returns the info bytes.
fn mb1_every_structure(ram: &mut Ram) -> [u8; 116] {
    let map = bios_map();
    ram.put(INFO5 + 0x100, &map);
    let table = [
        shdr32(0, 0, 0, 0),
        shdr32(SHT_PROGBITS, 6, TEXT as u32, 0x4000),
        shdr32(SHT_SYMTAB, 0, SYMTAB.0 as u32, 0x1800),
        shdr32(SHT_NOBITS, SHF_WRITE_ALLOC, BSS as u32, 0x4000),
    ]
    .concat();
    ram.put(INFO5 + 0x1000, &table);
    ram.put(INFO5 + 0x2000, &[0x10; 0x30]); // drives: opaque here
    ram.put(INFO5 + 0x3000, &[8, 0, 0xFC, 0, 1, 0x74, 0, 0, 0, 0]); // config: length 8
    ram.put(INFO5 + 0x4FF8, b"GRUB 2.06\0"); // loader name, crossing into 0x5000
    let info = Mb1 {
        flags: MB1_MMAP,
        mmap_length: map.len() as u32,
        mmap_addr: (INFO5 + 0x100) as u32,
        ..Mb1::default()
    };
    let mut b = info.bytes();
    let put =
        |b: &mut [u8; 116], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let flags = MB1_MMAP | 1 << 5 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10 | 1 << 11 | 1 << 12;
    put(&mut b, 0, flags);
    put(&mut b, 28, 4); //                            +28 num: ELF section headers
    put(&mut b, 32, 40); //                           +32 size: each (ELF32)
    put(&mut b, 36, (INFO5 + 0x1000) as u32); //      +36 addr: the header table
    put(&mut b, 40, 0); //                            +40 shndx
    put(&mut b, 52, 0x30); //                         +52 drives_length
    put(&mut b, 56, (INFO5 + 0x2000) as u32); //      +56 drives_addr
    put(&mut b, 60, (INFO5 + 0x3000) as u32); //      +60 config_table
    put(&mut b, 64, (INFO5 + 0x4FF8) as u32); //      +64 boot_loader_name
    put(&mut b, 68, (INFO5 + 0x6000) as u32); //      +68 apm_table (20 bytes)
    put(&mut b, 72, (INFO5 + 0x7000) as u32); //      +72 vbe_control_info (512 bytes)
    put(&mut b, 76, (INFO5 + 0x8000) as u32); //      +76 vbe_mode_info (256 bytes)
    b[88..96].copy_from_slice(&FB.0.to_le_bytes()); // +88 framebuffer_addr
    put(&mut b, 96, 4096); //                         +96 framebuffer_pitch
    put(&mut b, 100, 1024); //                        +100 framebuffer_width
    put(&mut b, 104, 4); //                           +104 framebuffer_height
    b[108] = 8; //                            +108 framebuffer_bpp
    b[109] = 0; //                            +109 framebuffer_type: indexed
    put(&mut b, 110, (INFO5 + 0x9000) as u32); //     +110 framebuffer_palette_addr
    b[114..116].copy_from_slice(&16u16.to_le_bytes()); // +114 num_colors
    b
}

fn init_mb1_at(ram: &mut Ram, at: u64, info: &[u8]) -> Result<FrameManager, Error> {
    ram.put(at, info);
    let mut fm = FrameManager::new();
    // SAFETY: the structure lives in `ram`, which outlives `fm`.
    unsafe { fm.init_multiboot(boot::MB1_MAGIC, ram.virt(at), &ram.cfg()) }.map(|()| fm)
}

/// Item 6 of issue 10: the boot loader name, the ELF section headers and
/// the section they load, the drives, config table, APM table, both VBE
/// blocks, the framebuffer and its palette are all reserved, each placed
/// in usable RAM; the kernel's own sections (ALLOC, NOBITS) are left to
/// `kernel_start..kernel_end`.
#[test]
fn mb1_every_structure_the_flags_name_is_reserved() {
    let mut ram = Ram::new(8 * MIB);
    let info = mb1_every_structure(&mut ram);
    let mut fm = init_mb1_at(&mut ram, INFO5, &info).unwrap();
    let all: HashSet<u64> = drain(&mut fm).into_iter().collect();
    let mut reserved: Vec<u64> = (0..=9).map(|n| INFO5 + n * 0x1000).collect();
    reserved.extend((SYMTAB.0..SYMTAB.1).step_by(FRAME as usize));
    reserved.extend((FB.0..FB.1).step_by(FRAME as usize));
    for page in reserved {
        assert!(!all.contains(&page), "{page:#x} handed out");
    }
    for page in [
        INFO5 + 0xA000,
        SYMTAB.1.next_multiple_of(FRAME),
        FB.1,
        BSS,
        TEXT,
    ] {
        assert!(all.contains(&page), "{page:#x} should be free RAM");
    }
}

#[test]
fn mb1_symbols_and_malformed_structures() {
    let mut ram = Ram::new(8 * MIB);
    let good = mb1_every_structure(&mut ram);
    let with = |edit: &dyn Fn(&mut [u8; 116])| {
        let mut b = good;
        edit(&mut b);
        b
    };
    let put =
        |b: &mut [u8; 116], at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    // a.out symbols (bit 4 instead of 5): size word, table, size word, strings.
    let aout = with(&|b| {
        let flags = u32::from_le_bytes(b[0..4].try_into().unwrap());
        put(b, 0, flags & !(1 << 5) | 1 << 4);
        put(b, 28, 0x1000); // tabsize
        put(b, 32, 0x1FF8); // strsize: 4 + 0x1000 + 4 + 0x1FF8 = 0x3000 bytes
        put(b, 36, (6 * MIB + 0x2_0000) as u32);
    });
    let mut fm = init_mb1_at(&mut ram, INFO5, &aout).unwrap();
    let all: HashSet<u64> = drain(&mut fm).into_iter().collect();
    for page in [0, 0x1000, 0x2000] {
        assert!(!all.contains(&(6 * MIB + 0x2_0000 + page)));
    }
    assert!(all.contains(&(6 * MIB + 0x2_3000)) && all.contains(&SYMTAB.0));
    let refuse = |b: [u8; 116], want: Error, what: &str| {
        let mut ram = Ram::new(8 * MIB);
        mb1_every_structure(&mut ram);
        assert_eq!(init_mb1_at(&mut ram, INFO5, &b).err(), Some(want), "{what}");
    };
    refuse(
        with(&|b| b[0] |= 1 << 4),
        Error::BadBootInfo,
        "bits 4 and 5 together",
    );
    refuse(
        with(&|b| put(b, 32, 48)),
        Error::BadBootInfo,
        "ELF entry size 48",
    );
    refuse(
        with(&|b| put(b, 28, 5000)),
        Error::BadBootInfo,
        "5000 sections",
    );
    refuse(
        with(&|b| put(b, 36, (8 * MIB) as u32)),
        Error::Range,
        "headers above phys_limit",
    );
    refuse(
        with(&|b| put(b, 52, (MIB + 1) as u32)),
        Error::BadBootInfo,
        "drives above 1 MiB long",
    );
    refuse(
        with(&|b| b[88..96].copy_from_slice(&(u64::MAX - 100).to_le_bytes())),
        Error::BadBootInfo,
        "framebuffer wraps",
    );
    refuse(
        with(&|b| put(b, 60, (8 * MIB - 1) as u32)),
        Error::Range,
        "config table above phys_limit",
    );
    // An ELF64 table whose loaded section wraps.
    let mut ram = Ram::new(8 * MIB);
    let b = mb1_every_structure(&mut ram);
    let wraps = [
        shdr64(0, 0, 0, 0),
        shdr64(SHT_SYMTAB, 0, u64::MAX - 0xFFF, 0x2000),
    ]
    .concat();
    ram.put(INFO5 + 0x1000, &wraps);
    let mut b64 = b;
    put(&mut b64, 28, 2);
    put(&mut b64, 32, 64);
    assert_eq!(
        init_mb1_at(&mut ram, INFO5, &b64).err(),
        Some(Error::BadBootInfo)
    );
}

// ---------------------------------------------------------------------------
// Multiboot 2 parsing

#[test]
fn mb2_full_structure() {
    let mut ram = Ram::new(8 * MIB);
    let info = Mb2::new()
        .tag(1, b"console=ttyS0\0") // command line: size 22, the next tag is re-aligned
        .meminfo(639, 255 * 1024)
        .module(MODULE.0 as u32, MODULE.1 as u32, "initrd")
        .mmap(24, &mb2_entries())
        .end();
    let mut fm = init_mb2(&mut ram, &info).unwrap();
    let managed = fm.counts().0;
    let all = drain(&mut fm);
    assert_eq!(all.len() as u64, managed);
    let bitmap = bitmap_of(&fm);
    for &f in &all {
        for r in [(0, MIB), (MIB, 2 * MIB + 0x123), MODULE, bitmap] {
            assert!(!overlaps(f, r), "frame {f:#x} inside {r:x?}");
        }
        assert!(!overlaps(f, (MB2_AT, MB2_AT + info.len() as u64)));
        assert!(f < 256 * MIB || (4 * GIB..4 * GIB + 512 * MIB).contains(&f));
    }
    let expect = 255 * MIB / FRAME + 512 * MIB / FRAME
        - (2 * MIB + 0x123).div_ceil(FRAME) + MIB / FRAME
        - 25
        - 1 // the page holding the structure
        - (bitmap.1 - bitmap.0).div_ceil(FRAME);
    assert_eq!(managed, expect);
    for f in all {
        fm.free(f).unwrap();
    }
    assert_eq!(fm.check(), 0);
    assert_eq!(drain(&mut fm).len() as u64, managed);
}

/// Multiboot 2 tags (type, size, payload) for an ELF64 section table and a
/// framebuffer.
fn mb2_elf(num: u32, entsize: u32, headers: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(num.to_le_bytes()); //     +8  num
    p.extend(entsize.to_le_bytes()); // +12 entsize
    p.extend(0u32.to_le_bytes()); //    +16 shndx
    p.extend(headers); //               +20 the headers
    p
}

fn mb2_framebuffer(addr: u64, pitch: u32, height: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(addr.to_le_bytes()); //    +8  framebuffer_addr
    p.extend(pitch.to_le_bytes()); //   +16 framebuffer_pitch
    p.extend(1024u32.to_le_bytes()); // +20 framebuffer_width
    p.extend(height.to_le_bytes()); //  +24 framebuffer_height
    p.extend([32, 1, 0, 0]); //         +28 bpp, type (RGB), reserved
    p.extend([16, 8, 8, 8, 0, 8]); //   +32 colour info: positions and sizes
    p
}

/// Item 6 for Multiboot 2: the sections an ELF-symbols tag describes as
/// loaded by the boot loader, and the framebuffer, are reserved, placed in
/// usable RAM (the other tags carry their data inside the structure).
#[test]
fn mb2_elf_sections_and_framebuffer_are_reserved() {
    let mut ram = Ram::new(8 * MIB);
    let headers = [
        shdr64(0, 0, 0, 0),
        shdr64(SHT_PROGBITS, 6, TEXT, 0x4000),
        shdr64(SHT_SYMTAB, 0, SYMTAB.0, 0x1800),
        shdr64(SHT_NOBITS, 3, BSS, 0x4000),
    ]
    .concat();
    let info = Mb2::new()
        .mmap(24, &mb2_entries())
        .tag(9, &mb2_elf(4, 64, &headers))
        .tag(8, &mb2_framebuffer(FB.0, 4096, 4))
        .tag(2, b"GRUB 2.06\0")
        .end();
    let mut fm = init_mb2(&mut ram, &info).unwrap();
    let all: HashSet<u64> = drain(&mut fm).into_iter().collect();
    let mut reserved: Vec<u64> = (SYMTAB.0..SYMTAB.1).step_by(FRAME as usize).collect();
    reserved.extend((FB.0..FB.1).step_by(FRAME as usize));
    for page in reserved {
        assert!(!all.contains(&page), "{page:#x} handed out");
    }
    for page in [SYMTAB.1.next_multiple_of(FRAME), FB.1, BSS, TEXT] {
        assert!(all.contains(&page), "{page:#x} should be free RAM");
    }
    let refuse = |tag: (u32, Vec<u8>), what: &str| {
        let mut ram = Ram::new(8 * MIB);
        let info = Mb2::new().mmap(24, &mb2_entries()).tag(tag.0, &tag.1).end();
        assert_eq!(
            init_mb2(&mut ram, &info).err(),
            Some(Error::BadBootInfo),
            "{what}"
        );
    };
    refuse((9, vec![0; 8]), "ELF tag shorter than its head");
    refuse((9, mb2_elf(4, 48, &headers)), "entry size 48");
    refuse(
        (9, mb2_elf(5, 64, &headers)),
        "more headers than the tag holds",
    );
    let wraps = shdr64(SHT_SYMTAB, 0, u64::MAX - 0xFFF, 0x2000);
    refuse((9, mb2_elf(1, 64, &wraps)), "a section that wraps");
    refuse((8, vec![0; 16]), "framebuffer tag too short");
    refuse(
        (8, mb2_framebuffer(u64::MAX - 100, 4096, 4)),
        "framebuffer wraps",
    );
}

#[test]
fn mb2_entry_size_larger_than_an_entry_and_meminfo_fallback() {
    let mut ram = Ram::new(8 * MIB);
    let wide = Mb2::new().mmap(32, &mb2_entries()).end();
    let a = init_mb2(&mut ram, &wide).unwrap().counts();
    let plain = Mb2::new().mmap(24, &mb2_entries()).end();
    let b = init_mb2(&mut ram, &plain).unwrap().counts();
    assert_eq!(a, b);
    let fallback = Mb2::new().meminfo(639, 31 * 1024).end();
    let mut fm = init_mb2(&mut ram, &fallback).unwrap();
    assert_eq!(drain(&mut fm).iter().max(), Some(&(32 * MIB - FRAME)));
}

#[test]
fn mb2_malformed_structures_are_refused() {
    let mut ram = Ram::new(8 * MIB);
    let good = Mb2::new().mmap(24, &mb2_entries()).end();
    let mut check = |bytes: Vec<u8>, want: Error| {
        assert_eq!(init_mb2(&mut ram, &bytes).err(), Some(want), "{bytes:x?}");
    };
    let set = |mut b: Vec<u8>, at: usize, v: u32| {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        b
    };
    // total_size below header + end tag, above 1 MiB.
    check(set(good.clone(), 0, 8), Error::BadBootInfo);
    check(set(good.clone(), 0, (MIB + 8) as u32), Error::BadBootInfo);
    // total_size cuts the end tag off.
    check(
        set(good.clone(), 0, good.len() as u32 - 8),
        Error::BadBootInfo,
    );
    // A tag whose size runs past total_size; a tag smaller than its header.
    check(set(good.clone(), 12, 4096), Error::BadBootInfo);
    check(set(good.clone(), 12, 4), Error::BadBootInfo);
    // entry_size smaller than an entry, not a multiple of 8, not filling the tag.
    check(
        Mb2::new().mmap(20, &mb2_entries()).end(),
        Error::BadBootInfo,
    );
    check(
        Mb2::new().mmap(28, &mb2_entries()).end(),
        Error::BadBootInfo,
    );
    check(set(good.clone(), 12, 16 + 24 * 3 + 8), Error::BadBootInfo);
    // A memory-map tag too short to hold entry_size.
    check(Mb2::new().tag(6, &[24, 0, 0, 0]).end(), Error::BadBootInfo);
    // No memory map and no basic memory information.
    check(Mb2::new().tag(1, b"x\0").end(), Error::NoMemoryMap);
    // Module whose end is below its start; meminfo tag too short.
    let m = Mb2::new()
        .module(0x30_0000, 0x20_0000, "m")
        .mmap(24, &mb2_entries());
    check(m.end(), Error::BadBootInfo);
    check(Mb2::new().tag(4, &[0; 4]).end(), Error::BadBootInfo);
    // More than 4096 entries in all.
    let many: Vec<_> = (0..4097).map(|k| (k * MIB, MIB, 1)).collect();
    check(Mb2::new().mmap(24, &many).end(), Error::BadBootInfo);
}

// ---------------------------------------------------------------------------
// Plain ranges

#[test]
fn plain_ranges_bad_input() {
    let ram = Ram::new(8 * MIB);
    assert_eq!(
        init_ranges(&ram, &[(u64::MAX - 10, 20)]).err(),
        Some(Error::Range)
    );
    assert_eq!(init_ranges(&ram, &[]).err(), Some(Error::NoMemory));
    assert_eq!(init_ranges(&ram, &[(0, MIB)]).err(), Some(Error::NoMemory));
    let many = vec![(0, 0); 4097];
    assert_eq!(init_ranges(&ram, &many).err(), Some(Error::Invalid));
    // Partial pages are dropped: 16 MiB + 1 .. 16 MiB + 4097 holds no frame.
    let fm = init_ranges(&ram, &[(0, 8 * MIB), (16 * MIB + 1, FRAME)]).unwrap();
    // 1..8 MiB, minus the kernel (257 frames) and the bitmap (1 frame).
    assert_eq!(fm.counts().0, 7 * MIB / FRAME - 257 - 1);
}

// ---------------------------------------------------------------------------
// Contiguous runs

#[test]
fn contiguous_alignment_below_and_exhaustion() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    let free0 = fm.counts().1;
    // 2 MiB-aligned runs come from above 16 MiB first.
    let a = fm.alloc_contiguous(512, 2 * MIB, 0).unwrap();
    assert_eq!((a % (2 * MIB), a >= 16 * MIB), (0, true));
    // `below` forces the ISA-DMA zone; the whole run must end below it.
    let d = fm.alloc_contiguous(16, 64 * 1024, 16 * MIB).unwrap();
    assert!(d % (64 * 1024) == 0 && d + 16 * FRAME <= 16 * MIB && d >= MIB);
    let e = fm.alloc_contiguous(3, 0, 12 * MIB + 3 * FRAME).unwrap();
    assert!(e + 3 * FRAME <= 12 * MIB + 3 * FRAME);
    assert_eq!(fm.counts().1, free0 - 512 - 16 - 3);
    assert_eq!(fm.free(a + 8), Err(FrameFault::Misaligned(a + 8)));
    // Impossible: too big, below too low, bad alignment, zero count.
    assert_eq!(fm.alloc_contiguous(64 * 256, 0, 0), None);
    assert_eq!(fm.alloc_contiguous(1, 0, MIB), None);
    assert_eq!(fm.alloc_contiguous(1, 3 * FRAME, 0), None);
    assert_eq!(fm.alloc_contiguous(0, 0, 0), None);
    assert_eq!(fm.alloc_contiguous(usize::MAX, 0, 0), None);
    assert_eq!(fm.alloc_contiguous(1, 1 << 63, 0), None);
    // Fragment memory: every other frame taken; no run of 2 is left.
    let singles = drain(&mut fm);
    for f in singles.iter().step_by(2) {
        fm.free(*f).unwrap();
    }
    assert_eq!(fm.alloc_contiguous(2, 0, 0), None);
    assert!(fm.alloc_contiguous(1, 0, 0).is_some());
    assert_eq!(fm.check(), 0);
}

#[test]
fn contiguous_matches_a_brute_force_search() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 40 * MIB)]).unwrap();
    let mut rand = xorshift(0x1234_5678u64);
    let all = drain(&mut fm);
    for &f in &all {
        if rand() % 3 != 0 {
            fm.free(f).unwrap();
        }
    }
    let free_now = |fm: &FrameManager, f: u64| fm.table.as_ref().unwrap().view().is_free(f);
    for _ in 0..300 {
        let n = 1 + rand() % 6;
        let align = FRAME << (rand() % 4);
        let below = if rand() % 2 == 0 {
            0
        } else {
            (rand() % (40 * MIB)) & !(FRAME - 1)
        };
        let top = if below == 0 { 40 * MIB } else { below } / FRAME;
        let ok = |s: u64| (s..s + n).all(|f| f < top && free_now(&fm, f));
        let a = align / FRAME;
        let high = (HIGH..top).step_by(1).find(|s| s % a == 0 && ok(*s));
        let low = (LOW..HIGH.min(top)).find(|s| s % a == 0 && ok(*s));
        let want = high.or(low).map(|f| f * FRAME);
        let got = fm.alloc_contiguous(n as usize, align, below);
        assert_eq!(got, want, "n={n} align={align:#x} below={below:#x}");
        if let Some(p) = got {
            if rand() % 2 == 0 {
                fm.free_contiguous(p, n as usize).unwrap();
            }
        }
    }
    assert_eq!(fm.check(), 0);
}

#[test]
fn after_random_use_every_frame_is_back_in_one_run() {
    // Single frames and runs of every shape taken and given back in random
    // order (as several CPUs' work interleaves): once everything is back,
    // the books balance and the whole region above 16 MiB is one run again.
    for seed in [
        0x9e37_79b9_7f4a_7c15u64,
        1,
        0xdead_beef,
        0x1234_5678_9abc,
        77,
        4242,
    ] {
        let ram = Ram::new(8 * MIB);
        let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
        let free0 = fm.counts().1;
        let mut rand = xorshift(seed);
        // (address, frames, taken as a run)
        let mut held: Vec<(u64, usize, bool)> = Vec::new();
        for step in 0..20_000 {
            match rand() % 8 {
                0..=2 => {
                    if let Some(f) = fm.alloc() {
                        held.push((f, 1, false));
                    }
                }
                3..=4 => {
                    let n = 1 + (rand() % 64) as usize;
                    let align = FRAME << (rand() % 6);
                    let below = [0, 16 * MIB, 40 * MIB][(rand() % 3) as usize];
                    if let Some(p) = fm.alloc_contiguous(n, align, below) {
                        held.push((p, n, true));
                    }
                }
                _ if !held.is_empty() => {
                    let (p, n, run) = held.swap_remove((rand() % held.len() as u64) as usize);
                    if run {
                        fm.free_contiguous(p, n).unwrap();
                    } else {
                        fm.free(p).unwrap();
                    }
                }
                _ => {}
            }
            if step % 1000 == 0 {
                assert_eq!(fm.check(), 0, "seed {seed:#x} step {step}");
            }
        }
        for (p, n, run) in held.drain(..) {
            if run {
                fm.free_contiguous(p, n).unwrap();
            } else {
                fm.free(p).unwrap();
            }
        }
        assert_eq!(fm.check(), 0);
        assert_eq!(fm.counts().1, free0);
        let above = ((64 - 16) * MIB / FRAME) as usize;
        assert_eq!(fm.alloc_contiguous(above, FRAME, 0), Some(16 * MIB));
        fm.free_contiguous(16 * MIB, above).unwrap();
        assert_eq!(fm.check(), 0);
    }
}

#[test]
fn a_range_change_beside_a_noted_single_frame_keeps_the_run_index_current() {
    // The run index learns of single frames through its queue, which does
    // not note a word again when it was the last one noted. A range change
    // (free_contiguous, heap release, reserve) that did not apply the queue
    // first rebuilt the index from the words as they stood, so a single
    // frame taken, a range changed in the same 256 frames, and the frame
    // given back left the word back at the value its entry recorded: the
    // queue saw no change, and the index kept the frame taken (the whole
    // region above 16 MiB was no longer one run, and check() found 1
    // problem once the queue was applied).
    let above = (16 * MIB / FRAME) as usize;
    // Through free_contiguous: a run of 8 at 16 MiB + 256 KiB beside an
    // all-free word at 16 MiB.
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 32 * MIB)]).unwrap();
    let free0 = fm.counts().1;
    let a = fm.alloc_contiguous(64, FRAME, 0).unwrap();
    let r = fm.alloc_contiguous(8, FRAME, 0).unwrap();
    assert_eq!((a, r), (16 * MIB, 16 * MIB + 64 * FRAME));
    fm.free_contiguous(a, 64).unwrap();
    let f = fm.alloc().unwrap();
    assert_eq!(f, 16 * MIB, "a frame of a word that was all free");
    fm.free_contiguous(r, 8).unwrap();
    fm.free(f).unwrap();
    assert_eq!(fm.check(), 0);
    assert_eq!(fm.counts().1, free0);
    assert_eq!(fm.alloc_contiguous(above, FRAME, 0), Some(16 * MIB));
    assert_eq!(fm.check(), 0);
    fm.free_contiguous(16 * MIB, above).unwrap();
    assert_eq!(fm.check(), 0);

    // Through reserve: a frame taken, a frame 100 above it reserved, the
    // frame given back; runs of 100 and of the rest fit on either side.
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 32 * MIB)]).unwrap();
    let f = fm.alloc().unwrap();
    assert_eq!(f, 16 * MIB);
    fm.reserve(f + 100 * FRAME, FRAME).unwrap();
    fm.free(f).unwrap();
    assert_eq!(fm.check(), 0);
    assert_eq!(fm.alloc_contiguous(100, FRAME, 0), Some(16 * MIB));
    let rest = above - 101;
    assert_eq!(
        fm.alloc_contiguous(rest, FRAME, 0),
        Some(16 * MIB + 101 * FRAME)
    );
    assert_eq!(fm.check(), 0);
}

#[test]
fn a_single_frame_noted_into_a_full_queue_keeps_the_run_index_current() {
    // When a single-frame change finds the run index's queue full, the
    // queue is applied and the word is queued with its value before the
    // change. Applying climbs the 256-frame group of every queued word,
    // reading the words there as they are now: a queued word in the new
    // word's group made the index show the change already, while the new
    // entry recorded the value before it. The next change to that word,
    // back to that value, was not noted (the word was the last one noted)
    // and looked like no change at all.
    let ram = Ram::new(8 * MIB);
    let base = 16 * MIB;

    // A frame taken and given back: the index lost it. 512 frames above
    // 16 MiB (words 64..71), all taken one by one; the queue settled; the
    // last 63 frames of word 64, then the words 65..71 given back (8
    // entries: the queue is full); frame 1 taken (it pushes) and given
    // back (not noted).
    let mut fm = init_ranges(&ram, &[(0, base + 512 * FRAME)]).unwrap();
    for i in 0..512 {
        assert_eq!(fm.alloc(), Some(base + i * FRAME));
    }
    let low = fm.alloc_contiguous(1, FRAME, 0).unwrap();
    fm.free_contiguous(low, 1).unwrap();
    for i in 1..512 {
        fm.free(base + i * FRAME).unwrap();
    }
    let f = fm.alloc().unwrap();
    assert_eq!(f, base + FRAME, "the lowest free frame above 16 MiB");
    fm.free(f).unwrap();
    assert_eq!(fm.check(), 0);
    assert_eq!(fm.alloc_contiguous(511, FRAME, 0), Some(base + FRAME));
    assert_eq!(fm.check(), 0);

    // A frame given back and taken again: the index still showed it free,
    // and a contiguous request handed it out a second time. 640 frames
    // (words 64..74) taken; frame 1 given back and the queue settled; one
    // frame of each of the words 65..72 given back (the queue is full);
    // frame 0 given back (it pushes) and taken again (not noted).
    let mut fm = init_ranges(&ram, &[(0, base + 640 * FRAME)]).unwrap();
    for i in 0..640 {
        assert_eq!(fm.alloc(), Some(base + i * FRAME));
    }
    fm.free(base + FRAME).unwrap();
    let low = fm.alloc_contiguous(1, FRAME, 0).unwrap();
    assert_eq!(low, base + FRAME, "the search settles the queue");
    fm.free_contiguous(low, 1).unwrap();
    for w in 1..=8 {
        fm.free(base + w * 64 * FRAME).unwrap();
    }
    fm.free(base).unwrap();
    assert_eq!(fm.alloc(), Some(base));
    assert_eq!(fm.check(), 0);
    let (_, free) = fm.counts();
    assert_eq!(fm.alloc_contiguous(1, FRAME, 0), Some(base + FRAME));
    assert_eq!(fm.counts().1, free - 1);
    assert_eq!(fm.check(), 0);
}

/// The first longest free run at or above 16 MiB, from the free map frame
/// by frame: (first frame, length).
fn longest_free_above_16_mib(fm: &FrameManager) -> (u64, u64) {
    let b = fm.table.as_ref().unwrap().view();
    let (mut best, mut at, mut cur) = (0u64, 0u64, 0u64);
    for f in HIGH..b.frames() {
        cur = if b.is_free(f) { cur + 1 } else { 0 };
        if cur > best {
            (best, at) = (cur, f + 1 - cur);
        }
    }
    (at, best)
}

/// A search for the longest free run above 16 MiB the map has finds it
/// (and gives it back).
fn assert_longest_run_found(fm: &mut FrameManager, what: &str) {
    let (at, n) = longest_free_above_16_mib(fm);
    if n == 0 {
        return;
    }
    let got = fm.alloc_contiguous(n as usize, FRAME, 0);
    assert_eq!(got, Some(at * FRAME), "{what}: {n} frames");
    fm.free_contiguous(at * FRAME, n as usize).unwrap();
}

/// Searches of several lengths on a copy of the bitmap (the manager left
/// as it is, queue and all) agree with a frame-by-frame search of the map.
fn assert_index_agrees(fm: &FrameManager, what: &str) {
    let t = fm.table.as_ref().unwrap();
    let mut words = t.view().r().to_vec();
    let mut b = Bitmap::new(&mut words[..], &t.shape);
    let frames = b.frames();
    let longest = longest_free_above_16_mib(fm).1;
    for n in [1, 2, 7, 64, 200, longest.saturating_sub(1), longest] {
        if n == 0 {
            continue;
        }
        let got = b.find_run(n, 1, HIGH, frames);
        let want = (HIGH..=frames.saturating_sub(n)).find(|&f| (f..f + n).all(|g| b.is_free(g)));
        assert_eq!(got, want, "{what}: {n} frames");
    }
}

#[test]
fn after_local_use_with_range_frees_every_frame_is_back_in_one_run() {
    // As `after_random_use_every_frame_is_back_in_one_run`, but shaped like
    // a few CPUs working in a few 256-frame groups: frees mostly of what
    // was taken last, runs given back between single frames of the same
    // words, frees scattered enough to fill the run index's queue,
    // reservations, and searches (which apply the queue) only now and
    // then. check() after every step; every 200 steps a search for the
    // longest free run the map has must find it.
    for seed in [0x9e37_79b9_7f4a_7c15u64, 3, 0xfeed, 0x5151_5151, 99, 2024] {
        let ram = Ram::new(8 * MIB);
        let mut fm = init_ranges(&ram, &[(0, 24 * MIB)]).unwrap();
        let mut rand = xorshift(seed);
        let mut reserved = 0u64;
        let mut held: Vec<(u64, usize, bool)> = Vec::new();
        for step in 0..6000 {
            match rand() % 16 {
                0..=5 => {
                    if let Some(f) = fm.alloc() {
                        held.push((f, 1, false));
                    }
                }
                6..=7 => {
                    let n = [2, 8, 8, 30, 64][(rand() % 5) as usize];
                    let align = FRAME << (rand() % 4);
                    let below = [0, 0, 20 * MIB][(rand() % 3) as usize];
                    if let Some(p) = fm.alloc_contiguous(n, align, below) {
                        held.push((p, n, true));
                    }
                }
                8 if reserved < 16 => {
                    let f = 16 * MIB + (rand() % (8 * MIB / FRAME)) * FRAME;
                    if fm.reserve(f, FRAME).is_ok() {
                        reserved += 1;
                    }
                }
                _ if !held.is_empty() => {
                    // Mostly one of the last few taken, now and then any.
                    let i = if rand() % 8 == 0 {
                        (rand() % held.len() as u64) as usize
                    } else {
                        held.len() - 1 - ((rand() % 4) as usize).min(held.len() - 1)
                    };
                    let (p, n, run) = held.remove(i);
                    if run {
                        fm.free_contiguous(p, n).unwrap();
                    } else {
                        fm.free(p).unwrap();
                    }
                }
                _ => {}
            }
            assert_index_agrees(&fm, &format!("step {step}"));
            assert_eq!(fm.check(), 0, "step {step}");
            if step % 200 == 199 {
                assert_longest_run_found(&mut fm, &format!("step {step}"));
            }
        }
        for (p, n, run) in held.drain(..).rev() {
            if run {
                fm.free_contiguous(p, n).unwrap();
            } else {
                fm.free(p).unwrap();
            }
        }
        assert_eq!(fm.check(), 0);
        let (managed, free) = fm.counts();
        assert_eq!(free, managed, "everything back");
        assert_longest_run_found(&mut fm, "at the end");
        assert_eq!(fm.check(), 0);
    }
}

// ---------------------------------------------------------------------------
// Misuse

#[test]
fn double_free_reserved_and_untracked_frames_are_faults() {
    let ram = Ram::new(8 * MIB);
    let mut fm = FrameManager::new();
    assert_eq!(fm.free(2 * MIB), Err(FrameFault::NotInitialised(2 * MIB)));
    assert_eq!(fm.reserve(2 * MIB, 1), Err(Error::NotInitialised));
    assert_eq!(fm.alloc(), None);
    let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    let f = fm.alloc().unwrap();
    fm.free(f).unwrap();
    assert_eq!(fm.free(f), Err(FrameFault::DoubleFree(f)));
    assert_eq!(fm.free(MIB), Err(FrameFault::Reserved(MIB)), "kernel frame");
    assert_eq!(
        fm.free(0x1000),
        Err(FrameFault::Reserved(0x1000)),
        "below 1 MiB"
    );
    assert_eq!(fm.free(64 * MIB), Err(FrameFault::NotTracked(64 * MIB)));
    assert_eq!(fm.free(!0xFFF), Err(FrameFault::NotTracked(!0xFFF)));
    // Contiguous: one free frame in the middle → nothing is freed. (Single
    // frames come next-fit, so eight in a row are adjacent.)
    let run = fm.alloc().unwrap();
    for i in 1..8 {
        assert_eq!(fm.alloc(), Some(run + i * FRAME));
    }
    fm.free(run + 3 * FRAME).unwrap();
    let before = fm.counts();
    assert_eq!(
        fm.free_contiguous(run, 8),
        Err(FrameFault::DoubleFree(run + 3 * FRAME))
    );
    assert_eq!(fm.counts(), before);
    assert_eq!(
        fm.free_contiguous(run, usize::MAX),
        Err(FrameFault::NotTracked(run))
    );
    assert_eq!(fm.free_contiguous(run, 0), Ok(()));
    assert_eq!(fm.check(), 0);
    let msg = format!("{}", FrameFault::DoubleFree(0x1234_5000));
    assert!(msg.contains("double free") && msg.contains("0x12345000"));
}

/// Item 5 of issue 10: a contiguous run is freed whole or not at all. A
/// single free of any of its frames, or a contiguous free that starts or
/// ends inside it, is a fault naming the address and the run, and changes
/// nothing; the run can still be freed afterwards.
#[test]
fn freeing_part_of_a_contiguous_run_is_refused() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    let free0 = fm.counts().1;
    let run = fm.alloc_contiguous(512, 2 * MIB, 0).unwrap();
    let split = |at| FrameFault::Split {
        at,
        start: run,
        frames: 512,
    };
    let before = fm.counts();
    for at in [run, run + FRAME, run + 5 * FRAME, run + 511 * FRAME] {
        assert_eq!(fm.free(at), Err(split(at)));
    }
    assert_eq!(fm.free_contiguous(run, 256), Err(split(run)), "ends inside");
    let mid = run + 256 * FRAME;
    assert_eq!(
        fm.free_contiguous(mid, 256),
        Err(split(mid)),
        "starts inside"
    );
    assert_eq!(
        fm.free_contiguous(run + FRAME, 511),
        Err(split(run + FRAME))
    );
    assert_eq!(fm.counts(), before, "nothing was freed");
    assert_eq!(fm.check(), 0);
    let msg = format!("{}", split(run + 5 * FRAME));
    assert!(
        msg.contains("split the contiguous run of 512 frames")
            && msg.contains(&format!("{:#x}", run + 5 * FRAME))
            && msg.contains(&format!("memshim_frame_free_contiguous({run:#x}, 512)")),
        "{msg}"
    );
    // The whole run, and a run of one like any single frame.
    fm.free_contiguous(run, 512).unwrap();
    let one = fm.alloc_contiguous(1, 0, 0).unwrap();
    fm.free(one).unwrap();
    assert_eq!(fm.counts().1, free0);
    // Whole allocations side by side may go back in one call: two runs,
    // then a run and the single frames after it.
    let a = fm.alloc_contiguous(3, 0, 0).unwrap();
    let b = fm.alloc_contiguous(5, 0, 0).unwrap();
    assert_eq!(b, a + 3 * FRAME);
    fm.free_contiguous(a, 8).unwrap();
    let r = fm.alloc_contiguous(4, 0, 0).unwrap();
    assert_eq!(fm.alloc(), Some(r + 4 * FRAME), "next fit follows the run");
    fm.free_contiguous(r, 5).unwrap();
    assert_eq!(fm.counts().1, free0);
    assert_eq!(fm.check(), 0);
}

#[test]
fn check_finds_a_stray_continues_mark() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    let f = fm.alloc().unwrap() / FRAME;
    let t = fm.table.as_mut().unwrap();
    let mut b = t.view_mut();
    b.set_run(f, f + 2, true); // frame f + 1 is free: it cannot continue f
    assert!(fm.check() >= 1);
}

#[test]
fn check_finds_a_corrupted_bitmap() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    assert_eq!(fm.check(), 0);
    let w = fm.table.as_ref().unwrap().words.as_ptr();
    // SAFETY: word 100 of level 0 (frames 6400..6464, free) is in the bitmap.
    unsafe { *w.add(100) ^= 0b101 };
    assert!(fm.check() >= 1);
    // SAFETY: restore it.
    unsafe { *w.add(100) ^= 0b101 };
    assert_eq!(fm.check(), 0);
    fm.free += 1;
    assert_eq!(fm.check(), 1);
}

#[test]
fn reserve_takes_frames_out_of_use() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    let (m0, f0) = fm.counts();
    // A framebuffer-like range outside RAM: accepted, changes nothing.
    assert_eq!(fm.reserve(0xFD00_0000, 8 * MIB), Ok(()));
    // ACPI-like range at an odd address: widened to whole frames.
    assert_eq!(fm.reserve(40 * MIB + 0x10, 2 * FRAME), Ok(()));
    assert_eq!(fm.counts(), (m0 - 3, f0 - 3));
    // Reserving again, or over already reserved frames, is fine.
    assert_eq!(fm.reserve(40 * MIB, FRAME), Ok(()));
    assert_eq!(fm.reserve(MIB, 4 * FRAME), Ok(()));
    assert_eq!(fm.counts(), (m0 - 3, f0 - 3));
    let f = fm.alloc().unwrap();
    assert_eq!(fm.reserve(f, 1), Err(Error::Overlap));
    assert_eq!(fm.reserve(f, 0), Err(Error::Invalid));
    assert_eq!(fm.reserve(u64::MAX - 5, 10), Err(Error::Range));
    assert!(!drain(&mut fm)
        .iter()
        .any(|&g| (40 * MIB..40 * MIB + 3 * FRAME).contains(&g)));
    assert_eq!(fm.free(40 * MIB), Err(FrameFault::Reserved(40 * MIB)));
    assert_eq!(fm.check(), 0);
}

// ---------------------------------------------------------------------------
// Heap growth

#[test]
fn heap_grows_below_phys_limit_and_gives_back() {
    let ram = Ram::new(8 * MIB);
    // 1 GiB of RAM, only the first 8 MiB reachable.
    let mut fm = init_ranges(&ram, &[(0, GIB)]).unwrap();
    let free0 = fm.counts().1;
    let (p, len) = fm.heap_grow(3 * FRAME as usize + 1).unwrap();
    assert_eq!(len, 4 * FRAME as usize);
    let phys = p.as_ptr() as u64 - ram.ptr as u64;
    assert!(phys >= MIB && phys + len as u64 <= 8 * MIB);
    // SAFETY: the span is inside `ram`; writing proves it is real memory.
    unsafe { std::ptr::write_bytes(p.as_ptr(), 0xAB, len) };
    assert_eq!(fm.heap_grow(0), None);
    assert_eq!(
        fm.heap_grow(8 * MIB as usize),
        None,
        "more than lies below the limit"
    );
    assert_eq!(fm.heap_grow(usize::MAX), None);
    // Exhaust what is below the limit: single frames above stay available.
    let mut spans = vec![(p, len)];
    while let Some(s) = fm.heap_grow(64 * 1024) {
        spans.push(s);
    }
    assert!(spans
        .iter()
        .all(|(q, l)| q.as_ptr() as u64 + *l as u64 <= ram.ptr as u64 + 8 * MIB));
    assert!(fm.alloc().is_some_and(|f| f >= 8 * MIB));
    // SAFETY: a span that never came from heap_grow is refused untouched.
    unsafe {
        let bogus = NonNull::new(ram.ptr.add(MIB as usize)).unwrap();
        assert!(!fm.heap_release(bogus, FRAME as usize));
        assert!(!fm.heap_release(p, 3));
    }
    for (q, l) in spans {
        // SAFETY: each span came from heap_grow and is unused.
        assert!(unsafe { fm.heap_release(q, l) });
    }
    assert_eq!(fm.counts().1, free0 - 1);
    assert_eq!(fm.check(), 0);
    assert!(FrameManager::new().heap_grow(4096).is_none());
}

#[test]
fn heap_release_takes_the_end_of_a_heap_run() {
    // The heap keeps a span's first pages for good when its metadata had
    // to go there (no other memory for it); the rest must still go back.
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 8 * MIB)]).unwrap();
    let free0 = fm.counts().1;
    let (p, len) = fm.heap_grow(8 * FRAME as usize).unwrap();
    let f = FRAME as usize;
    // SAFETY: `p..p+len` came from heap_grow; the tail is unused.
    unsafe {
        // Not a range whose end is inside the run.
        assert!(!fm.heap_release(p.byte_add(2 * f), len - 3 * f));
        assert_eq!(fm.counts().1, free0 - 8);
        assert!(fm.heap_release(p.byte_add(2 * f), len - 2 * f));
    }
    assert_eq!(fm.counts().1, free0 - 2);
    assert_eq!(fm.check(), 0);
    // The front is a run of its own: freed whole, it goes back too.
    let phys = p.as_ptr() as u64 - ram.ptr as u64;
    assert!(fm.free_contiguous(phys, 2).is_ok());
    assert_eq!(fm.counts().1, free0);
    assert_eq!(fm.check(), 0);
}

#[test]
fn dump_reports_state() {
    let ram = Ram::new(8 * MIB);
    let mut text = String::new();
    FrameManager::new().dump(&mut text).unwrap();
    assert!(text.contains("not initialised"));
    let fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    text.clear();
    fm.dump(&mut text).unwrap();
    assert!(
        text.contains("free") && text.contains("bitmap at phys"),
        "{text}"
    );
}

// ---------------------------------------------------------------------------
// Worst-case boot information: placing the bitmap stays near-linear

/// Counts the walks the frame manager makes over a map.
struct Counted<'m> {
    map: &'m dyn BootMap,
    walks: std::cell::Cell<usize>,
}

impl BootMap for Counted<'_> {
    fn entries(&self, f: &mut dyn FnMut(u64, u64, bool)) {
        self.walks.set(self.walks.get() + 1);
        self.map.entries(f)
    }
    fn reserved(&self, f: &mut dyn FnMut(u64, u64)) {
        self.walks.set(self.walks.get() + 1);
        self.map.reserved(f)
    }
}

/// Starts `fm` from `map` and returns how many times the map was walked.
fn walks_to_init(fm: &mut FrameManager, map: &dyn BootMap, cfg: &memshim_boot_config) -> usize {
    let counted = Counted {
        map,
        walks: std::cell::Cell::new(0),
    };
    fm.init(&counted, cfg).unwrap();
    counted.walks.get()
}

/// 4093 one-frame usable entries from 16 MiB, below `phys_limit` (each a
/// failed candidate: too small for the 4 MiB bitmap that RAM at 64 GiB
/// needs), and RAM 1..12 MiB where the bitmap fits.
fn scattered_entries() -> Vec<(u64, u64, u32)> {
    let mut e = vec![(0, 0x9_FC00, 1), (MIB, 11 * MIB, 1), (64 * GIB, MIB, 1)];
    e.extend((0..4093).map(|k| (16 * MIB + k * 2 * FRAME, FRAME, 1)));
    e
}

#[test]
fn mb1_worst_case_places_the_bitmap_in_few_walks() {
    // 256 modules whose names have no NUL within the 4 KiB read limit.
    let mut ram = Ram::new(64 * MIB);
    let (mmap, mods, name) = (0x2_0000, 0x4_0000, 0x5_0000);
    let map: Vec<u8> = scattered_entries()
        .iter()
        .flat_map(|&(b, l, t)| mb1_entry(20, b, l, t))
        .collect();
    ram.put(mmap, &map);
    let list: Vec<u8> = (0..256)
        .flat_map(|k| {
            mb1_module(
                (3 * MIB + k * FRAME) as u32,
                (3 * MIB + k * FRAME + 10) as u32,
                name as u32,
            )
        })
        .collect();
    ram.put(mods, &list);
    ram.put(name, &[b'a'; 8192]);
    let info = Mb1 {
        flags: MB1_MODS | MB1_MMAP,
        mods_count: 256,
        mods_addr: mods as u32,
        mmap_length: map.len() as u32,
        mmap_addr: mmap as u32,
        ..Mb1::default()
    };
    ram.put(INFO, &info.bytes());
    let cfg = ram.cfg();
    // SAFETY: the structure lives in `ram`, which outlives the parse.
    let mb1 = unsafe { Multiboot1::parse(ram.virt(INFO), phys_of(&cfg).unwrap()) }.unwrap();
    let mut fm = FrameManager::new();
    let walks = walks_to_init(&mut fm, &mb1, &cfg);
    assert!(walks < 300, "{walks} walks over the map");
    let (at, end) = bitmap_of(&fm);
    assert!(at >= 3 * MIB + 256 * FRAME && end <= 12 * MIB, "{at:#x}");
    assert!(!overlaps(at, (name, name + 4096)));
    assert_eq!(fm.check(), 0);
}

#[test]
fn mb2_worst_case_places_the_bitmap_in_few_walks() {
    let mut ram = Ram::new(64 * MIB);
    let mut info = Mb2::new().mmap(24, &scattered_entries());
    for k in 0..256 {
        let start = (3 * MIB + k * FRAME) as u32;
        info = info.module(start, start + 10, "m");
    }
    let info = info.end();
    ram.put(MB2_AT, &info);
    let cfg = ram.cfg();
    // SAFETY: the structure lives in `ram`, which outlives the parse.
    let mb2 = unsafe { Multiboot2::parse(ram.virt(MB2_AT), phys_of(&cfg).unwrap()) }.unwrap();
    let mut fm = FrameManager::new();
    let walks = walks_to_init(&mut fm, &mb2, &cfg);
    assert!(walks < 300, "{walks} walks over the map");
    assert_eq!(fm.check(), 0);
}

#[test]
fn mb2_tag_flood_is_refused() {
    // Nearly 1 MiB of 8-byte tags of an unknown type after a valid map.
    let mut ram = Ram::new(8 * MIB);
    let mut info = Mb2::new().mmap(24, &mb2_entries());
    while info.0.len() < (MIB - 64) as usize {
        info = info.tag(0x55, &[]);
    }
    let info = info.end();
    assert_eq!(init_mb2(&mut ram, &info).err(), Some(Error::BadBootInfo));
    // Module tags are capped like Multiboot 1's module list.
    let mut info = Mb2::new().mmap(24, &mb2_entries());
    for _ in 0..=boot::MAX_MODULES {
        info = info.module(0x30_0000, 0x30_0010, "m");
    }
    assert_eq!(
        init_mb2(&mut ram, &info.end()).err(),
        Some(Error::BadBootInfo)
    );
}

#[test]
fn bitmap_spans_adjacent_and_overlapping_usable_entries() {
    // RAM at 31 GiB needs a ~2 MiB bitmap; 1..13 MiB holds it only as a
    // whole, and raw UEFI/e820 maps give such RAM as many pieces.
    let ram = Ram::new(16 * MIB);
    let far = (31 * GIB, GIB);
    let whole = init_ranges(&ram, &[(MIB, 12 * MIB), far]).unwrap();
    let mut pieces: Vec<(u64, u64)> = (1..13).map(|k| (k * MIB, MIB)).collect();
    pieces.push(far);
    let fm = init_ranges(&ram, &pieces).unwrap();
    assert_eq!(fm.counts(), whole.counts());
    assert_eq!(bitmap_of(&fm), bitmap_of(&whole));
    // Reversed, overlapping, and split inside a frame: still one region
    // for the bitmap; the frame holding the unaligned seam is in neither
    // piece whole, so it is not handed out.
    pieces.reverse();
    pieces.push((5 * MIB + 0x800, 2 * MIB));
    pieces[3] = (10 * MIB + 0x800, MIB - 0x800);
    pieces[4].1 += 0x800;
    let mut fm = init_ranges(&ram, &pieces).unwrap();
    let (managed, free) = whole.counts();
    assert_eq!(fm.counts(), (managed - 1, free - 1));
    assert_eq!(fm.check(), 0);
    let (at, end) = bitmap_of(&fm);
    assert!(
        at >= 2 * MIB + 0x123 && end <= 13 * MIB,
        "{at:#x}..{end:#x}"
    );
    assert!(drain(&mut fm).iter().all(|&f| !overlaps(f, (at, end))));
}

#[test]
fn ram_above_1_tib_is_ignored() {
    // A "usable" entry of nearly 2^52 bytes: only the first 1 TiB is
    // tracked, so the bitmap block is about 113 MiB (3.5 bits a frame),
    // not 448 GiB.
    let ram = Ram::new(128 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 128 * MIB), (2 * GIB, (1 << 52) - 4 * GIB)]).unwrap();
    let (at, end) = bitmap_of(&fm);
    assert_eq!(
        fm.table.as_ref().unwrap().shape.frames(),
        MAX_TRACKED / FRAME
    );
    assert!(
        end - at < 114 * MIB && end <= 128 * MIB,
        "{at:#x}..{end:#x}"
    );
    let last = MAX_TRACKED - FRAME;
    assert_eq!(
        fm.alloc_contiguous(1, 0, 0),
        Some(end.next_multiple_of(FRAME))
    );
    let f = fm.alloc_contiguous(1, MAX_TRACKED / 2, 0).unwrap();
    assert_eq!(f, MAX_TRACKED / 2);
    assert_eq!(
        fm.free(last + FRAME),
        Err(FrameFault::NotTracked(last + FRAME))
    );
    fm.free(f).unwrap();
    assert_eq!(fm.check(), 0);
}

#[test]
fn heap_runs_are_not_capped_and_bad_releases_are_refused() {
    let ram = Ram::new(8 * MIB);
    let mut fm = init_ranges(&ram, &[(0, 64 * MIB)]).unwrap();
    let run = 2 * FRAME as usize;
    // The heap keeps its own record: the frame manager hands out runs
    // while frames last (more than the old 128-run table held).
    let spans: Vec<_> = std::iter::from_fn(|| fm.heap_grow(run)).collect();
    assert!(spans.len() > 128, "{} runs", spans.len());
    let (p, len) = spans[7];
    let before = fm.counts();
    // SAFETY: none of these is a run of allocated frames: refused untouched.
    unsafe {
        assert!(!fm.heap_release(p, 3), "not whole frames");
        assert!(
            !fm.heap_release(NonNull::new(ram.ptr).unwrap(), FRAME as usize),
            "reserved"
        );
        assert_eq!(fm.counts(), before);
        // SAFETY: the span came from heap_grow and is unused.
        assert!(fm.heap_release(p, len));
        assert!(!fm.heap_release(p, len), "released twice");
    }
    assert!(fm.heap_grow(run).is_some());
    assert_eq!(fm.check(), 0);
}

// ---------------------------------------------------------------------------
// The boot config is validated like the boot information

/// A manager from `ranges` with the kernel at `kernel` and `phys_limit`
/// `limit` (the rest of `ram.cfg()`).
fn init_with(
    ram: &Ram,
    ranges: &[(u64, u64)],
    kernel: (u64, u64),
    limit: u64,
) -> Result<FrameManager, Error> {
    let list: Vec<memshim_range> = ranges
        .iter()
        .map(|&(base, length)| memshim_range { base, length })
        .collect();
    let cfg = memshim_boot_config {
        kernel_start: kernel.0,
        kernel_end: kernel.1,
        phys_limit: limit,
        ..ram.cfg()
    };
    let mut fm = FrameManager::new();
    // SAFETY: `ram` plays the RAM below phys_limit and outlives `fm`.
    unsafe { fm.init_ranges(&list, &cfg) }.map(|()| fm)
}

#[test]
fn kernel_range_above_ram_is_refused() {
    let ram = Ram::new(16 * MIB);
    let ranges = [(0, 0x9_F000), (MIB, 255 * MIB)];
    // A higher-half kernel's linked (virtual) addresses.
    let high = (0xFFFF_FFFF_8010_0000, 0xFFFF_FFFF_8023_F000);
    assert_eq!(
        init_with(&ram, &ranges, high, 16 * MIB).err(),
        Some(Error::KernelRange)
    );
    // Just past the highest usable byte.
    assert_eq!(
        init_with(&ram, &ranges, (255 * MIB, 256 * MIB + 1), 16 * MIB).err(),
        Some(Error::KernelRange)
    );
    // The last byte of RAM is fine.
    assert!(init_with(&ram, &ranges, (255 * MIB, 256 * MIB), 16 * MIB).is_ok());
    assert_eq!(Error::KernelRange.code(), crate::error::MEMSHIM_EKERNEL);
}

#[test]
fn kernel_range_outside_usable_ram_is_refused() {
    let ram = Ram::new(16 * MIB);
    let ranges = [(0, 0x9_F000), (MIB, 62 * MIB), (64 * MIB, 64 * MIB)]; // a hole at 63..64 MiB
                                                                         // In the hole between two usable ranges, or across it.
    for kernel in [
        (63 * MIB, 64 * MIB),
        (62 * MIB, 65 * MIB),
        (0xA_0000, 0x10_0000),
    ] {
        assert_eq!(
            init_with(&ram, &ranges, kernel, 16 * MIB).err(),
            Some(Error::KernelRange),
            "kernel at {kernel:x?}"
        );
    }
    // Touching usable ranges count as one region.
    let touching = [(MIB, 3 * MIB), (4 * MIB, 60 * MIB), (3 * MIB, MIB)];
    assert!(init_with(&ram, &touching, (2 * MIB, 5 * MIB), 16 * MIB).is_ok());
    // An empty range reserves nothing and is accepted anywhere (0..0:
    // a loader whose usable list already leaves the kernel out).
    assert!(init_with(&ram, &ranges, (0, 0), 16 * MIB).is_ok());
}

#[test]
fn a_refused_kernel_range_writes_nothing() {
    let mut ram = Ram::new(16 * MIB);
    ram.put(0, &vec![0x5A; 16 * MIB as usize]);
    let r = init_with(
        &ram,
        &[(MIB, 255 * MIB)],
        (4 * GIB, 4 * GIB + MIB),
        16 * MIB,
    );
    assert_eq!(r.err(), Some(Error::KernelRange));
    // SAFETY: `ram` is 16 MiB of our own memory.
    let bytes = unsafe { std::slice::from_raw_parts(ram.ptr, ram.len) };
    assert!(bytes.iter().all(|&b| b == 0x5A));
}

#[test]
fn kernel_range_in_multiboot_maps_is_checked_too() {
    let (mut ram, info) = mb1_fixture();
    ram.put(INFO, &info.bytes());
    let cfg = memshim_boot_config {
        kernel_start: 0xFFFF_FFFF_8010_0000,
        kernel_end: 0xFFFF_FFFF_8020_0000,
        ..ram.cfg()
    };
    let mut fm = FrameManager::new();
    // SAFETY: the structure lives in `ram`, which outlives `fm`.
    let r = unsafe { fm.init_multiboot(boot::MB1_MAGIC, ram.virt(INFO), &cfg) };
    assert_eq!(r, Err(Error::KernelRange));
    assert!(!fm.is_initialised());
    let mut fm = FrameManager::new();
    let mb2 = Mb2::new().mmap(24, &mb2_entries()).end();
    ram.put(MB2_AT, &mb2);
    // SAFETY: as above.
    let r = unsafe { fm.init_multiboot(boot::MB2_MAGIC, ram.virt(MB2_AT), &cfg) };
    assert_eq!(r, Err(Error::KernelRange));
}

#[test]
fn phys_limit_beyond_ram_is_clamped_to_its_end() {
    let ram = Ram::new(16 * MIB);
    let mut text = String::new();
    // 16 MiB of RAM (all reachable) and a limit of 16 GiB: stored as 16 MiB.
    let fm = init_with(&ram, &[(MIB, 15 * MIB)], (MIB, 2 * MIB), 16 * GIB).unwrap();
    assert_eq!(fm.phys.limit, 16 * MIB);
    fm.dump(&mut text).unwrap();
    assert!(text.contains("phys_limit 0x1000000"), "{text}");
    assert_eq!(fm.virt_of(16 * MIB), None, "nothing above the end of RAM");
    assert!(fm.virt_of(16 * MIB - FRAME).is_some());
    // 0 (no limit) is clamped the same way.
    let fm = init_with(&ram, &[(MIB, 15 * MIB)], (MIB, 2 * MIB), 0).unwrap();
    assert_eq!(fm.phys.limit, 16 * MIB);
    // A limit below the end of RAM stays as given.
    let fm = init_with(&ram, &[(MIB, 255 * MIB)], (MIB, 2 * MIB), 16 * MIB).unwrap();
    assert_eq!(fm.phys.limit, 16 * MIB);
}
