//! A checked, normalised copy of the flattened device tree the loader gave us.
//!
//! The `fdt` crate walks trees well but trusts them: it panics on a property
//! that runs past the structure block, a name offset outside the strings block,
//! a short `#address-cells`, nesting deeper than 64, or an empty `bootargs`, and
//! it loses nodes that follow an `FDT_NOP` between properties — which QEMU
//! leaves behind when it edits a `-dtb` blob. So before any `fdt` call the
//! kernel walks every token here (Devicetree Specification v0.4 §5), rejects
//! what the crate could trip on with an error that names the place, and copies
//! the tree without NOPs and without the padding QEMU adds (a `-dtb` blob grows
//! to about 2 MiB). Only [`Dtb`] values reach the parsers, and they hold only
//! checked bytes. Host-tested with QEMU's own dumps, hand-made corruptions and
//! proptest-mutated blobs: an error, never a panic.

use alloc::vec::Vec;
use core::fmt;

use fdt::Fdt;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// Deepest node nesting accepted (QEMU's trees are 4 deep; `fdt` overflows at 64).
pub const MAX_DEPTH: usize = 16;
/// Most memory reservation entries accepted.
pub const MAX_RESERVATIONS: usize = 64;
/// Largest structure + strings size accepted: the copy lives in the 1 MiB boot heap.
pub const MAX_USED: usize = 512 * 1024;

/// Why a blob is not a device tree the kernel will read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbError {
    /// Shorter than its header, or `totalsize` larger than the memory it sits in.
    Truncated,
    /// No `0xd00dfeed` magic.
    BadMagic,
    /// Version older than 16 (no strings-block size), or newer than the last
    /// compatible version the kernel reads (17).
    Version(u32),
    /// A block (`off_mem_rsvmap`, structure, strings) lies outside `totalsize` or
    /// is misaligned.
    BlockOutOfRange(&'static str),
    /// The reservation block has no terminating entry in range, or too many entries.
    Reservations,
    /// Structure and strings together exceed [`MAX_USED`].
    TooLarge(usize),
    /// Out of heap for the checked copy.
    NoMemory,
    /// A token that cannot appear where it does (structure offset given).
    BadToken(u32, usize),
    /// A node or property name that is not NUL-terminated UTF-8 (structure offset).
    BadName(usize),
    /// A property value running past the structure block (structure offset).
    PropertyOutOfRange(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A cell-count property (`#address-cells`, ...) that is not one cell or is out
    /// of the range the kernel reads; offset of the property.
    BadCells(&'static str, u32, usize),
}

impl fmt::Display for DtbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DtbError::Truncated => write!(f, "truncated (shorter than its header says)"),
            DtbError::BadMagic => write!(f, "no 0xd00dfeed magic"),
            DtbError::Version(v) => write!(f, "version {v} (16 or 17 supported)"),
            DtbError::BlockOutOfRange(b) => write!(f, "{b} block outside the blob"),
            DtbError::Reservations => write!(f, "memory reservation block unterminated"),
            DtbError::TooLarge(n) => write!(f, "{n} bytes of structure and strings (max 512 KiB)"),
            DtbError::NoMemory => write!(f, "no heap for a copy"),
            DtbError::BadToken(t, at) => write!(f, "token {t} at structure offset {at:#x}"),
            DtbError::BadName(at) => write!(f, "bad name at structure offset {at:#x}"),
            DtbError::PropertyOutOfRange(at) => {
                write!(
                    f,
                    "property at structure offset {at:#x} runs past the block"
                )
            }
            DtbError::TooDeep => write!(f, "nodes nested deeper than {MAX_DEPTH}"),
            DtbError::BadCells(name, v, at) => {
                write!(f, "{name} = {v} at structure offset {at:#x} is unsupported")
            }
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(be32(b, at)?) << 32 | u64::from(be32(b, at + 4)?))
}

