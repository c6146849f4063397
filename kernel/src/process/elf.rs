//! Checking an executable before anything of it is mapped: ELF64 headers to a load plan.
//!
//! An ELF file is input the kernel does not control (it comes from the initrd, and
//! later from any process that names a path), so it is parsed with a maintained reader
//! (`object`'s ELF header and program-header types) and every field the loader will act
//! on is checked here, once, into a [`LoadPlan`] of page-aligned segments: a static
//! AArch64 executable (`ET_EXEC`, no interpreter), loadable segments inside the user
//! half and inside the file, never writable and executable at once (W^X), never sharing
//! a page, the entry point in an executable segment, and a bounded total size. Anything
//! else is one [`ExecError`] (`ENOEXEC` to the caller, with the reason for the log) and
//! never a panic; a host test feeds mutated files to [`plan`].

use heapless::Vec;
use object::LittleEndian;
use object::elf::{self, FileHeader64, ProgramHeader64};
use object::read::elf::{FileHeader, ProgramHeader};

/// Page size of user mappings.
pub const PAGE: u64 = 4096;
/// Lowest address a segment may use: page 0 stays unmapped so null dereferences fault.
pub const USER_MIN: u64 = 0x1_0000;
/// One past the highest user address (48-bit TTBR0 range minus the stack area above).
pub const USER_IMAGE_END: u64 = 0x0000_7f00_0000_0000;
/// Most loadable segments accepted.
pub const MAX_SEGMENTS: usize = 8;
/// Most bytes all segments may occupy in memory together.
pub const MAX_IMAGE_BYTES: u64 = 256 << 20;

/// Access a segment's pages get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only.
    Read,
    /// Read and write, never execute.
    ReadWrite,
    /// Read and execute, never write.
    ReadExecute,
}

/// One loadable segment, page-aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// First page's user address.
    pub vaddr: u64,
    /// Bytes mapped (a multiple of `PAGE`).
    pub mem_len: u64,
    /// Where the file's bytes go: offset from `vaddr` (the segment's in-page start).
    pub copy_at: u64,
    /// Offset of those bytes in the file.
    pub file_offset: u64,
    /// How many bytes come from the file (the rest of `mem_len` is zero).
    pub file_len: u64,
    /// Page permissions.
    pub access: Access,
}

/// What the loader needs: the segments and where to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// Loadable segments, sorted by address, non-overlapping at page granularity.
    pub segments: Vec<Segment, MAX_SEGMENTS>,
    /// The entry point (inside an executable segment).
    pub entry: u64,
}

/// Why a file is not an executable the kernel runs (all are `ENOEXEC` to the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecError {
    /// Not an ELF64 little-endian file, or its headers lie outside it.
    Malformed,
    /// Not for AArch64.
    WrongMachine,
    /// Not a static executable (`ET_EXEC`), or it asks for an interpreter.
    NotStatic,
    /// No loadable segment, or more than `MAX_SEGMENTS`.
    SegmentCount,
    /// A segment's file bytes lie outside the file, or exceed its memory size.
    SegmentOutsideFile,
    /// A segment lies outside the user range, wraps, or is misaligned with its offset.
    BadAddress,
    /// A segment is both writable and executable.
    WritableAndExecutable,
    /// Two segments share a page.
    Overlap,
    /// The entry point is not inside an executable segment.
    BadEntry,
    /// The segments together exceed `MAX_IMAGE_BYTES`.
    TooLarge,
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ExecError::Malformed => "not a well-formed ELF64 little-endian file",
            ExecError::WrongMachine => "not an AArch64 executable",
            ExecError::NotStatic => "not a static executable (ET_EXEC without interpreter)",
            ExecError::SegmentCount => "no loadable segment, or too many",
            ExecError::SegmentOutsideFile => "a segment's bytes lie outside the file",
            ExecError::BadAddress => "a segment lies outside the user address range",
            ExecError::WritableAndExecutable => "a segment is writable and executable",
            ExecError::Overlap => "two segments share a page",
            ExecError::BadEntry => "the entry point is not in an executable segment",
            ExecError::TooLarge => "the image is too large",
        })
    }
}

type Header = FileHeader64<LittleEndian>;
type Phdr = ProgramHeader64<LittleEndian>;

