//! `probe` on the command line: every platform fact the kernel found, printed.
//!
//! Parallels Desktop and VMware Fusion cannot be run here, so one boot there
//! with `probe` has to answer what the tests cannot: what the firmware said
//! (the report `capstan.efi` made from the UEFI memory map and the ACPI tables,
//! carried in `/chosen/capstan,probe`), what the kernel made of it, what the
//! GIC reports about itself, which MSI mechanism was chosen, the timer, the
//! UART, and every PCI function with its capabilities and interrupt modes.
//! Every line starts with `probe:` so the report can be cut out of a serial log
//! (docs/parallels-vmware.md says how to send it).

use drivers::pci::config::ConfigAccess;
use drivers::pci::scan::PciFunction;

use crate::arch::{cpu, devices, psci};
use crate::platform::{Gic, Platform, UartKind};
use crate::{irq, its, pci, println};

/// Prints the report (after PCI enumeration and interrupt set-up).
pub fn report(p: &Platform) {
    if let Some(text) = p.loader_report {
        for line in text.split(|&b| b == b'\n' || b == 0) {
            if let Ok(line) = core::str::from_utf8(line)
                && !line.is_empty()
            {
                println!("probe: firmware: {line}");
            }
        }
    }
    println!(
        "probe: kernel: {} at EL{}, boot CPU MPIDR {:#x}, counter {} Hz",
        p.model,
        cpu::current_el(),
        cpu::mpidr(),
        cpu::counter_frequency()
    );
    for r in &p.ram {
        println!(
            "probe: ram {:#x}..{:#x} ({} MiB)",
            r.start,
            r.end,
            r.len() >> 20
        );
    }
    for r in &p.reserved {
        println!("probe: reserved {:#x}..{:#x}", r.start, r.end);
    }
    let cpus: alloc::vec::Vec<_> = p.cpus.iter().map(|m| alloc::format!("{m:#x}")).collect();
    println!("probe: cpus (MPIDR) {}", cpus.join(" "));
    report_uart(p);
    report_gic(p);
    println!(
        "probe: timer: non-secure EL1 physical, INTID {} ({})",
        p.timer_irq.intid, p.timer_irq.trigger
    );
    match (p.psci, psci::version()) {
        (Some(m), Ok((major, minor))) => println!("probe: psci {major}.{minor} via {m}"),
        (Some(m), Err(e)) => println!("probe: psci via {m}: PSCI_VERSION failed ({e})"),
        (None, _) => println!("probe: psci: none"),
    }
    report_pci();
}

fn report_uart(p: &Platform) {
    let kind = match p.uart.kind {
        UartKind::Pl011 => alloc::string::String::from("PL011"),
        UartKind::Ns16550 { shift, width } => {
            alloc::format!("16550 (reg-shift {shift}, {width}-byte access)")
        }
    };
    match p.uart_irq {
        Some(i) => println!(
            "probe: uart {kind} at {:#x}, INTID {} ({})",
            p.uart.mmio.base, i.intid, i.trigger
        ),
        None => println!(
            "probe: uart {kind} at {:#x}, no interrupt",
            p.uart.mmio.base
        ),
    }
}

