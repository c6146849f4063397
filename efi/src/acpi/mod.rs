//! ACPI tables found from the RSDP, each checked before anything reads it.
//!
//! The firmware's tables are input the kernel does not control. The `acpi`
//! crate gives the table layouts (`SdtHeader`, `Madt` entries, `Spcr`, `Fadt`,
//! `McfgEntry`), but its own walkers trust lengths: a MADT entry of length 0
//! loops forever, one longer than the table underflows a counter and reads
//! past it, and `SdtHeader::validate` checksums whatever memory follows the
//! header. So the walk here is our own: every table is read only through a
//! [`Memory`] that returns `None` outside what the firmware's memory map
//! describes, its checksum is verified over its stated length, and every
//! sub-structure is bounds-checked and copied out (zero-padded, [`plain`])
//! before a field is read. A bad table is an error naming it, never a panic.
//! Spec: ACPI 6.5 §5.2.

pub mod gtdt;
pub mod iort;
pub mod madt;
pub mod pci;
pub mod plain;
pub mod serial;

use alloc::vec::Vec;
use core::fmt;

use alloc::string::String;
use core::fmt::Write as _;

use plain::Plain;

use crate::platform::Conduit;
use crate::report::line;

/// Physical memory as the loader can read it.
pub trait Memory {
    /// `len` bytes at physical address `addr`, if all of them lie in memory the
    /// firmware described (and, on the host, in the fixture).
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

/// Why the tables could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcpiError {
    /// No RSDP, or its signature or checksum is wrong.
    BadRsdp,
    /// A table header or body lies outside readable memory (signature if known).
    Unreadable([u8; 4], u64),
    /// A table's checksum does not add up.
    Checksum([u8; 4]),
    /// A table's length is shorter than its header or fixed part.
    Truncated([u8; 4]),
    /// A sub-structure (entry, node) runs past its table: table, offset.
    EntryOutOfRange([u8; 4], usize),
    /// A table the kernel cannot run without is missing.
    Missing([u8; 4]),
    /// A table names something the kernel does not drive (what, value).
    Unsupported(&'static str, u32),
}

/// A signature as text.
pub fn sig(s: &[u8; 4]) -> &str {
    core::str::from_utf8(s).unwrap_or("????")
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::BadRsdp => write!(f, "no valid RSDP (signature or checksum)"),
            AcpiError::Unreadable(s, a) => {
                write!(f, "{} table at {a:#x} is outside described memory", sig(s))
            }
            AcpiError::Checksum(s) => write!(f, "{} table has a bad checksum", sig(s)),
            AcpiError::Truncated(s) => write!(f, "{} table is shorter than its header", sig(s)),
            AcpiError::EntryOutOfRange(s, at) => {
                write!(
                    f,
                    "{} table: entry at offset {at:#x} runs past the table",
                    sig(s)
                )
            }
            AcpiError::Missing(s) => write!(f, "no {} table", sig(s)),
            AcpiError::Unsupported(what, v) => write!(f, "unsupported {what} {v:#x}"),
        }
    }
}

/// One checked table: its signature, physical address and bytes (exactly its length).
#[derive(Clone, Copy)]
pub struct Table<'m> {
    /// Signature (`APIC`, `GTDT`, ...).
    pub sig: [u8; 4],
    /// Physical address.
    pub addr: u64,
    /// The whole table, header included.
    pub bytes: &'m [u8],
}

impl Table<'_> {
    /// The table's header fields.
    pub fn header(&self) -> acpi::sdt::SdtHeader {
        plain::read(self.bytes)
    }

    /// OEM ID and OEM table ID, trimmed.
    pub fn oem(&self) -> (&str, &str) {
        fn text(b: &[u8]) -> &str {
            core::str::from_utf8(b).unwrap_or("").trim_end()
        }
        (text(&self.bytes[10..16]), text(&self.bytes[16..24]))
    }

    /// The fixed-size structure `T` at `offset`, bounds-checked (zero-padded if the
    /// structure grew in a later ACPI revision than the table's).
    pub fn get<T: Plain>(&self, offset: usize, min_len: usize) -> Result<T, AcpiError> {
        self.bytes
            .get(offset..)
            .filter(|b| b.len() >= min_len)
            .map(plain::read)
            .ok_or(AcpiError::EntryOutOfRange(self.sig, offset))
    }
}

/// Every table the XSDT (or RSDT) lists, plus the DSDT the FADT points to.
pub struct Tables<'m> {
    /// RSDP revision (0: ACPI 1.0 with an RSDT).
    pub revision: u8,
    /// The RSDP's physical address.
    pub rsdp: u64,
    /// The RSDP's bytes (20 for revision 0, else its stated length).
    pub rsdp_bytes: &'m [u8],
    /// The XSDT (or RSDT).
    pub root: Table<'m>,
    /// The tables, in XSDT order, then the DSDT.
    pub list: Vec<Table<'m>>,
    /// Tables the XSDT lists that failed their checks (kept for the probe report).
    pub rejected: Vec<AcpiError>,
}

const HEADER: usize = 36;

fn checksum_ok(b: &[u8]) -> bool {
    b.iter().fold(0u8, |s, &x| s.wrapping_add(x)) == 0
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads and checks the table at `addr` (any signature).
pub fn table_at(mem: &dyn Memory, addr: u64) -> Result<Table<'_>, AcpiError> {
    let head = mem
        .read(addr, HEADER)
        .ok_or(AcpiError::Unreadable(*b"????", addr))?;
    let sig: [u8; 4] = [head[0], head[1], head[2], head[3]];
    let len = le32(head, 4).unwrap_or(0) as usize;
    if len < HEADER {
        return Err(AcpiError::Truncated(sig));
    }
    let bytes = mem
        .read(addr, len)
        .ok_or(AcpiError::Unreadable(sig, addr))?;
    if !checksum_ok(bytes) {
        return Err(AcpiError::Checksum(sig));
    }
    Ok(Table { sig, addr, bytes })
}