/// Checks `file` and returns its load plan.
pub fn plan(file: &[u8]) -> Result<LoadPlan, ExecError> {
    let header = Header::parse(file).map_err(|_| ExecError::Malformed)?;
    let endian = header.endian().map_err(|_| ExecError::Malformed)?;
    if header.is_big_endian() || !header.is_class_64() {
        return Err(ExecError::Malformed);
    }
    if header.e_machine(endian) != elf::EM_AARCH64 {
        return Err(ExecError::WrongMachine);
    }
    if header.e_type(endian) != elf::ET_EXEC {
        return Err(ExecError::NotStatic);
    }
    let phdrs = header
        .program_headers(endian, file)
        .map_err(|_| ExecError::Malformed)?;
    let mut segments: Vec<Segment, MAX_SEGMENTS> = Vec::new();
    let mut total = 0u64;
    for ph in phdrs {
        match ph.p_type(endian) {
            elf::PT_INTERP | elf::PT_DYNAMIC => return Err(ExecError::NotStatic),
            elf::PT_LOAD => {}
            _ => continue,
        }
        let seg = segment(ph, endian, file.len() as u64)?;
        total = total.saturating_add(seg.mem_len);
        segments.push(seg).map_err(|_| ExecError::SegmentCount)?;
    }
    if segments.is_empty() {
        return Err(ExecError::SegmentCount);
    }
    if total > MAX_IMAGE_BYTES {
        return Err(ExecError::TooLarge);
    }
    segments.sort_unstable_by_key(|s| s.vaddr);
    if segments
        .windows(2)
        .any(|w| w[0].vaddr + w[0].mem_len > w[1].vaddr)
    {
        return Err(ExecError::Overlap);
    }
    let entry = header.e_entry(endian);
    let runs_entry = |s: &Segment| {
        s.access == Access::ReadExecute
            && entry >= s.vaddr + s.copy_at
            && entry < s.vaddr + s.copy_at + s.file_len
    };
    if !entry.is_multiple_of(4) || !segments.iter().any(runs_entry) {
        return Err(ExecError::BadEntry);
    }
    Ok(LoadPlan { segments, entry })
}

