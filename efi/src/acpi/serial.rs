//! The console UART: SPCR, else DBG2, else a UART device in the DSDT.
//!
//! SPCR (Microsoft's Serial Port Console Redirection table) names the port the
//! firmware itself used; DBG2 lists debug ports (Parallels has one but no
//! SPCR); both give an interface type (PL011, SBSA generic, or a 16550 variant
//! whose register stride and access width come from its Generic Address
//! Structure). The interrupt, when SPCR does not give it (DBG2 never does), is
//! taken from the DSDT device whose `_CRS` covers the same address.

use alloc::string::String;

use super::{AcpiError, Table, le32};
use crate::aml::resource::{self, Resource};
use crate::aml::{Namespace, Object, Value};
use crate::platform::{Gsi, Serial, SerialKind};
use crate::report::line;

/// The UART model for an SPCR/DBG2 interface type and its register access, or `None`
/// for one the kernel does not drive.
fn kind(interface: u8, bit_width: u8, access_size: u8) -> Option<SerialKind> {
    match interface {
        0x03 | 0x0d | 0x0e => Some(SerialKind::Pl011),
        0x00 | 0x01 | 0x12 => Some(SerialKind::Ns16550 {
            shift: if bit_width == 32 { 2 } else { 0 },
            width: if access_size == 3 { 4 } else { 1 },
        }),
        _ => None,
    }
}

/// A Generic Address Structure at `at`: (space, bit width, access size, address).
fn gas(b: &[u8], at: usize) -> Option<(u8, u8, u8, u64)> {
    let g = b.get(at..at + 12)?;
    Some((
        g[0],
        g[1],
        g[3],
        u64::from_le_bytes(g[4..12].try_into().ok()?),
    ))
}

fn from_spcr(t: &Table<'_>, report: &mut String) -> Result<Option<Serial>, AcpiError> {
    let spcr: acpi::spcr::Spcr = t.get(0, 80)?;
    let interface = t.bytes[36];
    let (space, bits, access, base) = gas(t.bytes, 40).ok_or(AcpiError::Truncated(t.sig))?;
    let gsiv = (t.bytes[52] & 0x08 != 0).then(|| le32(t.bytes, 54).unwrap_or(0));
    line(
        report,
        format_args!(
            "spcr interface {interface:#x} ({:?}) at {base:#x} space {space} width {bits} \
             access {access} interrupt-type {:#x} gsiv {gsiv:?} baud {:?}",
            spcr.interface_type(),
            t.bytes[52],
            spcr.baud_rate()
        ),
    );
    if space != 0 || base == 0 {
        return Ok(None);
    }
    Ok(kind(interface, bits, access).map(|kind| Serial {
        kind,
        base,
        irq: gsiv.map(|gsiv| Gsi {
            gsiv,
            edge: false,
            active_low: false,
        }),
        source: "SPCR",
    }))
}

fn from_dbg2(t: &Table<'_>, report: &mut String) -> Result<Option<Serial>, AcpiError> {
    let offset = le32(t.bytes, 36).ok_or(AcpiError::Truncated(t.sig))? as usize;
    let count = le32(t.bytes, 40).ok_or(AcpiError::Truncated(t.sig))?;
    let mut at = offset;
    for _ in 0..count.min(16) {
        let info = t
            .bytes
            .get(at..)
            .filter(|b| b.len() >= 22)
            .ok_or(AcpiError::EntryOutOfRange(t.sig, at))?;
        let len = usize::from(u16::from_le_bytes([info[1], info[2]]));
        let port_type = u16::from_le_bytes([info[12], info[13]]);
        let subtype = u16::from_le_bytes([info[14], info[15]]);
        let base_off = usize::from(u16::from_le_bytes([info[18], info[19]]));
        if len < 22 || at + len > t.bytes.len() {
            return Err(AcpiError::EntryOutOfRange(t.sig, at));
        }
        let reg = gas(&info[..len], base_off);
        line(
            report,
            format_args!("dbg2 port type {port_type:#x} subtype {subtype:#x} register {reg:x?}"),
        );
        if port_type == 0x8000
            && let Some((0, bits, access, base)) = reg
            && let Some(kind) = u8::try_from(subtype)
                .ok()
                .and_then(|s| kind(s, bits, access))
        {
            return Ok(Some(Serial {
                kind,
                base,
                irq: None,
                source: "DBG2",
            }));
        }
        at += len;
    }
    Ok(None)
}

/// Memory and interrupt resources of a DSDT device's static `_CRS`.
fn device_resources(ns: &Namespace<'_>, dev: &[crate::aml::Seg]) -> Option<(u64, Option<Gsi>)> {
    let Some(Object::Name(Value::Buffer(crs))) = ns.child(dev, b"_CRS") else {
        return None;
    };
    let list = resource::decode(crs)?;
    let base = list.iter().find_map(|r| match *r {
        Resource::Memory32 { base, .. } => Some(base),
        Resource::Address {
            min, translation, ..
        } => Some(min + translation),
        _ => None,
    })?;
    let irq = list.iter().find_map(|r| match *r {
        Resource::Interrupt {
            gsiv,
            edge,
            active_low,
        } => Some(Gsi {
            gsiv,
            edge,
            active_low,
        }),
        _ => None,
    });
    Some((base, irq))
}

/// PL011 (`ARMH0011`) and 16550 (`PNP0501` and friends) devices of the DSDT.
fn dsdt_uarts<'n>(
    ns: &'n Namespace<'_>,
) -> impl Iterator<Item = (SerialKind, u64, Option<Gsi>)> + 'n {
    let pl011 = ns
        .devices_with_id(&["ARMH0011", "ARMHB000"])
        .filter_map(|d| device_resources(ns, d))
        .map(|(b, i)| (SerialKind::Pl011, b, i));
    let ns16550 = ns
        .devices_with_id(&["PNP0501", "PNP0500", "HISI0031", "NXP0003"])
        .filter_map(|d| device_resources(ns, d))
        .map(|(b, i)| (SerialKind::Ns16550 { shift: 0, width: 1 }, b, i));
    pl011.chain(ns16550)
}

/// The console: SPCR, DBG2, then the DSDT; the interrupt filled in from the DSDT.
pub fn find(
    tables: &super::Tables<'_>,
    ns: &Namespace<'_>,
    report: &mut String,
) -> Result<Serial, AcpiError> {
    let mut found = match tables.find(b"SPCR") {
        Some(t) => from_spcr(&t, report)?,
        None => None,
    };
    if found.is_none()
        && let Some(t) = tables.find(b"DBG2")
    {
        found = from_dbg2(&t, report)?;
    }
    let mut serial = match found {
        Some(s) => s,
        None => {
            let (kind, base, irq) = dsdt_uarts(ns).next().ok_or(AcpiError::Missing(*b"SPCR"))?;
            Serial {
                kind,
                base,
                irq,
                source: "DSDT",
            }
        }
    };
    if serial.irq.is_none() {
        serial.irq = dsdt_uarts(ns)
            .find(|&(_, base, _)| base == serial.base)
            .and_then(|(_, _, irq)| irq);
    }
    line(report, format_args!("console {serial:?}"));
    Ok(serial)
}
