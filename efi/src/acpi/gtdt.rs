//! GTDT: which interrupts the architected timers use (ACPI 6.5 §5.2.25).
//!
//! The kernel runs on the non-secure EL1 physical timer; the GTDT gives its
//! GSIV and mode. VMware does not deliver the virtual timer, so the kernel
//! never relies on it even though it is described.

use alloc::string::String;

use super::{AcpiError, Table, le32};
use crate::platform::{Gsi, Timer};
use crate::report::line;

fn gsi(t: &Table<'_>, at: usize) -> Gsi {
    let flags = le32(t.bytes, at + 4).unwrap_or(0);
    Gsi {
        gsiv: le32(t.bytes, at).unwrap_or(0),
        edge: flags & 1 != 0,
        active_low: flags & 2 != 0,
    }
}

/// The four timer interrupts (the table must reach the EL2 timer's flags, 80 bytes).
pub fn parse(t: &Table<'_>, report: &mut String) -> Result<Timer, AcpiError> {
    if t.bytes.len() < 80 {
        return Err(AcpiError::Truncated(t.sig));
    }
    let timer = Timer {
        secure: gsi(t, 48),
        ns_el1: gsi(t, 56),
        virt: gsi(t, 64),
        el2: gsi(t, 72),
    };
    line(
        report,
        format_args!(
            "gtdt secure {:?} ns-el1 {:?} virtual {:?} el2 {:?}",
            timer.secure, timer.ns_el1, timer.virt, timer.el2
        ),
    );
    if !(16..32).contains(&timer.ns_el1.gsiv) {
        return Err(AcpiError::Unsupported(
            "non-secure EL1 timer GSIV",
            timer.ns_el1.gsiv,
        ));
    }
    Ok(timer)
}
