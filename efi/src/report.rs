//! The loader's report: what the firmware said, one fact per line.
//!
//! With `probe` on the command line the report is printed on the firmware
//! console and handed to the kernel in the device tree (`/chosen/capstan,probe`),
//! which prints it again on its own UART with `probe: firmware:` in front — one
//! boot on a Parallels or VMware VM then answers what cannot be tested here.
//! The raw tables follow as `acpi-dump` lines in the format of the test
//! fixtures, so a report can become a new fixture.

use alloc::string::String;
use core::fmt::{self, Write};

use crate::acpi::{Tables, sig};

/// Appends one line.
pub fn line(report: &mut String, args: fmt::Arguments<'_>) {
    let _ = report.write_fmt(args);
    report.push('\n');
}

/// Each table's signature, address, length, revision and OEM.
pub fn tables(t: &Tables<'_>, report: &mut String) {
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
