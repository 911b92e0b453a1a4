//! Boot memory descriptions: Multiboot 1, Multiboot 2 and plain range
//! lists, all treated as untrusted input.
//!
//! Each parser validates the whole structure once (every length against
//! the bytes that hold it, every entry size, every count against a cap)
//! and returns a view that the frame manager then walks as often as it
//! likes through [`BootMap`]; the walks repeat the validated arithmetic
//! and can no longer fail. Nothing is read outside the structure: the
//! Multiboot 2 structure is one block of `total_size` bytes; the Multiboot 1
//! fixed part is 52 bytes (up to `mmap_addr`), 88 when flags bits 7-11 say
//! the drive, config-table, loader-name, APM or VBE fields exist, 116 with
//! the framebuffer (bit 12); its memory map, module list, strings, ELF
//! section headers and config-table length are read through `phys_offset`,
//! below `phys_limit` only.
//!
//! Every structure the flags (or tags) say exists is reserved: besides the
//! map, modules and strings, the Multiboot 1 a.out symbol table (bit 4),
//! ELF section headers (bit 5), drives (7), ROM config table (8), boot
//! loader name (9), APM table (10), VBE controller and mode info (11) and
//! framebuffer with its palette (12); for Multiboot 2 (whose other tags
//! carry their data inline) the framebuffer (tag 8). The ELF section
//! headers of either also reserve the sections the boot loader loaded
//! that are not part of the kernel image (not `SHF_ALLOC`: the symbol and
//! string tables), at their `sh_addr`.

use crate::error::Error;
use crate::types::memshim_range;

/// Multiboot 1 magic (EAX at entry).
pub(crate) const MB1_MAGIC: u32 = 0x2BAD_B002;
/// Multiboot 2 magic (EAX at entry).
pub(crate) const MB2_MAGIC: u32 = 0x36D7_6289;
/// Below this (1 MiB) everything is reserved whatever the boot info says.
const LOW_RESERVED: u64 = 1 << 20;

/// More memory-map entries than this are refused: placing the bitmap walks
/// the map once per 64 distinct ranges, and real maps have tens to hundreds.
pub(crate) const MAX_ENTRIES: usize = 4096;
/// More modules than this (Multiboot 1 list entries or Multiboot 2 module
/// tags) are refused.
pub(crate) const MAX_MODULES: usize = 256;
/// More Multiboot 2 tags than this are refused: the structure is walked
/// again for every batch of ranges placing the bitmap, and GRUB writes
/// about twenty tags besides the modules.
pub(crate) const MAX_TAGS: usize = 1024;
/// Largest Multiboot 2 structure or Multiboot 1 memory map accepted.
pub(crate) const MAX_INFO_BYTES: u64 = 1 << 20;
/// Longest string (module name, command line) read to find its end.
const MAX_STRING: u64 = 4096;
/// More ELF section headers than this are refused.
pub(crate) const MAX_SECTIONS: usize = 4096;

/// A validated memory description, walked as often as needed.
pub trait BootMap {
    /// Calls `f(base, length, usable)` for every memory-map entry, as given
    /// (possibly zero-sized, overlapping, unsorted or above 4 GiB).
    fn entries(&self, f: &mut dyn FnMut(u64, u64, bool));
    /// Calls `f(start, end)` for every byte range the boot loader handed
    /// over that must stay untouched (the structure, modules, strings).
    fn reserved(&self, f: &mut dyn FnMut(u64, u64));
}

/// Physical memory as memshim sees it: `virtual = physical + offset`,
/// readable only below `limit`.
#[derive(Clone, Copy, Debug)]
pub struct Phys {
    /// `phys_offset`.
    pub offset: u64,
    /// Effective `phys_limit` (never 0, and `limit + offset` never wraps).
    pub limit: u64,
}

impl Phys {
    /// The `len` bytes at physical `phys`.
    ///
    /// # Safety
    /// Physical memory below `limit` must be mapped readable at `offset`
    /// and stay unchanged for `'a`.
    unsafe fn bytes<'a>(&self, phys: u64, len: u64) -> Result<&'a [u8], Error> {
        let end = phys.checked_add(len).ok_or(Error::BadBootInfo)?;
        if end > self.limit {
            return Err(Error::Range);
        }
        let virt = phys + self.offset;
        let n = usize::try_from(len).map_err(|_| Error::Range)?;
        if n == 0 {
            return Ok(&[]);
        }
        if virt == 0 {
            return Err(Error::BadBootInfo);
        }
        // SAFETY: non-null, below the limit, so mapped and readable per the
        // caller's contract; u8 needs no alignment.
        Ok(unsafe { core::slice::from_raw_parts(virt as *const u8, n) })
    }

