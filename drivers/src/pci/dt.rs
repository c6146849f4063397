//! Device-tree glue: the PCIe host bridge and GICv2m frames from an FDT.
//!
//! The parsers in [`super::bar`] and [`super::intx`] take raw property bytes so
//! they do not depend on any one DT library; this file finds the nodes with
//! the `fdt` crate and resolves the cell sizes they need (root
//! `#address-cells` for `reg`/`ranges`, the interrupt parent's
//! `#address-cells`/`#interrupt-cells` for `interrupt-map`). Bindings:
//! `pci-host-ecam-generic` (Linux `host-generic-pci.yaml`, with `msi-map` as
//! in `pci-msi.txt`) and
//! `arm,gic-v2m-frame` (Linux `arm,gic.yaml`, "v2m" sub-nodes).

use fdt::Fdt;
use fdt::node::FdtNode;
use heapless::Vec;

use super::intx::{IntxError, IntxMap};
use super::msimap::{MsiMap, MsiMapError};
use super::window::{MAX_WINDOWS, RangesError, Window, parse_ranges};

/// What the kernel needs to drive a `pci-host-ecam-generic` bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostBridge {
    /// ECAM physical base (first `reg` entry).
    pub ecam_base: u64,
    /// ECAM size in bytes.
    pub ecam_size: u64,
    /// First bus (`bus-range`, default 0).
    pub bus_start: u8,
    /// Last bus (`bus-range`, default 255).
    pub bus_end: u8,
    /// Forwarded windows from `ranges`.
    pub windows: Vec<Window, MAX_WINDOWS>,
    /// INTx routing from `interrupt-map` (empty if it was missing or rejected).
    pub intx: IntxMap,
    /// Why `interrupt-map` was not used, if it was not: INTx is then unavailable but
    /// the bridge still works with MSIs.
    pub intx_error: Option<DtError>,
    /// Requester ID → ITS DeviceID from `msi-map` (identity without one).
    pub msi_map: MsiMap,
}

/// Why the host bridge description was unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtError {
    /// No `pci-host-ecam-generic` node.
    NoHostBridge,
    /// A required property is missing or short.
    Missing(&'static str),
    /// `ranges` rejected.
    Ranges(RangesError),
    /// `interrupt-map` rejected.
    Intx(IntxError),
    /// `msi-map` rejected.
    MsiMap(MsiMapError),
}

impl core::fmt::Display for DtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtError::NoHostBridge => write!(f, "no PCI host bridge in the device tree"),
            DtError::Missing(prop) => write!(f, "{prop} property missing or short"),
            DtError::Ranges(e) => write!(f, "{e}"),
            DtError::Intx(e) => write!(f, "unusable interrupt-map: {e}"),
            DtError::MsiMap(e) => write!(f, "unusable msi-map: {e}"),
        }
    }
}

