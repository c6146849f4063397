//! The device tree the kernel boots with, written from a [`Description`].
//!
//! It follows the bindings the kernel's parser reads on QEMU's own trees
//! (`arm,gic-v3` / `arm,cortex-a15-gic` with `arm,gic-v3-its` and
//! `arm,gic-v2m-frame` children, `arm,armv8-timer`, `arm,psci-1.0`, `arm,pl011` /
//! `ns16550a`, `pci-host-ecam-generic` with `ranges`, `interrupt-map` and
//! `msi-map`), so the kernel has one boot protocol. `/memory` carries the usable
//! RAM from the final UEFI memory map, `/chosen` the command line, the console
//! and, with `probe`, the loader's report. Written after `ExitBootServices`:
//! nothing here allocates.

use crate::fdtw::{FdtWriter, Full};
use crate::platform::{Conduit, Description, GicVersion, Gsi, SerialKind};

/// The GIC's phandle; ITS nodes follow from 2.
const GIC_PHANDLE: u32 = 1;

fn hi(v: u64) -> u32 {
    (v >> 32) as u32
}

fn lo(v: u64) -> u32 {
    v as u32
}

/// DT interrupt flags for a GSI (IRQ_TYPE_*: 1 rising, 2 falling, 4 high, 8 low).
fn flags(g: Gsi) -> u32 {
    match (g.edge, g.active_low) {
        (true, false) => 1,
        (true, true) => 2,
        (false, false) => 4,
        (false, true) => 8,
    }
}

/// A 3-cell GIC specifier: PPI for GSIVs 16..32, SPI from 32.
fn spec(g: Gsi) -> [u32; 3] {
    if g.gsiv < 32 {
        [1, g.gsiv.saturating_sub(16), flags(g)]
    } else {
        [0, g.gsiv - 32, flags(g)]
    }
}

/// What goes into `/chosen` and `/memory` besides the description.
pub struct Boot<'a> {
    /// Usable RAM `[start, end)`.
    pub ram: &'a [(u64, u64)],
    /// The kernel command line.
    pub bootargs: &'a str,
    /// The loader's report, for `probe`.
    pub report: Option<&'a str>,
    /// `UEFI <vendor>` and revision, for the kernel's log.
    pub firmware: &'a str,
    /// The initial RAM disk `[start, end)`, if one was loaded.
    pub initrd: Option<(u64, u64)>,
}

/// Writes the tree into `buf`; returns its size.
pub fn write(d: &Description, boot: &Boot<'_>, buf: &mut [u8]) -> Result<usize, Full> {
    let mut w = FdtWriter::new(buf, &[])?;
    w.begin_node("")?;
    w.u32("#address-cells", 2)?;
    w.u32("#size-cells", 2)?;
    w.u32("interrupt-parent", GIC_PHANDLE)?;
    w.strings("compatible", &["capstan,acpi"])?;
    w.strings("model", &[&d.model])?;
    chosen(&mut w, d, boot)?;
    memory(&mut w, boot.ram)?;
    cpus(&mut w, d)?;
    if let Some(c) = d.psci {
        w.begin_node("psci")?;
        w.strings("compatible", &["arm,psci-1.0", "arm,psci-0.2"])?;
        w.strings("method", &[if c == Conduit::Hvc { "hvc" } else { "smc" }])?;
        w.end_node()?;
    }
    w.begin_node("timer")?;
    w.strings("compatible", &["arm,armv8-timer"])?;
    let t = d.timer;
    let cells = [t.secure, t.ns_el1, t.virt, t.el2]
        .into_iter()
        .flat_map(spec);
    w.cells_iter("interrupts", cells)?;
    w.flag("always-on")?;
    w.end_node()?;
    gic(&mut w, d)?;
    serial(&mut w, d)?;
    for bridge in 0..d.pci.len() {
        pci(&mut w, d, bridge)?;
    }
    w.end_node()?;
    w.finish()
}