    /// The length (NUL included) of the string at `phys`, 1 ..= 4096: at
    /// most 4 KiB is read; a string that cannot be read counts 1 byte.
    ///
    /// # Safety
    /// As for [`Phys::bytes`].
    unsafe fn string_len(&self, phys: u64) -> u16 {
        let room = self.limit.saturating_sub(phys).min(MAX_STRING);
        // SAFETY: forwarded contract; `room` keeps the read below the limit.
        let bytes = unsafe { self.bytes(phys, room) }.unwrap_or(&[]);
        let len = bytes
            .iter()
            .position(|&c| c == 0)
            .map_or(room.max(1), |i| i as u64 + 1);
        len as u16 // at most MAX_STRING
    }
}

fn le<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    if let Some(s) = at.checked_add(N).and_then(|end| b.get(at..end)) {
        out.copy_from_slice(s);
    }
    out
}

/// Little-endian u32 at `at` (0 if out of bounds; callers check bounds first).
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(le(b, at))
}

/// Little-endian u64 at `at` (0 if out of bounds; callers check bounds first).
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(le(b, at))
}

/// Reads `len` bytes of a caller pointer (the boot-info structure itself).
///
/// # Safety
/// `p` must be readable for `len` bytes for `'a`.
unsafe fn caller_bytes<'a>(p: *const u8, len: u64) -> Result<&'a [u8], Error> {
    let n = usize::try_from(len).map_err(|_| Error::Range)?;
    if (p as usize).checked_add(n).is_none() {
        return Err(Error::BadBootInfo);
    }
    // SAFETY: forwarded contract; the range does not wrap.
    Ok(unsafe { core::slice::from_raw_parts(p, n) })
}

// ---------------------------------------------------------------------------
// Plain range lists (memshim_frames_init)

/// A caller's list of usable ranges.
pub struct Ranges<'a>(&'a [memshim_range]);

impl<'a> Ranges<'a> {
    /// Accepts up to `MAX_ENTRIES` (4096) ranges whose ends do not wrap.
    pub fn new(list: &'a [memshim_range]) -> Result<Self, Error> {
        if list.len() > MAX_ENTRIES {
            return Err(Error::Invalid);
        }
        if list.iter().any(|r| r.base.checked_add(r.length).is_none()) {
            return Err(Error::Range);
        }
        Ok(Ranges(list))
    }
}

impl BootMap for Ranges<'_> {
    fn entries(&self, f: &mut dyn FnMut(u64, u64, bool)) {
        for r in self.0 {
            f(r.base, r.length, true);
        }
    }
    fn reserved(&self, _f: &mut dyn FnMut(u64, u64)) {}
}

// ---------------------------------------------------------------------------
// Multiboot 1

/// Fixed part read: flags .. mmap_addr (offsets 0..52).
const MB1_READ: u64 = 52;
/// Read when bits 7-11 are set: up to `vbe_interface_len` (offset 88).
const MB1_READ_VBE: u64 = 88;
/// The whole fixed structure (up to the framebuffer colour info), reserved
/// and, with bit 12, read.
const MB1_SIZE: u64 = 116;
const MB1_MEM: u32 = 1 << 0;
const MB1_CMDLINE: u32 = 1 << 2;
const MB1_MODS: u32 = 1 << 3;
const MB1_AOUT: u32 = 1 << 4;
const MB1_ELF: u32 = 1 << 5;
const MB1_MMAP: u32 = 1 << 6;
const MB1_DRIVES: u32 = 1 << 7;
const MB1_CONFIG: u32 = 1 << 8;
const MB1_LOADER: u32 = 1 << 9;
const MB1_APM: u32 = 1 << 10;
const MB1_VBE: u32 = 1 << 11;
const MB1_FB: u32 = 1 << 12;
/// The APM table: version, cseg, offset (4), cseg_16, dseg, flags,
/// cseg_len, cseg_16_len, dseg_len.
const MB1_APM_SIZE: u64 = 20;
/// VBE controller information (function 00h) and mode information (01h).
const VBE_CONTROL_SIZE: u64 = 512;
const VBE_MODE_SIZE: u64 = 256;
/// Framebuffer type 0: an indexed palette of 3-byte entries.
const FB_INDEXED: u8 = 0;
/// Ranges besides the map, modules and strings a Multiboot 1 structure
/// can name: a.out symbols, drives, config table, loader name, APM, two
/// VBE blocks, framebuffer, palette.
const MB1_EXTRA: usize = 9;
/// A memory-map entry's `size` field counts the bytes after itself: base (8),
/// length (8) and type (4) at least.
const MB1_ENTRY_MIN: usize = 20;
const MB1_MODULE: u64 = 16;