fn be_cells(bytes: &[u8], n: usize) -> Option<u64> {
    (0..n).try_fold(0u64, |acc, i| {
        let c = bytes.get(4 * i..4 * i + 4)?;
        Some(acc << 32 | u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    })
}

fn prop_u32(node: FdtNode<'_, '_>, name: &str) -> Option<u32> {
    node.property(name)
        .and_then(|p| be_cells(p.value, 1))
        .map(|v| v as u32)
}

fn compatible<'b, 'a>(fdt: &'b Fdt<'a>, compat: &str) -> impl Iterator<Item = FdtNode<'b, 'a>> {
    fdt.all_nodes()
        .filter(move |n| n.compatible().is_some_and(|c| c.all().any(|s| s == compat)))
}

/// Finds and decodes the first `pci-host-ecam-generic` node. The bridge is
/// assumed to sit directly under the root, as on QEMU `virt`.
pub fn host_bridge(fdt: &Fdt<'_>) -> Result<HostBridge, DtError> {
    let node = compatible(fdt, "pci-host-ecam-generic")
        .next()
        .ok_or(DtError::NoHostBridge)?;
    let root = fdt.root().cell_sizes();
    let (ac, sc) = (root.address_cells, root.size_cells);
    let reg = node.property("reg").ok_or(DtError::Missing("reg"))?.value;
    let ecam_base = be_cells(reg, ac).ok_or(DtError::Missing("reg"))?;
    let ecam_size =
        be_cells(reg.get(4 * ac..).unwrap_or(&[]), sc).ok_or(DtError::Missing("reg"))?;
    let bus = node.property("bus-range").map_or(&[][..], |p| p.value);
    let bus_start = be_cells(bus, 1).unwrap_or(0) as u8;
    let bus_end = bus.get(4..).and_then(|b| be_cells(b, 1)).unwrap_or(255) as u8;
    let ranges = node
        .property("ranges")
        .ok_or(DtError::Missing("ranges"))?
        .value;
    let own_size_cells = prop_u32(node, "#size-cells").unwrap_or(2) as usize;
    let windows = parse_ranges(ranges, ac, own_size_cells).map_err(DtError::Ranges)?;
    let (intx, intx_error) = match intx_map(fdt, node) {
        Ok(map) => (map, None),
        Err(e) => (IntxMap::empty(), Some(e)),
    };
    let msi_map = match node.property("msi-map") {
        Some(map) => MsiMap::parse(map.value, node.property("msi-map-mask").map(|p| p.value))
            .map_err(DtError::MsiMap)?,
        None => MsiMap::identity(),
    };
    Ok(HostBridge {
        ecam_base,
        ecam_size,
        bus_start,
        bus_end,
        windows,
        intx,
        intx_error,
        msi_map,
    })
}

/// The bridge's `interrupt-map` with its mask; absent means no INTx.
fn intx_map(fdt: &Fdt<'_>, node: FdtNode<'_, '_>) -> Result<IntxMap, DtError> {
    let Some(map) = node.property("interrupt-map") else {
        return Err(DtError::Missing("interrupt-map"));
    };
    let mask = node.property("interrupt-map-mask");
    let mask = mask.ok_or(DtError::Missing("interrupt-map-mask"))?.value;
    IntxMap::parse(map.value, mask, |phandle| {
        let parent = fdt.find_phandle(phandle)?;
        let addr = prop_u32(parent, "#address-cells").unwrap_or(0) as usize;
        let intr = prop_u32(parent, "#interrupt-cells")? as usize;
        Some((addr, intr))
    })
    .map_err(DtError::Intx)
}

/// One `arm,gic-v2m-frame` node: physical base and size of its register frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V2mFrameDt {
    /// Physical base.
    pub base: u64,
    /// Size (4 KiB on QEMU).
    pub size: u64,
}