fn node_name(prefix: &str, addr: u64) -> heapless::String<40> {
    let mut s = heapless::String::new();
    let _ = core::fmt::write(&mut s, format_args!("{prefix}@{addr:x}"));
    s
}

fn chosen(w: &mut FdtWriter<'_>, d: &Description, boot: &Boot<'_>) -> Result<(), Full> {
    w.begin_node("chosen")?;
    w.strings("bootargs", &[boot.bootargs])?;
    w.strings("stdout-path", &[&node_name("/serial", d.serial.base)])?;
    w.strings("capstan,firmware", &[boot.firmware])?;
    if let Some(r) = boot.report {
        w.prop("capstan,probe", r.as_bytes())?;
    }
    if let Some((start, end)) = boot.initrd {
        w.cells("linux,initrd-start", &[hi(start), lo(start)])?;
        w.cells("linux,initrd-end", &[hi(end), lo(end)])?;
    }
    w.end_node()
}

fn memory(w: &mut FdtWriter<'_>, ram: &[(u64, u64)]) -> Result<(), Full> {
    let first = ram.first().map_or(0, |r| r.0);
    w.begin_node(&node_name("memory", first))?;
    w.strings("device_type", &["memory"])?;
    let cells = ram
        .iter()
        .flat_map(|&(s, e)| [hi(s), lo(s), hi(e - s), lo(e - s)]);
    w.cells_iter("reg", cells)?;
    w.end_node()
}

fn cpus(w: &mut FdtWriter<'_>, d: &Description) -> Result<(), Full> {
    w.begin_node("cpus")?;
    w.u32("#address-cells", 2)?;
    w.u32("#size-cells", 0)?;
    for &mpidr in &d.cpus {
        w.begin_node(&node_name("cpu", mpidr))?;
        w.strings("device_type", &["cpu"])?;
        w.strings("compatible", &["arm,armv8"])?;
        w.cells("reg", &[hi(mpidr), lo(mpidr)])?;
        if d.psci.is_some() {
            w.strings("enable-method", &["psci"])?;
        }
        w.end_node()?;
    }
    w.end_node()
}

fn gic(w: &mut FdtWriter<'_>, d: &Description) -> Result<(), Full> {
    let g = &d.gic;
    w.begin_node(&node_name("interrupt-controller", g.gicd))?;
    w.u32("#interrupt-cells", 3)?;
    w.u32("#address-cells", 2)?;
    w.u32("#size-cells", 2)?;
    w.flag("ranges")?;
    w.flag("interrupt-controller")?;
    w.u32("phandle", GIC_PHANDLE)?;
    match g.version {
        GicVersion::V2 => {
            w.strings("compatible", &["arm,cortex-a15-gic"])?;
            w.cells(
                "reg",
                &[
                    hi(g.gicd),
                    lo(g.gicd),
                    0,
                    0x1_0000,
                    hi(g.gicc),
                    lo(g.gicc),
                    0,
                    0x2000,
                ],
            )?;
        }
        GicVersion::V3 => {
            w.strings("compatible", &["arm,gic-v3"])?;
            w.u32("#redistributor-regions", g.gicr.len() as u32)?;
            let regions = g
                .gicr
                .iter()
                .flat_map(|&(b, l)| [hi(b), lo(b), hi(l), lo(l)]);
            let cells = [hi(g.gicd), lo(g.gicd), 0, 0x1_0000]
                .into_iter()
                .chain(regions);
            w.cells_iter("reg", cells)?;
        }
    }
    for (i, &(_, base)) in g.its.iter().enumerate() {
        w.begin_node(&node_name("its", base))?;
        w.strings("compatible", &["arm,gic-v3-its"])?;
        w.flag("msi-controller")?;
        w.u32("#msi-cells", 1)?;
        w.u32("phandle", GIC_PHANDLE + 1 + i as u32)?;
        w.cells("reg", &[hi(base), lo(base), 0, 0x2_0000])?;
        w.end_node()?;
    }
    for f in &g.msi_frames {
        w.begin_node(&node_name("v2m", f.base))?;
        w.strings("compatible", &["arm,gic-v2m-frame"])?;
        w.flag("msi-controller")?;
        w.cells("reg", &[hi(f.base), lo(f.base), 0, 0x1000])?;
        if let Some((base, count)) = f.spis {
            w.u32("arm,msi-base-spi", u32::from(base))?;
            w.u32("arm,msi-num-spis", u32::from(count))?;
        }
        w.end_node()?;
    }
    w.end_node()
}