/// A validated Multiboot 1 information structure.
pub struct Multiboot1<'a> {
    info_phys: u64,
    flags: u32,
    mem_lower: u32,
    mem_upper: u32,
    cmdline: u32,
    mmap: &'a [u8],
    mmap_phys: u64,
    mods: &'a [u8],
    mods_phys: u64,
    /// String lengths, measured once in `parse` (the reserved ranges are
    /// walked many times): each module's name, then the command line's.
    names: [u16; MAX_MODULES + 1],
    /// The other structures the flags name, as byte ranges (empty: absent).
    extra: [(u64, u64); MB1_EXTRA],
    /// ELF section headers (bit 5), validated.
    elf: Elf<'a>,
    elf_phys: u64,
}

/// A validated ELF section header table: `entsize` 40 (ELF32) or 64 (ELF64).
#[derive(Clone, Copy)]
struct Elf<'a> {
    table: &'a [u8],
    entsize: usize,
}

const SHT_NULL: u32 = 0;
const SHT_NOBITS: u32 = 8;
const SHF_ALLOC: u64 = 2;

impl<'a> Elf<'a> {
    const NONE: Elf<'static> = Elf {
        table: &[],
        entsize: 40,
    };

    /// Checks `num` headers of `entsize` bytes at the start of `table`
    /// (which may be longer) and the ranges of the sections they load.
    fn new(table: &'a [u8], num: usize, entsize: usize) -> Result<Self, Error> {
        if num == 0 {
            return Ok(Elf::NONE);
        }
        let bytes = num.checked_mul(entsize).ok_or(Error::BadBootInfo)?;
        if num > MAX_SECTIONS || !matches!(entsize, 40 | 64) || bytes > table.len() {
            return Err(Error::BadBootInfo);
        }
        let elf = Elf {
            table: &table[..bytes],
            entsize,
        };
        let mut wraps = false;
        elf.walk(&mut |_, end| wraps |= end.is_none());
        if wraps {
            return Err(Error::BadBootInfo);
        }
        Ok(elf)
    }

    /// Calls `f(start, end)` for every section loaded outside the kernel
    /// image: not `SHF_ALLOC` (the image holds those, at link addresses
    /// that may be virtual), not empty, not `SHT_NOBITS`, with an address
    /// (the boot loader's physical one). `end` is `None` if it wraps.
    fn walk(&self, f: &mut dyn FnMut(u64, Option<u64>)) {
        for h in self.table.chunks_exact(self.entsize) {
            let ty = u32_at(h, 4);
            let (flags, addr, size) = if self.entsize == 40 {
                let w = |at| u64::from(u32_at(h, at));
                (w(8), w(12), w(20))
            } else {
                (u64_at(h, 8), u64_at(h, 16), u64_at(h, 32))
            };
            if flags & SHF_ALLOC == 0
                && addr != 0
                && size != 0
                && !matches!(ty, SHT_NULL | SHT_NOBITS)
            {
                f(addr, addr.checked_add(size));
            }
        }
    }

    /// The loaded sections as `(start, end)` (validated: none wraps).
    fn sections(&self, f: &mut dyn FnMut(u64, u64)) {
        self.walk(&mut |start, end| f(start, end.unwrap_or(u64::MAX)));
    }
}

