//! The loader's report: what the firmware said, one fact per line.
//!
//! With `probe` on the command line the report is printed on the firmware
//! console and handed to the kernel in the device tree (`/chosen/capstan,probe`),
//! which prints it again on its own UART with `probe: firmware:` in front — one
//! boot on a Parallels or VMware VM then answers what cannot be tested here.
//! The raw tables follow as `acpi-dump` lines in the format of the test
//! fixtures (`acpi::dump`), so a report can become a new fixture.

use alloc::string::String;
use core::fmt::{self, Write};

/// Appends one line.
pub fn line(report: &mut String, args: fmt::Arguments<'_>) {
    let _ = report.write_fmt(args);
    report.push('\n');
}
