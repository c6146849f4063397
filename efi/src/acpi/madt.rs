//! MADT (`APIC`): CPUs and the GIC (ACPI 6.5 §5.2.12).
//!
//! GICC entries give each CPU's MPIDR (and, on a GICv2, the CPU interface; on a
//! GICv3 without GICR entries, each CPU's redistributor), the GICD entry the
//! distributor and version, GICR entries the redistributor discovery ranges,
//! ITS entries the ITSes and MSI-frame entries the GICv2m frames — which
//! Parallels puts beside a GICv3. Each entry is checked against its minimum
//! length and the table end before it is read.

use alloc::string::String;
use heapless::Vec;

use acpi::madt::{
    GicInterruptTranslationServiceEntry, GicMsiFrameEntry, GicRedistributorEntry, GiccEntry,
    GicdEntry,
};

use super::{AcpiError, Table};
use crate::platform::{Gic, GicVersion, MsiFrame};
use crate::report::line;

/// What the MADT says.
pub struct Madt {
    /// MPIDRs of enabled CPUs.
    pub cpus: Vec<u64, 64>,
    /// The GIC.
    pub gic: Gic,
}

/// GICv3 redistributor frame sizes: RD + SGI (v3), plus VLPI + reserved (v4).
const GICR_V3_FRAME: u64 = 0x2_0000;

/// Walks the entries (after the 44-byte fixed part).
pub fn parse(t: &Table<'_>, report: &mut String) -> Result<Madt, AcpiError> {
    if t.bytes.len() < 44 {
        return Err(AcpiError::Truncated(t.sig));
    }
    let mut cpus = Vec::new();
    let mut gicd: Option<GicdEntry> = None;
    let mut gicc_base = 0;
    let mut per_cpu_gicr: Vec<u64, 64> = Vec::new();
    let mut gicr: Vec<(u64, u64), 8> = Vec::new();
    let mut its = Vec::new();
    let mut msi_frames = Vec::new();
    let mut at = 44;
    while at < t.bytes.len() {
        let (kind, len) = match t.bytes.get(at..at + 2) {
            Some(&[k, l]) if l >= 2 && at + usize::from(l) <= t.bytes.len() => (k, usize::from(l)),
            _ => return Err(AcpiError::EntryOutOfRange(t.sig, at)),
        };
        let body = &t.bytes[at..at + len];
        let short = || AcpiError::EntryOutOfRange(t.sig, at);
        match kind {
            0x0b => {
                // ACPI 5.1 GICC: 76 bytes (MPIDR at 68).
                let e: GiccEntry = (len >= 76)
                    .then(|| super::plain::read(body))
                    .ok_or_else(short)?;
                let (flags, mpidr) = ({ e.flags }, { e.mpidr });
                line(
                    report,
                    format_args!(
                        "madt gicc cpu-interface {} uid {} mpidr {mpidr:#x} flags {flags:#x} \
                         gicc {:#x} gicr {:#x}",
                        { e.cpu_interface_number },
                        { e.processor_uid },
                        { e.gic_registers_address },
                        { e.gicr_base_address }
                    ),
                );
                if flags & 1 != 0 && cpus.push(mpidr & 0xff_00ff_ffff).is_err() {
                    line(
                        report,
                        format_args!("madt: more than 64 CPUs, {mpidr:#x} ignored"),
                    );
                }
                if gicc_base == 0 {
                    gicc_base = e.gic_registers_address;
                }
                if { e.gicr_base_address } != 0 {
                    let _ = per_cpu_gicr.push(e.gicr_base_address);
                }
            }
            0x0c => {
                let e: GicdEntry = (len >= 24)
                    .then(|| super::plain::read(body))
                    .ok_or_else(short)?;
                line(
                    report,
                    format_args!(
                        "madt gicd base {:#x} version {}",
                        { e.physical_base_address },
                        e.gic_version
                    ),
                );
                gicd = Some(e);
            }
            0x0d => {
                let e: GicMsiFrameEntry = (len >= 24)
                    .then(|| super::plain::read(body))
                    .ok_or_else(short)?;
                let spis = ({ e.flags } & 1 != 0).then_some(({ e.spi_base }, { e.spi_count }));
                line(
                    report,
                    format_args!(
                        "madt msi-frame id {} base {:#x} spis {spis:?}",
                        { e.frame_id },
                        { e.physical_base_address }
                    ),
                );
                let _ = msi_frames.push(MsiFrame {
                    base: e.physical_base_address,
                    spis,
                });
            }
            0x0e => {
                let e: GicRedistributorEntry = (len >= 16)
                    .then(|| super::plain::read(body))
                    .ok_or_else(short)?;
                let (base, size) = (
                    e.discovery_range_base_address,
                    u64::from(e.discovery_range_length),
                );
                line(
                    report,
                    format_args!("madt gicr range {base:#x} length {size:#x}"),
                );
                let _ = gicr.push((base, size));
            }
            0x0f => {
                let e: GicInterruptTranslationServiceEntry = (len >= 20)
                    .then(|| super::plain::read(body))
                    .ok_or_else(short)?;
                line(
                    report,
                    format_args!("madt its id {} base {:#x}", { e.id }, {
                        e.physical_base_address
                    }),
                );
                let _ = its.push((e.id, e.physical_base_address));
            }
            other => line(
                report,
                format_args!("madt entry type {other:#x} length {len}"),
            ),
        }
        at += len;
    }
    let gicd = gicd.ok_or(AcpiError::Missing(*b"GICD"))?;
    let v3 = match gicd.gic_version {
        1 | 2 => false,
        3 | 4 => true,
        0 => !gicr.is_empty() || !per_cpu_gicr.is_empty(),
        v => return Err(AcpiError::Unsupported("GIC version", u32::from(v))),
    };
    if v3 && gicr.is_empty() {
        // No GICR entries: each CPU's frame from its GICC entry, merged where contiguous.
        let frame = if gicd.gic_version == 4 {
            2 * GICR_V3_FRAME
        } else {
            GICR_V3_FRAME
        };
        per_cpu_gicr.sort_unstable();
        for base in per_cpu_gicr {
            match gicr.last_mut() {
                Some((b, l)) if *b + *l == base => *l += frame,
                _ => {
                    let _ = gicr.push((base, frame));
                }
            }
        }
    }
    if v3 && gicr.is_empty() {
        return Err(AcpiError::Missing(*b"GICR"));
    }
    if !v3 && gicc_base == 0 {
        return Err(AcpiError::Missing(*b"GICC"));
    }
    Ok(Madt {
        cpus,
        gic: Gic {
            version: if v3 { GicVersion::V3 } else { GicVersion::V2 },
            gicd: gicd.physical_base_address,
            gicc: if v3 { 0 } else { gicc_base },
            gicr,
            its,
            msi_frames,
        },
    })
}