/// The bytes a framebuffer of `pitch` x `height` spans from `addr`.
fn framebuffer(addr: u64, pitch: u32, height: u32) -> Result<(u64, u64), Error> {
    let len = u64::from(pitch) * u64::from(height);
    let end = addr.checked_add(len).ok_or(Error::BadBootInfo)?;
    Ok((addr, end))
}

/// Walks a Multiboot 1 memory map by each entry's own `size` field:
/// `f(base, length, type)`. Fails on an entry that runs past the map, is
/// shorter than an entry, or one entry too many.
fn mb1_walk(map: &[u8], f: &mut dyn FnMut(u64, u64, u32)) -> Result<(), Error> {
    let (mut at, mut count) = (0usize, 0usize);
    while at < map.len() {
        let body = at.checked_add(4).filter(|&b| b <= map.len());
        let body = body.ok_or(Error::BadBootInfo)?;
        let size = u32_at(map, at) as usize;
        let end = body.checked_add(size).ok_or(Error::BadBootInfo)?;
        if size < MB1_ENTRY_MIN || end > map.len() {
            return Err(Error::BadBootInfo);
        }
        count += 1;
        if count > MAX_ENTRIES {
            return Err(Error::BadBootInfo);
        }
        f(
            u64_at(map, body),
            u64_at(map, body + 8),
            u32_at(map, body + 16),
        );
        at = end;
    }
    Ok(())
}

impl<'a> Multiboot1<'a> {
    /// Validates the structure at `info` (a virtual address).
    ///
    /// # Safety
    /// `info` must be NULL or readable for 52 bytes, and for the fields its
    /// flags say exist (88 bytes with bits 7-11, 116 with bit 12); physical
    /// memory below `phys.limit` must be mapped readable at `phys.offset`;
    /// both unchanged for `'a`.
    pub unsafe fn parse(info: *const u8, phys: Phys) -> Result<Self, Error> {
        if info.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: the caller guarantees the fixed part is readable.
        let head = unsafe { caller_bytes(info, MB1_READ) }?;
        let flags = u32_at(head, 0);
        let mut m = Multiboot1 {
            info_phys: (info as u64).wrapping_sub(phys.offset),
            flags,
            mem_lower: u32_at(head, 4),
            mem_upper: u32_at(head, 8),
            cmdline: u32_at(head, 16),
            mmap: &[],
            mmap_phys: u64::from(u32_at(head, 48)),
            mods: &[],
            mods_phys: u64::from(u32_at(head, 24)),
            names: [0; MAX_MODULES + 1],
            extra: [(0, 0); MB1_EXTRA],
            elf: Elf::NONE,
            elf_phys: 0,
        };
        if flags & MB1_AOUT != 0 && flags & MB1_ELF != 0 {
            return Err(Error::BadBootInfo); // the two are exclusive
        }
        let mmap_len = u64::from(u32_at(head, 44));
        if flags & MB1_MMAP != 0 && mmap_len != 0 {
            if mmap_len > MAX_INFO_BYTES {
                return Err(Error::BadBootInfo);
            }
            // SAFETY: forwarded contract; `bytes` checks the limit.
            m.mmap = unsafe { phys.bytes(m.mmap_phys, mmap_len) }?;
            mb1_walk(m.mmap, &mut |_, _, _| {})?;
        }
        if m.mmap.is_empty() && flags & MB1_MEM == 0 {
            return Err(Error::NoMemoryMap);
        }
        let mods = u32_at(head, 20) as usize;
        if flags & MB1_MODS != 0 && mods != 0 {
            if mods > MAX_MODULES {
                return Err(Error::BadBootInfo);
            }
            // SAFETY: forwarded contract; `bytes` checks the limit.
            m.mods = unsafe { phys.bytes(m.mods_phys, mods as u64 * MB1_MODULE) }?;
            if m.modules().any(|(start, end, _)| end < start) {
                return Err(Error::BadBootInfo);
            }
        }
        let mut names = [0; MAX_MODULES + 1];
        for (len, (_, _, name)) in names.iter_mut().zip(m.modules()) {
            // SAFETY: forwarded contract (physical memory below the limit).
            *len = unsafe { phys.string_len(name) };
        }
        if flags & MB1_CMDLINE != 0 {
            // SAFETY: as above.
            names[MAX_MODULES] = unsafe { phys.string_len(u64::from(m.cmdline)) };
        }
        m.names = names;
        // SAFETY: forwarded contract (the fields the flags name are readable).
        unsafe { m.parse_more(info, head, phys) }?;
        Ok(m)
    }