fn serial(w: &mut FdtWriter<'_>, d: &Description) -> Result<(), Full> {
    let s = d.serial;
    w.begin_node(&node_name("serial", s.base))?;
    match s.kind {
        SerialKind::Pl011 => {
            w.strings("compatible", &["arm,pl011", "arm,primecell"])?;
            w.cells("reg", &[hi(s.base), lo(s.base), 0, 0x1000])?;
        }
        SerialKind::Ns16550 { shift, width } => {
            w.strings("compatible", &["ns16550a"])?;
            w.cells("reg", &[hi(s.base), lo(s.base), 0, 0x1000])?;
            w.u32("reg-shift", u32::from(shift))?;
            w.u32("reg-io-width", u32::from(width))?;
        }
    }
    if let Some(irq) = s.irq {
        w.cells("interrupts", &spec(irq))?;
    }
    w.end_node()
}

fn pci(w: &mut FdtWriter<'_>, d: &Description, i: usize) -> Result<(), Full> {
    let b = &d.pci[i];
    let first = b.ecam + (u64::from(b.bus_start) << 20);
    let size = (u64::from(b.bus_end) - u64::from(b.bus_start) + 1) << 20;
    w.begin_node(&node_name("pcie", first))?;
    w.strings("compatible", &["pci-host-ecam-generic"])?;
    w.strings("device_type", &["pci"])?;
    w.u32("#address-cells", 3)?;
    w.u32("#size-cells", 2)?;
    w.u32("#interrupt-cells", 1)?;
    w.u32("linux,pci-domain", u32::from(b.segment))?;
    w.cells("reg", &[hi(first), lo(first), hi(size), lo(size)])?;
    w.cells("bus-range", &[u32::from(b.bus_start), u32::from(b.bus_end)])?;
    if !b.windows.is_empty() {
        let ranges = b.windows.iter().flat_map(|win| {
            let code = match (win.io, win.mem64) {
                (true, _) => 0x0100_0000,
                (false, false) => 0x0200_0000,
                (false, true) => 0x0300_0000,
            } | if win.prefetchable { 0x4000_0000 } else { 0 };
            [
                code,
                hi(win.pci),
                lo(win.pci),
                hi(win.cpu),
                lo(win.cpu),
                hi(win.size),
                lo(win.size),
            ]
        });
        w.cells_iter("ranges", ranges)?;
    }
    if !b.intx.is_empty() {
        w.cells("interrupt-map-mask", &[0xf800, 0, 0, 7])?;
        let map = b.intx.iter().flat_map(|r| {
            let [kind, num, fl] = spec(r.irq);
            [
                u32::from(r.dev) << 11,
                0,
                0,
                u32::from(r.pin),
                GIC_PHANDLE,
                0,
                0,
                kind,
                num,
                fl,
            ]
        });
        w.cells_iter("interrupt-map", map)?;
    }
    if !b.msi_map.is_empty() {
        let map = b.msi_map.iter().map(|m| {
            let its = d
                .gic
                .its
                .iter()
                .position(|(id, _)| *id == m.its)
                .unwrap_or(0);
            [
                m.rid_base,
                GIC_PHANDLE + 1 + its as u32,
                m.out_base,
                m.count,
            ]
        });
        w.cells_iter("msi-map", map.flatten())?;
    }
    w.flag("dma-coherent")?;
    w.end_node()
}