impl<'m> Tables<'m> {
    /// Walks RSDP → XSDT (RSDT for revision 0) → tables, and the FADT's DSDT.
    pub fn new(mem: &'m dyn Memory, rsdp: u64) -> Result<Self, AcpiError> {
        let r = mem.read(rsdp, 20).ok_or(AcpiError::BadRsdp)?;
        if &r[..8] != b"RSD PTR " || !checksum_ok(r) {
            return Err(AcpiError::BadRsdp);
        }
        let revision = r[15];
        let (root, entry, rsdp_bytes) = if revision >= 2 {
            let r = mem.read(rsdp, 36).ok_or(AcpiError::BadRsdp)?;
            let len = le32(r, 20).unwrap_or(0) as usize;
            let full = mem.read(rsdp, len.max(36)).ok_or(AcpiError::BadRsdp)?;
            if !checksum_ok(full) {
                return Err(AcpiError::BadRsdp);
            }
            (le64(r, 24).unwrap_or(0), 8, full)
        } else {
            (u64::from(le32(r, 16).unwrap_or(0)), 4, r)
        };
        let root = table_at(mem, root)?;
        let mut list = Vec::new();
        let mut rejected = Vec::new();
        for ptr in root.bytes[HEADER..].chunks_exact(entry) {
            let addr = if entry == 8 {
                le64(ptr, 0)
            } else {
                le32(ptr, 0).map(u64::from)
            };
            match addr.map(|a| table_at(mem, a)) {
                Some(Ok(t)) => list.push(t),
                Some(Err(e)) => rejected.push(e),
                None => {}
            }
        }
        let mut tables = Tables {
            revision,
            rsdp,
            rsdp_bytes,
            root,
            list,
            rejected,
        };
        tables.add_dsdt(mem);
        Ok(tables)
    }

    fn add_dsdt(&mut self, mem: &'m dyn Memory) {
        let Some(fadt) = self.find(b"FACP") else {
            return;
        };
        let Ok(f) = fadt.get::<acpi::fadt::Fadt>(0, HEADER) else {
            return;
        };
        let Ok(addr) = f.dsdt_address() else { return };
        match table_at(mem, addr as u64) {
            Ok(t) if &t.sig == b"DSDT" => self.list.push(t),
            Ok(t) => self.rejected.push(AcpiError::Unsupported(
                "DSDT signature",
                u32::from_le_bytes(t.sig),
            )),
            Err(e) => self.rejected.push(e),
        }
    }

    /// The first table with signature `sig`.
    pub fn find(&self, sig: &[u8; 4]) -> Option<Table<'m>> {
        self.list.iter().find(|t| &t.sig == sig).copied()
    }

    /// The first table with signature `sig`, or [`AcpiError::Missing`] — or the
    /// reason it was rejected, if it was.
    pub fn require(&self, sig: &[u8; 4]) -> Result<Table<'m>, AcpiError> {
        self.find(sig).ok_or_else(|| {
            self.rejected
                .iter()
                .find(|e| {
                    matches!(e, AcpiError::Checksum(s) | AcpiError::Truncated(s)
                    | AcpiError::Unreadable(s, _) if s == sig)
                })
                .copied()
                .unwrap_or(AcpiError::Missing(*sig))
        })
    }
}

/// The PSCI conduit from the FADT's ARM boot flags (ACPI 6.5 §5.2.9, Table 5.11).
pub fn fadt_psci(tables: &Tables<'_>, report: &mut String) -> Option<Conduit> {
    let Some(f) = tables.find(b"FACP") else {
        line(report, format_args!("fadt: none"));
        return None;
    };
    let flags = u16::from_le_bytes([*f.bytes.get(129)?, *f.bytes.get(130)?]);
    line(
        report,
        format_args!("fadt arm-boot-flags {flags:#x} (1: PSCI, 2: use HVC)"),
    );
    match (flags & 1 != 0, flags & 2 != 0) {
        (true, true) => Some(Conduit::Hvc),
        (true, false) => Some(Conduit::Smc),
        _ => None,
    }
}

/// Each table's signature, address, length, revision and OEM.
pub fn report(t: &Tables<'_>, report: &mut String) {
    line(
        report,
        format_args!("acpi rsdp {:#x} revision {}", t.rsdp, t.revision),
    );
    for table in core::iter::once(&t.root).chain(&t.list) {
        let (oem, oem_table) = table.oem();
        line(
            report,
            format_args!(
                "acpi {} at {:#x} length {} revision {} oem \"{oem}\" \"{oem_table}\"",
                sig(&table.sig),
                table.addr,
                table.bytes.len(),
                table.bytes[8]
            ),
        );
    }
    for e in &t.rejected {
        line(report, format_args!("acpi rejected: {e}"));
    }
}

/// The RSDP, root table and every table as `acpi-dump` lines (24 bytes each: short
/// enough for an 80-column firmware console).
pub fn dump(t: &Tables<'_>, report: &mut String) {
    line(report, format_args!("acpi-rsdp {:#x}", t.rsdp));
    let blobs = [(t.rsdp, t.rsdp_bytes), (t.root.addr, t.root.bytes)];
    for (addr, bytes) in blobs
        .into_iter()
        .chain(t.list.iter().map(|t| (t.addr, t.bytes)))
    {
        for (i, chunk) in bytes.chunks(24).enumerate() {
            let _ = write!(report, "acpi-dump {:#x} ", addr + 24 * i as u64);
            for b in chunk {
                let _ = write!(report, "{b:02x}");
            }
            report.push('\n');
        }
    }
}