/// The blob's `totalsize`, if it starts with a DTB header (magic checked).
pub fn header_size(header: &[u8; 8]) -> Option<usize> {
    (be32(header, 0)? == MAGIC).then(|| be32(header, 4).map(|s| s as usize))?
}

/// The `[start, end)` of a block inside the blob, checked.
fn block(
    blob: &[u8],
    total: usize,
    off_at: usize,
    size: usize,
    name: &'static str,
) -> Result<(usize, usize), DtbError> {
    let off = be32(blob, off_at).ok_or(DtbError::Truncated)? as usize;
    let end = off
        .checked_add(size)
        .filter(|&e| e <= total && off >= HEADER_LEN && off.is_multiple_of(4))
        .ok_or(DtbError::BlockOutOfRange(name))?;
    Ok((off, end))
}

/// A NUL-terminated UTF-8 string at `bytes[at..]`, not longer than `max`.
fn cstr(bytes: &[u8], at: usize, max: usize) -> Option<&str> {
    let rest = bytes.get(at..)?;
    let len = rest.iter().take(max + 1).position(|&b| b == 0)?;
    core::str::from_utf8(&rest[..len]).ok()
}

/// Properties whose value is a cell count the kernel (and `fdt`) computes with,
/// and the values it reads.
fn cell_limits(name: &str) -> Option<(&'static str, u32, u32)> {
    match name {
        "#address-cells" => Some(("#address-cells", 1, 3)),
        "#size-cells" => Some(("#size-cells", 0, 2)),
        "#interrupt-cells" => Some(("#interrupt-cells", 1, 4)),
        _ => None,
    }
}

/// A device tree whose every token, name and property lies inside it, with no NOPs.
pub struct Dtb {
    fdt: Fdt<'static>,
    len: usize,
}

impl fmt::Debug for Dtb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dtb({} bytes)", self.len)
    }
}

impl Dtb {
    /// Checks `blob` and keeps a normalised copy (leaked: the kernel reads its device
    /// tree for as long as it runs).
    pub fn check(blob: &[u8]) -> Result<Dtb, DtbError> {
        let out = normalize(blob)?;
        let bytes: &'static [u8] = alloc::boxed::Box::leak(out.into_boxed_slice());
        // The header was written by `normalize` with a matching magic and size.
        let fdt = Fdt::new(bytes).map_err(|_| DtbError::Truncated)?;
        Ok(Dtb {
            fdt,
            len: bytes.len(),
        })
    }

    /// The tree, for the `fdt` crate's walkers (`find_node`, `all_nodes`, `children`,
    /// `properties`); value decoding stays with the callers' checked helpers.
    pub fn fdt(&self) -> &Fdt<'static> {
        &self.fdt
    }
}

/// Checks `blob` and returns it rebuilt: header, reservations, structure without
/// NOPs, strings.
pub fn normalize(blob: &[u8]) -> Result<Vec<u8>, DtbError> {
    if blob.len() < HEADER_LEN {
        return Err(DtbError::Truncated);
    }
    if be32(blob, 0) != Some(MAGIC) {
        return Err(DtbError::BadMagic);
    }
    let total = be32(blob, 4).ok_or(DtbError::Truncated)? as usize;
    if total > blob.len() || total < HEADER_LEN {
        return Err(DtbError::Truncated);
    }
    let version = be32(blob, 20).ok_or(DtbError::Truncated)?;
    let last_comp = be32(blob, 24).ok_or(DtbError::Truncated)?;
    if version < 16 || last_comp > 17 {
        return Err(DtbError::Version(version));
    }
    let strings_size = be32(blob, 32).ok_or(DtbError::Truncated)? as usize;
    let struct_size = be32(blob, 36).ok_or(DtbError::Truncated)? as usize;
    let (st_start, st_end) = block(blob, total, 8, struct_size, "structure")?;
    let (sr_start, sr_end) = block(blob, total, 12, strings_size, "strings")?;
    let reservations = reservations(blob, total)?;
    let used = struct_size + strings_size;
    if used > MAX_USED {
        return Err(DtbError::TooLarge(used));
    }
    let strings = &blob[sr_start..sr_end];
    let mut body = Vec::new();
    body.try_reserve(struct_size)
        .map_err(|_| DtbError::NoMemory)?;
    walk(&blob[st_start..st_end], strings, &mut body)?;
    assemble(&reservations, &body, strings, version)
}

