//! The machine as the kernel needs it, built from the ACPI tables.
//!
//! CPUs and the GIC from the MADT, the timer from the GTDT, the console from SPCR
//! (or DBG2, or the DSDT), PSCI from the FADT, PCI host bridges from the MCFG and
//! the DSDT (`_CRS` windows, `_PRT` INTx routes) and requester-ID → ITS DeviceID
//! maps from the IORT, into a [`Description`]. Missing essentials are an
//! [`AcpiError`]; what the kernel can do without (INTx, an IORT) is a note in the
//! report.

use alloc::string::String;

use crate::acpi::{AcpiError, Memory, Tables, gtdt, iort, madt, pci, serial};
use crate::aml::Namespace;
use crate::platform::Description;

/// Builds the description; `report` collects every fact and note, as text lines.
pub fn describe(
    mem: &dyn Memory,
    rsdp: u64,
    report: &mut String,
) -> Result<Description, AcpiError> {
    let tables = Tables::new(mem, rsdp)?;
    crate::acpi::report(&tables, report);
    let ns = tables
        .find(b"DSDT")
        .map(|t| Namespace::parse(&t.bytes[36..]))
        .unwrap_or_default();
    for note in &ns.notes {
        crate::report::line(report, format_args!("dsdt: {note}"));
    }
    let madt = madt::parse(&tables.require(b"APIC")?, report)?;
    let timer = gtdt::parse(&tables.require(b"GTDT")?, report)?;
    let serial = serial::find(&tables, &ns, report)?;
    let psci = crate::acpi::fadt_psci(&tables, report);
    let maps = match tables.find(b"IORT") {
        Some(t) => iort::parse(&t, report)?,
        None => {
            crate::report::line(report, format_args!("iort: none (requester ID = DeviceID)"));
            alloc::vec::Vec::new()
        }
    };
    let pci = pci::bridges(&tables, &ns, &maps, &madt.gic, report)?;
    let (oem, table) = tables.root.oem();
    let mut model = heapless::String::new();
    let _ = core::fmt::write(&mut model, format_args!("ACPI {oem} {table}"));
    Ok(Description {
        model,
        cpus: madt.cpus,
        gic: madt.gic,
        timer,
        serial,
        psci,
        pci,
    })
}