    /// The structures named by flags bits 4, 5 and 7-12.
    ///
    /// # Safety
    /// As for [`Multiboot1::parse`]; `info` is readable for the fixed
    /// fields its flags say exist (88 bytes with bits 7-11, 116 with 12).
    unsafe fn parse_more(&mut self, info: *const u8, head: &[u8], phys: Phys) -> Result<(), Error> {
        let flags = self.flags;
        let at = |b: &[u8], i| u64::from(u32_at(b, i));
        let span = |start: u64, len: u64| (start, start + len); // u32 + u32 sized
        let mut extra = [(0, 0); MB1_EXTRA];
        if flags & MB1_AOUT != 0 {
            // tabsize, strsize, addr: a size word, the nlist array, a size
            // word, the strings.
            extra[0] = span(at(head, 36), 8 + at(head, 28) + at(head, 32));
        }
        if flags & MB1_ELF != 0 {
            let (num, size, addr) = (
                u32_at(head, 28) as usize,
                u32_at(head, 32) as usize,
                at(head, 36),
            );
            let bytes = num
                .checked_mul(size)
                .filter(|&b| b as u64 <= MAX_INFO_BYTES);
            let bytes = bytes.ok_or(Error::BadBootInfo)?;
            // SAFETY: forwarded contract; `bytes` checks the limit.
            let table = unsafe { phys.bytes(addr, bytes as u64) }?;
            self.elf = Elf::new(table, num, size)?;
            self.elf_phys = addr;
        }
        let wanted = if flags & MB1_FB != 0 {
            MB1_SIZE
        } else if flags & (MB1_DRIVES | MB1_CONFIG | MB1_LOADER | MB1_APM | MB1_VBE) != 0 {
            MB1_READ_VBE
        } else {
            self.extra = extra;
            return Ok(());
        };
        // SAFETY: the caller guarantees the fields the flags name are readable.
        let b = unsafe { caller_bytes(info, wanted) }?;
        if flags & MB1_DRIVES != 0 {
            let len = at(b, 52);
            if len > MAX_INFO_BYTES {
                return Err(Error::BadBootInfo);
            }
            extra[1] = span(at(b, 56), len);
        }
        if flags & MB1_CONFIG != 0 {
            // A length word, then that many bytes (BIOS INT 15h C0h). In the
            // first MiB (where BIOSes keep it) it is reserved anyway.
            let addr = at(b, 60);
            if addr + 2 + 0xFFFF > LOW_RESERVED {
                // SAFETY: forwarded contract; `bytes` checks the limit.
                let len = unsafe { phys.bytes(addr, 2) }?;
                extra[2] = span(addr, 2 + u64::from(u16::from_le_bytes([len[0], len[1]])));
            }
        }
        if flags & MB1_LOADER != 0 {
            let addr = at(b, 64);
            // SAFETY: forwarded contract (physical memory below the limit).
            extra[3] = span(addr, u64::from(unsafe { phys.string_len(addr) }));
        }
        if flags & MB1_APM != 0 {
            extra[4] = span(at(b, 68), MB1_APM_SIZE);
        }
        if flags & MB1_VBE != 0 {
            extra[5] = span(at(b, 72), VBE_CONTROL_SIZE);
            extra[6] = span(at(b, 76), VBE_MODE_SIZE);
        }
        if flags & MB1_FB != 0 {
            extra[7] = framebuffer(u64_at(b, 88), u32_at(b, 96), u32_at(b, 104))?;
            if b[109] == FB_INDEXED {
                let colours = u64::from(u16::from_le_bytes([b[114], b[115]]));
                extra[8] = span(at(b, 110), 3 * colours);
            }
        }
        self.extra = extra;
        Ok(())
    }

    /// (mod_start, mod_end, string) of each module.
    fn modules(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.mods.chunks_exact(MB1_MODULE as usize).map(|e| {
            let field = |i| u64::from(u32_at(e, i));
            (field(0), field(4), field(8))
        })
    }
}