/// The reservation entries up to the terminating (0, 0).
fn reservations(blob: &[u8], total: usize) -> Result<Vec<(u64, u64)>, DtbError> {
    let off = be32(blob, 16).ok_or(DtbError::Truncated)? as usize;
    if off < HEADER_LEN || !off.is_multiple_of(8) || off >= total {
        return Err(DtbError::BlockOutOfRange("reservation"));
    }
    let mut out = Vec::new();
    for i in 0..=MAX_RESERVATIONS {
        let at = off + 16 * i;
        if at + 16 > total {
            break;
        }
        let (addr, size) = (be64(blob, at), be64(blob, at + 8));
        match (addr, size) {
            (Some(0), Some(0)) => return Ok(out),
            (Some(a), Some(s)) if i < MAX_RESERVATIONS => {
                out.try_reserve(1).map_err(|_| DtbError::NoMemory)?;
                out.push((a, s));
            }
            _ => break,
        }
    }
    Err(DtbError::Reservations)
}

/// Walks the structure block token by token, copying everything but NOPs into `out`.
fn walk(st: &[u8], strings: &[u8], out: &mut Vec<u8>) -> Result<(), DtbError> {
    let mut at = 0;
    let mut depth = 0usize;
    // Properties must come before a node's children (§5.4.1).
    let mut children_started = false;
    loop {
        let token = be32(st, at).ok_or(DtbError::BadToken(0, at))?;
        let start = at;
        at += 4;
        match token {
            NOP => continue,
            BEGIN_NODE => {
                let name = cstr(st, at, 255).ok_or(DtbError::BadName(start))?;
                let root = depth == 0;
                if (root && (!out.is_empty() || !name.is_empty()))
                    || (!root && (name.is_empty() || name.contains('/')))
                {
                    return Err(DtbError::BadName(start));
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(DtbError::TooDeep);
                }
                at += (name.len() + 1).next_multiple_of(4);
                children_started = false;
            }
            END_NODE if depth > 0 => {
                depth -= 1;
                children_started = true;
            }
            PROP if depth > 0 && !children_started => {
                at = property(st, strings, at, start)?;
            }
            END if depth == 0 && !out.is_empty() => {
                copy(out, &st[start..at])?;
                return Ok(());
            }
            other => return Err(DtbError::BadToken(other, start)),
        }
        if at > st.len() {
            return Err(DtbError::PropertyOutOfRange(start));
        }
        copy(out, &st[start..at])?;
    }
}

/// Checks one property (after its token at `start`); returns the offset after it.
fn property(st: &[u8], strings: &[u8], at: usize, start: usize) -> Result<usize, DtbError> {
    let len = be32(st, at).ok_or(DtbError::PropertyOutOfRange(start))? as usize;
    let nameoff = be32(st, at + 4).ok_or(DtbError::PropertyOutOfRange(start))? as usize;
    let value_at = at + 8;
    let end = value_at
        .checked_add(len)
        .filter(|&e| e <= st.len())
        .ok_or(DtbError::PropertyOutOfRange(start))?;
    let name = cstr(strings, nameoff, 255)
        .filter(|n| !n.is_empty())
        .ok_or(DtbError::BadName(start))?;
    if let Some((label, min, max)) = cell_limits(name) {
        let v = be32(st, value_at).filter(|_| len == 4);
        match v {
            Some(v) if (min..=max).contains(&v) => {}
            Some(v) => return Err(DtbError::BadCells(label, v, start)),
            None => return Err(DtbError::BadCells(label, len as u32, start)),
        }
    }
    Ok(end.next_multiple_of(4))
}

