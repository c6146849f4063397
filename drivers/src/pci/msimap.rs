//! MSI routing: the host bridge's DT `msi-map` from requester ID to DeviceID.
//!
//! An ITS identifies the writer of an MSI by a DeviceID, which the platform
//! derives from the PCI requester ID (bus << 8 | device << 3 | function). The
//! device tree says how in the host bridge's `msi-map` (Linux
//! `Documentation/devicetree/bindings/pci/pci-msi.txt`): tuples
//! `<rid-base msi-controller msi-base length>`, with the requester ID first
//! masked by `msi-map-mask`. QEMU `virt` has `msi-map = <0 &its 0 0x10000>`,
//! the identity. A bridge without `msi-map` passes requester IDs through.

use heapless::Vec;

/// Most `msi-map` entries kept.
pub const MAX_ENTRIES: usize = 16;

/// Why an `msi-map` was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsiMapError {
    /// Not a whole number of 4-cell tuples, or a mask that is not one cell.
    Malformed,
    /// An entry of length 0, or one that runs past RID 0xffff or DeviceID 2^32.
    BadEntry,
    /// More than [`MAX_ENTRIES`] entries.
    TooMany,
}

impl core::fmt::Display for MsiMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MsiMapError::Malformed => "malformed",
            MsiMapError::BadEntry => "an entry is empty or runs past the last ID",
            MsiMapError::TooMany => "too many entries",
        })
    }
}

/// One `<rid-base msi-controller msi-base length>` tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMapEntry {
    /// First requester ID covered.
    pub rid_base: u32,
    /// Phandle of the MSI controller (the ITS).
    pub controller: u32,
    /// DeviceID of `rid_base`.
    pub msi_base: u32,
    /// Requester IDs covered.
    pub len: u32,
}

/// A decoded `msi-map`, or the identity when the bridge has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsiMap {
    entries: Option<Vec<MsiMapEntry, MAX_ENTRIES>>,
    mask: u32,
}

fn cell(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl MsiMap {
    /// Requester ID = DeviceID (no `msi-map`).
    pub const fn identity() -> Self {
        MsiMap {
            entries: None,
            mask: 0xffff,
        }
    }

    /// Decodes `msi-map` bytes and the optional `msi-map-mask` bytes.
    pub fn parse(map: &[u8], mask: Option<&[u8]>) -> Result<Self, MsiMapError> {
        if !map.len().is_multiple_of(16) || mask.is_some_and(|m| m.len() != 4) {
            return Err(MsiMapError::Malformed);
        }
        let mut entries = Vec::new();
        for t in map.chunks_exact(16) {
            let e = MsiMapEntry {
                rid_base: cell(&t[0..]),
                controller: cell(&t[4..]),
                msi_base: cell(&t[8..]),
                len: cell(&t[12..]),
            };
            let rid_end = u64::from(e.rid_base) + u64::from(e.len);
            if e.len == 0 || rid_end > 0x1_0000 || e.msi_base.checked_add(e.len - 1).is_none() {
                return Err(MsiMapError::BadEntry);
            }
            entries.push(e).map_err(|_| MsiMapError::TooMany)?;
        }
        Ok(MsiMap {
            entries: Some(entries),
            mask: mask.map_or(0xffff, cell),
        })
    }

    /// The DeviceID (and controller phandle, `None` for the identity map) of
    /// requester ID `rid`; `None` if the map has no entry for it (no MSIs).
    pub fn device_id(&self, rid: u16) -> Option<(u32, Option<u32>)> {
        let rid = u32::from(rid) & self.mask;
        let Some(entries) = &self.entries else {
            return Some((rid, None));
        };
        entries
            .iter()
            .find(|e| rid >= e.rid_base && rid - e.rid_base < e.len)
            .map(|e| (e.msi_base + (rid - e.rid_base), Some(e.controller)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[u32]) -> std::vec::Vec<u8> {
        v.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    #[test]
    fn qemu_identity_map() {
        let m = MsiMap::parse(&cells(&[0, 0x8005, 0, 0x1_0000]), None).unwrap();
        assert_eq!(m.device_id(0x0010), Some((0x10, Some(0x8005))));
        assert_eq!(m.device_id(0xffff), Some((0xffff, Some(0x8005))));
        assert_eq!(MsiMap::identity().device_id(0x0130), Some((0x130, None)));
    }

    #[test]
    fn offsets_mask_and_holes() {
        // Bus 1 goes to DeviceIDs from 0x1000; bus 0 is not mapped at all.
        let map = cells(&[0x100, 7, 0x1000, 0x100, 0x200, 9, 0, 8]);
        let m = MsiMap::parse(&map, None).unwrap();
        assert_eq!(m.device_id(0x0108), Some((0x1008, Some(7))));
        assert_eq!(m.device_id(0x0207), Some((7, Some(9))));
        assert_eq!(m.device_id(0x0208), None);
        assert_eq!(m.device_id(0x0010), None);
        // A mask that drops the function number.
        let m = MsiMap::parse(&map, Some(&cells(&[0xfff8]))).unwrap();
        assert_eq!(m.device_id(0x010f), Some((0x1008, Some(7))));
    }

    #[test]
    fn malformed_maps_are_errors() {
        assert_eq!(MsiMap::parse(&[0; 12], None), Err(MsiMapError::Malformed));
        let ok = cells(&[0, 1, 0, 16]);
        assert_eq!(
            MsiMap::parse(&ok, Some(&[0; 8])),
            Err(MsiMapError::Malformed)
        );
        let zero = cells(&[0, 1, 0, 0]);
        assert_eq!(MsiMap::parse(&zero, None), Err(MsiMapError::BadEntry));
        let past_rids = cells(&[0xff00, 1, 0, 0x200]);
        assert_eq!(MsiMap::parse(&past_rids, None), Err(MsiMapError::BadEntry));
        let past_ids = cells(&[0, 1, u32::MAX, 2]);
        assert_eq!(MsiMap::parse(&past_ids, None), Err(MsiMapError::BadEntry));
        let many: std::vec::Vec<u32> = (0..17).flat_map(|i| [i, 1, i, 1]).collect();
        assert_eq!(
            MsiMap::parse(&cells(&many), None),
            Err(MsiMapError::TooMany)
        );
    }
}