fn report_gic(p: &Platform) {
    match &p.gic {
        Gic::V2 { gicd, gicc, .. } => {
            println!(
                "probe: gic v2: GICD {:#x}, GICC {:#x}",
                gicd.base, gicc.base
            );
        }
        Gic::V3 { gicd, gicr, .. } => println!(
            "probe: gic v3: GICD {:#x}, GICR region {:#x} ({} KiB)",
            gicd.base,
            gicr.base,
            gicr.len >> 10
        ),
    }
    if let Some(chip) = irq::chip() {
        println!(
            "probe: gic reports version {}, INTIDs up to {}",
            chip.version(),
            chip.max_intid()
        );
    }
    if let Some(v3) = devices::gicv3() {
        println!(
            "probe: gic GICD_CTLR.DS = {} ({}), {}",
            u8::from(v3.security_disabled()),
            if v3.security_disabled() {
                "one security state"
            } else {
                "two security states: group 0 arrives as FIQ"
            },
            v3.lpi_id_bits()
                .map_or(alloc::string::String::from("no LPIs"), |b| alloc::format!(
                    "LPI ID bits {b}"
                ))
        );
    }
    for f in p.gic.v2m() {
        println!(
            "probe: gic v2m frame at {:#x}, SPIs {}",
            f.mmio.base,
            f.spis.map_or(
                alloc::string::String::from("from MSI_TYPER"),
                |(first, n)| { alloc::format!("{first}..{} from the tree", first + n) }
            )
        );
    }
    for f in p.gic.its() {
        println!("probe: gic its at {:#x}", f.base);
    }
    let msi = match (pci::msi_vectors(), its::vectors()) {
        (Some(v), Some(_)) if v.base() >= drivers::irqchip::its::FIRST_LPI => {
            alloc::format!("ITS LPIs {}..{}", v.base(), v.base() + v.count())
        }
        (Some(v), _) => alloc::format!("GICv2m SPIs {}..{}", v.base(), v.base() + v.count()),
        (None, _) => alloc::string::String::from("none (INTx only)"),
    };
    println!("probe: msi: {msi}");
}

fn report_pci() {
    let Some(bus) = pci::bus() else {
        return println!("probe: pci: none");
    };
    println!(
        "probe: pci: ECAM {:#x}, buses {}..={}, {} functions",
        bus.host.ecam_base,
        bus.host.bus_start,
        bus.host.bus_end,
        bus.functions.len()
    );
    for w in &bus.host.windows {
        println!(
            "probe: pci window {}{} PCI {:#x} = CPU {:#x}, {:#x} bytes",
            w.space,
            if w.prefetchable { " prefetchable" } else { "" },
            w.pci_base,
            w.cpu_base,
            w.size
        );
    }
    for f in &bus.functions {
        report_function(bus, f);
    }
}

fn report_function(bus: &pci::Pci, f: &PciFunction) {
    let mut modes = alloc::string::String::new();
    match &f.caps {
        Ok(c) => {
            if let Some(at) = c.msix {
                let table = (bus.ecam.read16(f.bdf, at + 2) & 0x7ff) + 1;
                modes += &alloc::format!(" MSI-X({table})");
            }
            if let Some(at) = c.msi {
                let ctl = bus.ecam.read16(f.bdf, at + 2);
                let bits = if ctl & 0x80 != 0 { 64 } else { 32 };
                modes += &alloc::format!(" MSI({}, {bits}-bit)", 1u32 << ((ctl >> 1) & 7));
            }
            if c.pcie.is_some() {
                modes += " PCIe";
            }
        }
        Err(e) => modes += &alloc::format!(" capabilities rejected ({e})"),
    }
    let intx = match f.intx_root {
        Some((root, pin)) => match bus.host.intx.route(root, pin) {
            Some((intid, trigger)) => {
                alloc::format!(
                    " INT{} -> INTID {intid} ({trigger})",
                    (b'A' + pin - 1) as char
                )
            }
            None => alloc::format!(" INT{} unrouted", (b'A' + pin - 1) as char),
        },
        None => alloc::string::String::new(),
    };
    println!(
        "probe: pci {} {:04x}:{:04x} class {:02x}.{:02x}.{:02x}{modes}{intx}",
        f.bdf, f.vendor, f.device, f.class, f.subclass, f.prog_if
    );
    for (i, bar) in f.bars.iter().enumerate().filter(|(_, b)| b.size > 0) {
        let space = bar.space.map_or("?", |s| match s {
            drivers::pci::bar::Space::Io => "I/O",
            drivers::pci::bar::Space::Mem32 => "mem32",
            drivers::pci::bar::Space::Mem64 => "mem64",
        });
        let at = bar
            .cpu_addr
            .map_or(alloc::string::String::from("unassigned"), |a| {
                alloc::format!("at {a:#x}")
            });
        println!(
            "probe: pci {}   BAR{i} {space}{} {:#x} bytes {at}",
            f.bdf,
            if bar.prefetchable {
                " prefetchable"
            } else {
                ""
            },
            bar.size,
        );
    }
}