impl BootMap for Multiboot1<'_> {
    fn entries(&self, f: &mut dyn FnMut(u64, u64, bool)) {
        if self.mmap.is_empty() {
            // No map: mem_lower KiB from 0 and mem_upper KiB from 1 MiB.
            f(0, u64::from(self.mem_lower) * 1024, true);
            f(1 << 20, u64::from(self.mem_upper) * 1024, true);
        } else {
            let _ = mb1_walk(self.mmap, &mut |base, len, ty| f(base, len, ty == 1));
        }
    }

    fn reserved(&self, f: &mut dyn FnMut(u64, u64)) {
        let span = |at: u64, len: usize| (at, at.saturating_add(len as u64));
        f(self.info_phys, self.info_phys.saturating_add(MB1_SIZE));
        if !self.mmap.is_empty() {
            let (a, b) = span(self.mmap_phys, self.mmap.len());
            f(a, b);
        }
        if !self.mods.is_empty() {
            let (a, b) = span(self.mods_phys, self.mods.len());
            f(a, b);
        }
        for ((start, end, name), &len) in self.modules().zip(&self.names) {
            f(start, end);
            f(name, name + u64::from(len));
        }
        if self.flags & MB1_CMDLINE != 0 {
            let at = u64::from(self.cmdline);
            f(at, at + u64::from(self.names[MAX_MODULES]));
        }
        for &(start, end) in &self.extra {
            f(start, end);
        }
        f(self.elf_phys, self.elf_phys + self.elf.table.len() as u64);
        self.elf.sections(f);
    }
}

// ---------------------------------------------------------------------------
// Multiboot 2

const MB2_END: u32 = 0;
const MB2_MODULE: u32 = 3;
const MB2_MEMINFO: u32 = 4;
const MB2_MMAP: u32 = 6;
const MB2_FRAMEBUFFER: u32 = 8;
const MB2_ELF: u32 = 9;
/// ELF-symbols tag: type, size, num, entsize, shndx (u32 each, as GRUB
/// writes them), then the headers.
const MB2_ELF_HEAD: usize = 20;
/// base (8), length (8), type (4), reserved (4).
const MB2_ENTRY_MIN: usize = 24;

/// A validated Multiboot 2 information structure.
pub struct Multiboot2<'a> {
    b: &'a [u8],
    info_phys: u64,
    has_mmap: bool,
    meminfo: Option<(u32, u32)>,
}

/// A tag visitor: `(type, tag bytes)`.
type TagFn<'f> = dyn FnMut(u32, &[u8]) -> Result<(), Error> + 'f;

/// Walks the tags (8-byte aligned, each `size` bytes, up to the end tag):
/// `f(type, tag bytes)`. Fails if a tag runs past `total_size`, is shorter
/// than its header, or the end tag is missing.
fn mb2_walk(b: &[u8], f: &mut TagFn<'_>) -> Result<(), Error> {
    let mut at = 8usize;
    loop {
        let body = at.checked_add(8).filter(|&e| e <= b.len());
        body.ok_or(Error::BadBootInfo)?;
        let (ty, size) = (u32_at(b, at), u32_at(b, at + 4) as usize);
        let end = at.checked_add(size).filter(|&e| size >= 8 && e <= b.len());
        let end = end.ok_or(Error::BadBootInfo)?;
        if ty == MB2_END {
            return Ok(());
        }
        f(ty, &b[at..end])?;
        at = end.checked_next_multiple_of(8).ok_or(Error::BadBootInfo)?;
    }
}

/// Checks a memory-map tag: `entry_size` at least an entry and a multiple
/// of 8, and the entries filling the tag exactly. Returns the entry count.
fn mb2_mmap_entries(tag: &[u8]) -> Result<usize, Error> {
    let entry = u32_at(tag, 8) as usize;
    if tag.len() < 16 || entry < MB2_ENTRY_MIN || entry % 8 != 0 {
        return Err(Error::BadBootInfo);
    }
    let body = tag.len() - 16;
    if body % entry != 0 {
        return Err(Error::BadBootInfo);
    }
    Ok(body / entry)
}

