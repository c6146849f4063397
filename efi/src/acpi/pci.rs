//! PCI host bridges: MCFG for ECAM, the DSDT for windows and INTx, the IORT for MSIs.
//!
//! The MCFG gives each segment's ECAM base and bus range (PCI Firmware 3.3
//! §4.1.2). The host bridge device (`PNP0A08`/`PNP0A03`) with the same `_SEG`
//! gives the windows in its `_CRS` and the INTx routing in its `_PRT`: entries
//! `{device << 16 | 0xFFFF, pin, source, index}`, where the source is 0 (then
//! the index is the GSIV) or a link device whose `_CRS` holds the interrupt
//! (ACPI 6.5 §6.2.13). Only static objects are read; a `_CRS` or `_PRT` that is
//! a method leaves the bridge without windows or INTx, with a note.

use alloc::string::String;
use heapless::Vec;

use super::AcpiError;
use crate::aml::resource::{self, Resource, Space};
use crate::aml::{Namespace, Object, PathDisplay, Seg, Value};
use crate::platform::{Gic, Gsi, HostBridge, IdMap, IntxRoute, Window};
use crate::report::line;

fn int(ns: &Namespace<'_>, dev: &[Seg], name: &Seg) -> Option<u64> {
    match ns.child(dev, name) {
        Some(Object::Name(Value::Int(v))) => Some(*v),
        _ => None,
    }
}

fn windows(ns: &Namespace<'_>, dev: &[Seg], report: &mut String) -> Vec<Window, 8> {
    let mut out = Vec::new();
    let crs = match ns.child(dev, b"_CRS") {
        Some(Object::Name(Value::Buffer(b))) => *b,
        other => {
            line(
                report,
                format_args!("pci {}: _CRS is {other:?}: no windows", PathDisplay(dev)),
            );
            return out;
        }
    };
    for r in resource::decode(crs).unwrap_or_default() {
        let Resource::Address {
            space,
            min,
            max,
            translation,
            len,
            wide,
        } = r
        else {
            continue;
        };
        let size = if len != 0 {
            len
        } else {
            max.wrapping_sub(min).wrapping_add(1)
        };
        let (io, prefetchable) = match space {
            Space::Io => (true, false),
            Space::Memory { prefetchable } => (false, prefetchable),
            Space::Bus => continue,
        };
        let w = Window {
            io,
            mem64: !io && (wide && max > u64::from(u32::MAX)),
            prefetchable,
            pci: min,
            cpu: min.wrapping_add(translation),
            size,
        };
        line(
            report,
            format_args!("pci {} window {w:x?}", PathDisplay(dev)),
        );
        let _ = out.push(w);
    }
    out
}

/// The interrupt a `_PRT` source names: a link device's `_CRS` (or `_PRS`).
fn link_irq(ns: &Namespace<'_>, dev: &[Seg], source: &Value<'_>, index: u64) -> Option<Gsi> {
    let Value::Name(name) = source else {
        return Some(Gsi {
            gsiv: u32::try_from(index).ok()?,
            edge: false,
            active_low: false,
        });
    };
    let link = ns.lookup(dev, name)?;
    [b"_CRS", b"_PRS"]
        .iter()
        .find_map(|n| match ns.child(&link, n) {
            Some(Object::Name(Value::Buffer(b))) => {
                resource::decode(b)?.into_iter().find_map(|r| match r {
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
                })
            }
            _ => None,
        })
}

fn intx(ns: &Namespace<'_>, dev: &[Seg], report: &mut String) -> Vec<IntxRoute, 128> {
    let mut out = Vec::new();
    let prt = match ns.child(dev, b"_PRT") {
        Some(Object::Name(Value::Package(p))) => p,
        other => {
            line(
                report,
                format_args!("pci {}: _PRT is {other:?}: no INTx", PathDisplay(dev)),
            );
            return out;
        }
    };
    let mut unrouted = 0;
    for entry in prt {
        let Value::Package(e) = entry else {
            unrouted += 1;
            continue;
        };
        let route = match e.as_slice() {
            [Value::Int(addr), Value::Int(pin), source, Value::Int(index)] if *pin < 4 => {
                link_irq(ns, dev, source, *index).map(|irq| IntxRoute {
                    dev: ((addr >> 16) & 0x1f) as u8,
                    pin: *pin as u8 + 1,
                    irq,
                })
            }
            _ => None,
        };
        match route {
            Some(r) if out.push(r).is_ok() => {}
            _ => unrouted += 1,
        }
    }
    line(
        report,
        format_args!(
            "pci {} _PRT: {} routes, {unrouted} unusable",
            PathDisplay(dev),
            out.len()
        ),
    );
    out
}

/// Every MCFG segment as a host bridge.
pub fn bridges(
    tables: &super::Tables<'_>,
    ns: &Namespace<'_>,
    maps: &[(u16, IdMap)],
    gic: &Gic,
    report: &mut String,
) -> Result<Vec<HostBridge, 4>, AcpiError> {
    let mut out = Vec::new();
    let Some(mcfg) = tables.find(b"MCFG") else {
        line(report, format_args!("mcfg: none (no PCI)"));
        return Ok(out);
    };
    for at in (44..mcfg.bytes.len()).step_by(16) {
        let e: acpi::mcfg::McfgEntry = mcfg.get(at, 16)?;
        let (segment, ecam, start, end) = (
            e.pci_segment_group,
            e.base_address,
            e.bus_number_start,
            e.bus_number_end,
        );
        line(
            report,
            format_args!("mcfg segment {segment} buses {start}..={end} ecam {ecam:#x}"),
        );
        let dev = ns
            .devices_with_id(&["PNP0A08", "PNP0A03"])
            .find(|d| int(ns, d, b"_SEG").unwrap_or(0) == u64::from(segment));
        let (windows, intx) = match dev {
            Some(d) => (windows(ns, d, report), intx(ns, d, report)),
            None => {
                line(
                    report,
                    format_args!("pci segment {segment}: no host bridge device in the DSDT"),
                );
                (Vec::new(), Vec::new())
            }
        };
        let mut msi_map = Vec::new();
        for (_, m) in maps.iter().filter(|(s, _)| *s == segment) {
            if gic.its.iter().any(|(id, _)| *id == m.its) {
                let _ = msi_map.push(*m);
            }
        }
        let _ = out.push(HostBridge {
            segment,
            ecam,
            bus_start: start,
            bus_end: end,
            windows,
            intx,
            msi_map,
        });
    }
    Ok(out)
}