fn copy(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), DtbError> {
    out.try_reserve(bytes.len())
        .map_err(|_| DtbError::NoMemory)?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Header + reservations + structure + strings, as a version-17 blob.
fn assemble(
    reservations: &[(u64, u64)],
    body: &[u8],
    strings: &[u8],
    version: u32,
) -> Result<Vec<u8>, DtbError> {
    let rsv_off = HEADER_LEN;
    let st_off = rsv_off + 16 * (reservations.len() + 1);
    let sr_off = st_off + body.len();
    let total = sr_off + strings.len();
    let mut out = Vec::new();
    out.try_reserve(total).map_err(|_| DtbError::NoMemory)?;
    let header = [
        MAGIC,
        total as u32,
        st_off as u32,
        sr_off as u32,
        rsv_off as u32,
        version.min(17),
        16,
        0,
        strings.len() as u32,
        body.len() as u32,
    ];
    for word in header {
        out.extend_from_slice(&word.to_be_bytes());
    }
    for &(a, s) in reservations.iter().chain([(0, 0)].iter()) {
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&s.to_be_bytes());
    }
    out.extend_from_slice(body);
    out.extend_from_slice(strings);
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::vec;

    pub(crate) const GICV2: &[u8] = include_bytes!("../../../scripts/fixtures/virt-gicv2.dtb");
    pub(crate) const GICV3: &[u8] = include_bytes!("../../../scripts/fixtures/virt-gicv3.dtb");

    /// Offsets of the structure block and its size in a blob.
    fn struct_block(b: &[u8]) -> (usize, usize) {
        (be32(b, 8).unwrap() as usize, be32(b, 36).unwrap() as usize)
    }

    #[test]
    fn qemu_dumps_survive_unchanged_in_content() {
        for blob in [GICV2, GICV3] {
            let out = normalize(blob).unwrap();
            let a = Fdt::new(blob).unwrap();
            let b = Fdt::new(&out).unwrap();
            let na: Vec<&str> = a.all_nodes().map(|n| n.name).collect();
            let nb: Vec<&str> = b.all_nodes().map(|n| n.name).collect();
            assert_eq!(na, nb);
            assert!(na.len() > 20);
        }
    }

    /// libfdt leaves FDT_NOP where QEMU edits a `-dtb` blob; `fdt` 0.1.5 then stops
    /// walking at the NOP. After normalising, every node is found again.
    #[test]
    fn nops_between_properties_are_removed() {
        // QEMU deletes and rewrites properties of a `-dtb` blob in place; libfdt leaves
        // NOPs. Turn the root's `compatible` (not its first property) into NOPs.
        let mut blob = GICV2.to_vec();
        let value = value_offset(&blob, "", "compatible");
        let len = be32(&blob, value - 8).unwrap() as usize;
        for at in (value - 12..value + len.next_multiple_of(4)).step_by(4) {
            blob[at..at + 4].copy_from_slice(&NOP.to_be_bytes());
        }
        let broken = Fdt::new(&blob).unwrap();
        assert!(broken.find_node("/chosen").is_none(), "fdt 0.1.5 loses it");
        let out = normalize(&blob).unwrap();
        assert!(Fdt::new(&out).unwrap().find_node("/chosen").is_some());
    }

    #[test]
    fn padding_is_dropped() {
        let mut blob = GICV3.to_vec();
        let used = blob.len();
        blob.resize(2 << 20, 0);
        blob[4..8].copy_from_slice(&(2u32 << 20).to_be_bytes());
        let out = normalize(&blob).unwrap();
        assert!(out.len() <= used, "{} > {used}", out.len());
    }

    #[test]
    fn corruptions_are_errors() {
        let (off, _) = struct_block(GICV2);
        let set = |at: usize, v: u32| {
            let mut b = GICV2.to_vec();
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            b
        };
        assert_eq!(normalize(&GICV2[..39]), Err(DtbError::Truncated));
        assert_eq!(normalize(&set(0, 0)), Err(DtbError::BadMagic));
        assert_eq!(normalize(&set(4, 1 << 30)), Err(DtbError::Truncated));
        assert_eq!(normalize(&set(20, 3)), Err(DtbError::Version(3)));
        assert_eq!(
            normalize(&set(8, 1 << 30)),
            Err(DtbError::BlockOutOfRange("structure"))
        );
        assert_eq!(
            normalize(&set(32, u32::MAX)),
            Err(DtbError::BlockOutOfRange("strings"))
        );
        assert_eq!(
            normalize(&set(16, 3)),
            Err(DtbError::BlockOutOfRange("reservation"))
        );
        // The root's first token made a property: a property outside any node.
        assert!(matches!(
            normalize(&set(off, PROP)),
            Err(DtbError::BadToken(PROP, 0))
        ));
    }

    /// Finds property `name` of the first node named `node` and returns the offset of
    /// its value in the blob.
    pub(crate) fn value_offset(blob: &[u8], node: &str, name: &str) -> usize {
        let (off, size) = struct_block(blob);
        let strings = be32(blob, 12).unwrap() as usize;
        let mut at = off;
        let mut in_node = false;
        while at < off + size {
            match be32(blob, at).unwrap() {
                BEGIN_NODE => {
                    let n = cstr(blob, at + 4, 255).unwrap();
                    in_node = n == node;
                    at += 4 + (n.len() + 1).next_multiple_of(4);
                }
                PROP => {
                    let len = be32(blob, at + 4).unwrap() as usize;
                    let nameoff = be32(blob, at + 8).unwrap() as usize;
                    if in_node && cstr(blob, strings + nameoff, 255) == Some(name) {
                        return at + 12;
                    }
                    at += 12 + len.next_multiple_of(4);
                }
                _ => at += 4,
            }
        }
        panic!("{node}/{name} not found")
    }

    #[test]
    fn bad_cell_counts_are_named() {
        let at = value_offset(GICV2, "", "#address-cells");
        let mut b = GICV2.to_vec();
        b[at..at + 4].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(
            normalize(&b),
            Err(DtbError::BadCells("#address-cells", 9, _))
        ));
        let mut b = GICV2.to_vec();
        let at = value_offset(GICV2, "", "#size-cells");
        b[at..at + 4].copy_from_slice(&7u32.to_be_bytes());
        assert!(normalize(&b).is_err());
    }

    #[test]
    fn property_length_past_the_block_is_an_error() {
        let at = value_offset(GICV2, "chosen", "stdout-path") - 8;
        let mut b = GICV2.to_vec();
        b[at..at + 4].copy_from_slice(&0x0100_0000u32.to_be_bytes());
        assert!(matches!(
            normalize(&b),
            Err(DtbError::PropertyOutOfRange(_))
        ));
        let mut b = GICV2.to_vec();
        b[at + 4..at + 8].copy_from_slice(&0x0100_0000u32.to_be_bytes());
        assert!(matches!(normalize(&b), Err(DtbError::BadName(_))));
    }

    #[test]
    fn deep_nesting_is_refused() {
        // A root with MAX_DEPTH + 1 nested "a" nodes.
        let mut st = vec![];
        for depth in 0..=MAX_DEPTH + 1 {
            st.extend_from_slice(&BEGIN_NODE.to_be_bytes());
            st.extend_from_slice(if depth == 0 { &[0; 4] } else { b"a\0\0\0" });
        }
        for _ in 0..=MAX_DEPTH + 1 {
            st.extend_from_slice(&END_NODE.to_be_bytes());
        }
        st.extend_from_slice(&END.to_be_bytes());
        let blob = assemble(&[], &st, b"", 17).unwrap();
        assert_eq!(normalize(&blob), Err(DtbError::TooDeep));
    }
}