impl<'a> Multiboot2<'a> {
    /// Validates the structure at `info` (a virtual address).
    ///
    /// # Safety
    /// `info` must be NULL or readable for its `total_size` bytes (the
    /// first 8 at least), unchanged for `'a`.
    pub unsafe fn parse(info: *const u8, phys: Phys) -> Result<Self, Error> {
        if info.is_null() {
            return Err(Error::Invalid);
        }
        // SAFETY: the caller guarantees the header is readable.
        let total = u64::from(u32_at(unsafe { caller_bytes(info, 8) }?, 0));
        if !(16..=MAX_INFO_BYTES).contains(&total) {
            return Err(Error::BadBootInfo);
        }
        let mut m = Multiboot2 {
            // SAFETY: the caller guarantees `total_size` bytes are readable.
            b: unsafe { caller_bytes(info, total) }?,
            info_phys: (info as u64).wrapping_sub(phys.offset),
            has_mmap: false,
            meminfo: None,
        };
        let (mut entries, mut tags, mut modules) = (0usize, 0usize, 0usize);
        let (mut has_mmap, mut meminfo) = (false, None);
        mb2_walk(m.b, &mut |ty, tag| {
            tags += 1;
            modules += usize::from(ty == MB2_MODULE);
            if tags > MAX_TAGS || modules > MAX_MODULES {
                return Err(Error::BadBootInfo);
            }
            match ty {
                MB2_MMAP => {
                    entries += mb2_mmap_entries(tag)?;
                    has_mmap = true;
                }
                MB2_MEMINFO if tag.len() < 16 => return Err(Error::BadBootInfo),
                MB2_MEMINFO => meminfo = Some((u32_at(tag, 8), u32_at(tag, 12))),
                MB2_MODULE if tag.len() < 16 || u32_at(tag, 12) < u32_at(tag, 8) => {
                    return Err(Error::BadBootInfo)
                }
                MB2_ELF => {
                    mb2_elf(tag)?;
                }
                MB2_FRAMEBUFFER if tag.len() < 30 => return Err(Error::BadBootInfo),
                MB2_FRAMEBUFFER => {
                    framebuffer(u64_at(tag, 8), u32_at(tag, 16), u32_at(tag, 24))?;
                }
                _ => {}
            }
            Ok(())
        })?;
        if entries > MAX_ENTRIES {
            return Err(Error::BadBootInfo);
        }
        if !has_mmap && meminfo.is_none() {
            return Err(Error::NoMemoryMap);
        }
        (m.has_mmap, m.meminfo) = (has_mmap, meminfo);
        Ok(m)
    }
}

impl BootMap for Multiboot2<'_> {
    fn entries(&self, f: &mut dyn FnMut(u64, u64, bool)) {
        if !self.has_mmap {
            let (lower, upper) = self.meminfo.unwrap_or((0, 0));
            f(0, u64::from(lower) * 1024, true);
            f(1 << 20, u64::from(upper) * 1024, true);
            return;
        }
        let _ = mb2_walk(self.b, &mut |ty, tag| {
            if ty == MB2_MMAP {
                let size = (u32_at(tag, 8) as usize).max(MB2_ENTRY_MIN);
                for e in tag.get(16..).unwrap_or(&[]).chunks_exact(size) {
                    f(u64_at(e, 0), u64_at(e, 8), u32_at(e, 16) == 1);
                }
            }
            Ok(())
        });
    }

    fn reserved(&self, f: &mut dyn FnMut(u64, u64)) {
        f(
            self.info_phys,
            self.info_phys.saturating_add(self.b.len() as u64),
        );
        let _ = mb2_walk(self.b, &mut |ty, tag| {
            match ty {
                MB2_MODULE => f(u64::from(u32_at(tag, 8)), u64::from(u32_at(tag, 12))),
                MB2_ELF => mb2_elf(tag)?.sections(f),
                MB2_FRAMEBUFFER => {
                    let (start, end) =
                        framebuffer(u64_at(tag, 8), u32_at(tag, 16), u32_at(tag, 24))?;
                    f(start, end);
                }
                _ => {}
            }
            Ok(())
        });
    }
}

/// The section headers of an ELF-symbols tag (validated).
fn mb2_elf(tag: &[u8]) -> Result<Elf<'_>, Error> {
    let headers = tag.get(MB2_ELF_HEAD..).ok_or(Error::BadBootInfo)?;
    Elf::new(headers, u32_at(tag, 8) as usize, u32_at(tag, 12) as usize)
}