/// All v2m frames (children of the GIC node, which on QEMU has
/// `#address-cells = #size-cells = 2`).
pub fn v2m_frames(fdt: &Fdt<'_>) -> Vec<V2mFrameDt, 4> {
    let mut out = Vec::new();
    for node in compatible(fdt, "arm,gic-v2m-frame") {
        let Some(reg) = node.property("reg") else {
            continue;
        };
        // The frame's cell sizes are its parent's (the GIC); fdt 0.1 does not
        // expose the parent, so use the GIC's, found by compatible.
        let gic = compatible(fdt, "arm,cortex-a15-gic")
            .chain(compatible(fdt, "arm,gic-400"))
            .next();
        let ac = gic.and_then(|g| prop_u32(g, "#address-cells")).unwrap_or(2) as usize;
        let sc = gic.and_then(|g| prop_u32(g, "#size-cells")).unwrap_or(2) as usize;
        let base = be_cells(reg.value, ac);
        let size = be_cells(reg.value.get(4 * ac..).unwrap_or(&[]), sc);
        if let (Some(base), Some(size)) = (base, size) {
            let _ = out.push(V2mFrameDt { base, size });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::bar::Space;

    const FIXTURE: &[u8] = include_bytes!("fixtures/virt-pci.dtb");
    const GICV3: &[u8] = include_bytes!("../../../scripts/fixtures/virt-gicv3.dtb");

    #[test]
    fn qemu_virt_host_bridge() {
        let fdt = Fdt::new(FIXTURE).unwrap();
        let hb = host_bridge(&fdt).unwrap();
        assert_eq!((hb.ecam_base, hb.ecam_size), (0x40_1000_0000, 0x1000_0000));
        assert_eq!((hb.bus_start, hb.bus_end), (0, 255));
        let spaces: std::vec::Vec<_> = hb.windows.iter().map(|w| w.space).collect();
        assert_eq!(spaces, [Space::Io, Space::Mem32, Space::Mem64]);
        assert_eq!(hb.windows[0].cpu_base, 0x3eff_0000);
        assert_eq!(hb.intx.entries().len(), 16);
        assert_eq!(hb.intx_error, None);
    }

    #[test]
    fn truncated_interrupt_map_leaves_a_bridge_without_intx() {
        // Cut the 16-entry interrupt-map's length field to 10 cells: the map is
        // rejected, the bridge (windows, ECAM, msi-map) is still usable.
        let mut blob = FIXTURE.to_vec();
        let name = b"interrupt-map\0";
        let strings = u32::from_be_bytes(blob[12..16].try_into().unwrap()) as usize;
        let nameoff = blob[strings..]
            .windows(name.len())
            .position(|w| w == name)
            .unwrap();
        let st = u32::from_be_bytes(blob[8..12].try_into().unwrap()) as usize;
        let at = (st..blob.len() - 12)
            .step_by(4)
            .find(|&at| {
                blob[at..at + 4] == [0, 0, 0, 3]
                    && blob[at + 8..at + 12] == (nameoff as u32).to_be_bytes()
            })
            .unwrap();
        blob[at + 4..at + 8].copy_from_slice(&40u32.to_be_bytes());
        // The rest of the old value must read as tokens: NOPs.
        let old = 16 * 4 * 10; // 16 entries of 10 cells
        for w in (at + 12 + 40..at + 12 + old).step_by(4) {
            blob[w..w + 4].copy_from_slice(&[0, 0, 0, 4]);
        }
        let hb = host_bridge(&Fdt::new(&blob).unwrap()).unwrap();
        assert!(hb.intx.entries().is_empty());
        // (The raw `fdt` crate stops at the NOPs, so the parent lookup fails first here;
        // the kernel's tests run the same cut through its normaliser and see Malformed.)
        assert!(matches!(hb.intx_error, Some(DtError::Intx(_))));
        assert_eq!(hb.windows.len(), 3);
    }

    #[test]
    fn qemu_virt_v2m_frame_only_with_gicv2() {
        let fdt = Fdt::new(FIXTURE).unwrap();
        let frames = v2m_frames(&fdt);
        assert_eq!(
            &frames[..],
            &[V2mFrameDt {
                base: 0x0802_0000,
                size: 0x1000
            }]
        );
        let v3 = Fdt::new(GICV3).unwrap();
        assert!(v2m_frames(&v3).is_empty());
        // The GICv3 dump routes INTx the same way (the ITS does MSI there).
        let hb = host_bridge(&v3).unwrap();
        assert_eq!(hb.intx.entries().len(), 16);
        // msi-map = <0 &its 0 0x10000>: requester ID = DeviceID.
        let (id, its) = hb.msi_map.device_id(0x0010).unwrap();
        assert_eq!(id, 0x10);
        assert!(its.is_some());
        assert_eq!(hb.msi_map.device_id(0xffff).map(|d| d.0), Some(0xffff));
        // The GICv2 machine maps to its v2m frame the same way (unused: v2m MSIs carry
        // the SPI, not a DeviceID).
        let v2 = host_bridge(&fdt).unwrap().msi_map;
        assert_eq!(v2.device_id(0x30).map(|d| d.0), Some(0x30));
    }

    #[test]
    fn errors_read_as_words() {
        use std::string::ToString;
        let e = DtError::Intx(IntxError::UnknownParent(0x8002));
        assert_eq!(
            e.to_string(),
            "unusable interrupt-map: an entry names an unknown interrupt parent (0x8002)"
        );
        assert_eq!(
            DtError::Ranges(RangesError::Malformed).to_string(),
            "malformed ranges property"
        );
        assert_eq!(
            DtError::Missing("reg").to_string(),
            "reg property missing or short"
        );
        assert_eq!(
            DtError::MsiMap(MsiMapError::TooMany).to_string(),
            "unusable msi-map: too many entries"
        );
    }
}