/// One `PT_LOAD` entry, checked and rounded out to pages.
fn segment(ph: &Phdr, endian: LittleEndian, file_len: u64) -> Result<Segment, ExecError> {
    let (vaddr, memsz) = (ph.p_vaddr(endian), ph.p_memsz(endian));
    let (offset, filesz) = (ph.p_offset(endian), ph.p_filesz(endian));
    let flags = ph.p_flags(endian).0;
    if filesz > memsz || offset.checked_add(filesz).is_none_or(|end| end > file_len) {
        return Err(ExecError::SegmentOutsideFile);
    }
    let end = vaddr.checked_add(memsz).ok_or(ExecError::BadAddress)?;
    if memsz == 0 || vaddr < USER_MIN || end > USER_IMAGE_END || vaddr % PAGE != offset % PAGE {
        return Err(ExecError::BadAddress);
    }
    if memsz > MAX_IMAGE_BYTES {
        return Err(ExecError::TooLarge);
    }
    let (w, x) = (flags & elf::PF_W.0 != 0, flags & elf::PF_X.0 != 0);
    let access = match (w, x) {
        (true, true) => return Err(ExecError::WritableAndExecutable),
        (true, false) => Access::ReadWrite,
        (false, true) => Access::ReadExecute,
        (false, false) => Access::Read,
    };
    let first = vaddr - vaddr % PAGE;
    Ok(Segment {
        vaddr: first,
        mem_len: end.next_multiple_of(PAGE) - first,
        copy_at: vaddr - first,
        file_offset: offset,
        file_len: filesz,
        access,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec as StdVec;

    /// A program header for [`build`]: (type, flags, offset, vaddr, filesz, memsz).
    pub(crate) type Ph = (u32, u32, u64, u64, u64, u64);

    const R: u32 = 4;
    const W: u32 = 2;
    const X: u32 = 1;

    /// An ELF64 file: header, program headers, then `len` bytes of payload.
    pub(crate) fn build(
        machine: u16,
        etype: u16,
        entry: u64,
        phs: &[Ph],
        len: usize,
    ) -> StdVec<u8> {
        let mut f = StdVec::new();
        f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&etype.to_le_bytes());
        f.extend_from_slice(&machine.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&entry.to_le_bytes());
        f.extend_from_slice(&64u64.to_le_bytes()); // phoff
        f.extend_from_slice(&0u64.to_le_bytes()); // shoff
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&64u16.to_le_bytes());
        f.extend_from_slice(&56u16.to_le_bytes());
        f.extend_from_slice(&(phs.len() as u16).to_le_bytes());
        f.extend_from_slice(&[0; 6]);
        for &(t, flags, off, va, fsz, msz) in phs {
            f.extend_from_slice(&t.to_le_bytes());
            f.extend_from_slice(&flags.to_le_bytes());
            for v in [off, va, va, fsz, msz, 0x1000] {
                f.extend_from_slice(&v.to_le_bytes());
            }
        }
        f.resize(len.max(f.len()), 0xd4);
        f
    }

    /// A typical program: text at 4 MiB (entry inside), rodata, data + bss.
    pub(crate) fn good() -> StdVec<u8> {
        build(
            183,
            2,
            0x40_0010,
            &[
                (1, R | X, 0x1000, 0x40_0000, 0x800, 0x800),
                (1, R, 0x2000, 0x40_1000, 0x100, 0x100),
                (1, R | W, 0x3000, 0x40_2000, 0x40, 0x3000),
            ],
            0x3040,
        )
    }

    #[test]
    fn a_good_file_gives_page_aligned_segments() {
        let p = plan(&good()).unwrap();
        assert_eq!(p.entry, 0x40_0010);
        assert_eq!(p.segments.len(), 3);
        let data = p.segments[2];
        assert_eq!(
            (data.vaddr, data.mem_len, data.access),
            (0x40_2000, 0x3000, Access::ReadWrite)
        );
        assert_eq!(
            (data.file_offset, data.file_len, data.copy_at),
            (0x3000, 0x40, 0)
        );
        assert_eq!(p.segments[0].access, Access::ReadExecute);
        assert_eq!(p.segments[1].access, Access::Read);
    }

    #[test]
    fn each_malformation_is_refused_with_its_reason() {
        let text = (1, R | X, 0x1000, 0x40_0000, 0x800, 0x800);
        let cases: [(StdVec<u8>, ExecError); 11] = [
            (good()[..40].to_vec(), ExecError::Malformed),
            (good()[..100].to_vec(), ExecError::Malformed),
            (
                build(62, 2, 0x40_0010, &[text], 0x2000),
                ExecError::WrongMachine,
            ),
            (
                build(183, 3, 0x40_0010, &[text], 0x2000),
                ExecError::NotStatic,
            ),
            (
                build(
                    183,
                    2,
                    0x40_0010,
                    &[text, (3, R, 0, 0x50_0000, 0, 0)],
                    0x2000,
                ),
                ExecError::NotStatic,
            ),
            (
                build(183, 2, 0x40_0010, &[], 0x2000),
                ExecError::SegmentCount,
            ),
            (
                build(
                    183,
                    2,
                    0x40_0010,
                    &[(1, R | X, 0x1000, 0x40_0000, 0x8000, 0x8000)],
                    0x2000,
                ),
                ExecError::SegmentOutsideFile,
            ),
            (
                build(
                    183,
                    2,
                    0x40_0010,
                    &[(1, R | W | X, 0x1000, 0x40_0000, 0x800, 0x800)],
                    0x2000,
                ),
                ExecError::WritableAndExecutable,
            ),
            (
                build(
                    183,
                    2,
                    0x40_0010,
                    &[text, (1, R, 0x1800, 0x40_0800, 0x10, 0x10)],
                    0x2000,
                ),
                ExecError::Overlap,
            ),
            (
                build(183, 2, 0x50_0000, &[text], 0x2000),
                ExecError::BadEntry,
            ),
            (
                build(
                    183,
                    2,
                    0x40_0010,
                    &[(1, R | X, 0x1000, 0x40_0000, 0x800, 1 << 40)],
                    0x2000,
                ),
                ExecError::TooLarge,
            ),
        ];
        for (i, (file, want)) in cases.iter().enumerate() {
            assert_eq!(plan(file), Err(*want), "case {i}");
        }
        // Addresses: page zero, the kernel half, wrapping, misaligned with the offset.
        for va in [0, 0xffff_0000_0000_0000, u64::MAX - 0x100] {
            let f = build(183, 2, va, &[(1, R | X, 0x1000, va, 0x800, 0x800)], 0x2000);
            assert_eq!(plan(&f), Err(ExecError::BadAddress), "{va:#x}");
        }
        let f = build(
            183,
            2,
            0x40_0010,
            &[(1, R | X, 0x1004, 0x40_0000, 0x800, 0x800)],
            0x2000,
        );
        assert_eq!(plan(&f), Err(ExecError::BadAddress));
        // An entry in a non-executable segment.
        let f = build(
            183,
            2,
            0x40_1000,
            &[text, (1, R, 0x1000, 0x40_1000, 0x10, 0x10)],
            0x2000,
        );
        assert_eq!(plan(&f), Err(ExecError::BadEntry));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Any mutation of a good file is refused or planned, never a panic; what is planned
        /// keeps every promise the loader relies on.
        #[test]
        fn mutated_files_never_panic(flips in proptest::collection::vec((0usize..0x140, any::<u8>()), 1..6), cut in 0usize..0x3040) {
            let mut f = good();
            for (at, v) in flips {
                f[at] = v;
            }
            f.truncate(cut.max(0x100));
            if let Ok(p) = plan(&f) {
                let mut prev_end = 0;
                for s in &p.segments {
                    prop_assert!(s.vaddr % PAGE == 0 && s.mem_len % PAGE == 0);
                    prop_assert!(s.vaddr >= USER_MIN && s.vaddr + s.mem_len <= USER_IMAGE_END);
                    prop_assert!(s.file_offset + s.file_len <= f.len() as u64);
                    prop_assert!(s.copy_at + s.file_len <= s.mem_len);
                    prop_assert!(s.vaddr >= prev_end);
                    prev_end = s.vaddr + s.mem_len;
                }
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = plan(&bytes);
        }
    }
}
