//! ITS command encodings: 32-byte packets for the command queue.
//!
//! Software talks to a GICv3 ITS only through commands written to a ring in
//! memory (IHI 0069H §5.3). Each packet is four little-endian doublewords with
//! the command number in DW0[7:0]; the fields used here are DeviceID
//! (DW0[63:32]), EventID (DW1[31:0]), pINTID (DW1[63:32]), ICID (DW2[15:0]),
//! RDbase (DW2[50:16]), ITT_addr (DW2[51:8]), Size (DW1[4:0]) and Valid
//! (DW2[63]). Kept pure so the host tests pin every bit down.

/// Command numbers, IHI 0069H Table 5-5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// `INT`: make the LPI an event maps to pending (software-generated MSI).
    Int = 0x03,
    /// `SYNC`: wait until earlier effects on a redistributor are visible.
    Sync = 0x05,
    /// `MAPD`: map a DeviceID to an interrupt translation table (ITT).
    Mapd = 0x08,
    /// `MAPC`: map a collection to a redistributor.
    Mapc = 0x09,
    /// `MAPTI`: map (DeviceID, EventID) to an LPI and a collection.
    Mapti = 0x0a,
    /// `INV`: reload the configuration of the LPI an event maps to.
    Inv = 0x0c,
    /// `INVALL`: reload the configuration of every LPI of a collection.
    Invall = 0x0d,
    /// `DISCARD`: unmap an event and clear its LPI's pending state.
    Discard = 0x0f,
}

/// One command packet (four doublewords, DW0 first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command(pub [u64; 4]);

/// Size of one packet in the queue.
pub const COMMAND_BYTES: usize = 32;

const VALID: u64 = 1 << 63;
/// RDbase is DW2[50:16]: 35 bits.
const RDBASE_MASK: u64 = (1 << 35) - 1;

fn dw0(op: Opcode, device: u32) -> u64 {
    op as u64 | (u64::from(device) << 32)
}

impl Command {
    /// `MAPD` (§5.3.8): `event_bits` EventID bits (1..=32) in an ITT at `itt`
    /// (256-byte aligned; bits [51:8] are encoded), or unmap with `valid` false.
    pub fn mapd(device: u32, event_bits: u8, itt: u64, valid: bool) -> Self {
        let size = u64::from(event_bits.clamp(1, 32) - 1);
        let itt = itt & 0x000f_ffff_ffff_ff00;
        Command([
            dw0(Opcode::Mapd, device),
            size,
            itt | if valid { VALID } else { 0 },
            0,
        ])
    }

    /// `MAPC` (§5.3.9): collection `icid` targets `rdbase` (the redistributor's
    /// processor number when `GITS_TYPER.PTA` = 0).
    pub fn mapc(icid: u16, rdbase: u64, valid: bool) -> Self {
        let v = if valid { VALID } else { 0 };
        Command([
            Opcode::Mapc as u64,
            0,
            u64::from(icid) | ((rdbase & RDBASE_MASK) << 16) | v,
            0,
        ])
    }

    /// `MAPTI` (§5.3.11): (device, event) raises LPI `intid` on collection `icid`.
    pub fn mapti(device: u32, event: u32, intid: u32, icid: u16) -> Self {
        Command([
            dw0(Opcode::Mapti, device),
            u64::from(event) | (u64::from(intid) << 32),
            u64::from(icid),
            0,
        ])
    }

    /// `INV` (§5.3.6).
    pub fn inv(device: u32, event: u32) -> Self {
        Command([dw0(Opcode::Inv, device), u64::from(event), 0, 0])
    }

    /// `INVALL` (§5.3.7).
    pub fn invall(icid: u16) -> Self {
        Command([Opcode::Invall as u64, 0, u64::from(icid), 0])
    }

    /// `DISCARD` (§5.3.4).
    pub fn discard(device: u32, event: u32) -> Self {
        Command([dw0(Opcode::Discard, device), u64::from(event), 0, 0])
    }

    /// `INT` (§5.3.5).
    pub fn int(device: u32, event: u32) -> Self {
        Command([dw0(Opcode::Int, device), u64::from(event), 0, 0])
    }

    /// `SYNC` (§5.3.20) on the redistributor `rdbase`.
    pub fn sync(rdbase: u64) -> Self {
        Command([Opcode::Sync as u64, 0, (rdbase & RDBASE_MASK) << 16, 0])
    }

    /// The command number.
    pub fn opcode(&self) -> u8 {
        self.0[0] as u8
    }

    /// The packet as it goes into the queue (little-endian doublewords).
    pub fn to_bytes(self) -> [u8; COMMAND_BYTES] {
        let mut out = [0; COMMAND_BYTES];
        for (chunk, dw) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&dw.to_le_bytes());
        }
        out
    }

    /// Decodes a packet (the fake ITS in the tests reads the queue with it).
    pub fn from_bytes(b: &[u8; COMMAND_BYTES]) -> Self {
        let mut dws = [0u64; 4];
        for (dw, chunk) in dws.iter_mut().zip(b.chunks_exact(8)) {
            let mut le = [0; 8];
            le.copy_from_slice(chunk);
            *dw = u64::from_le_bytes(le);
        }
        Command(dws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapd_fields() {
        let c = Command::mapd(0x0010, 8, 0x4123_4500, true);
        assert_eq!(c.0[0], 0x0000_0010_0000_0008);
        assert_eq!(c.0[1], 7, "Size = EventID bits - 1");
        assert_eq!(c.0[2], (1 << 63) | 0x4123_4500);
        assert_eq!(c.0[3], 0);
        // Low address bits are not encodable; unmap clears V.
        let c = Command::mapd(3, 1, 0x4123_45ff, false);
        assert_eq!((c.0[1], c.0[2]), (0, 0x4123_4500));
    }

    #[test]
    fn mapc_mapti_sync_fields() {
        let c = Command::mapc(0, 1, true);
        assert_eq!(c.0, [0x09, 0, (1 << 63) | (1 << 16), 0]);
        let c = Command::mapti(0x18, 5, 8197, 0);
        assert_eq!(c.0, [0x0000_0018_0000_000a, (8197 << 32) | 5, 0, 0]);
        assert_eq!(Command::sync(2).0, [0x05, 0, 2 << 16, 0]);
        // RDbase is 35 bits: higher bits never leak into V.
        assert_eq!(Command::sync(u64::MAX).0[2] >> 51, 0);
    }

    #[test]
    fn inv_discard_int_fields() {
        assert_eq!(Command::inv(7, 3).0, [0x0000_0007_0000_000c, 3, 0, 0]);
        assert_eq!(Command::discard(7, 3).0, [0x0000_0007_0000_000f, 3, 0, 0]);
        assert_eq!(Command::int(7, 3).0, [0x0000_0007_0000_0003, 3, 0, 0]);
        assert_eq!(Command::invall(4).0, [0x0d, 0, 4, 0]);
        assert_eq!(Command::inv(7, 3).opcode(), Opcode::Inv as u8);
    }

    #[test]
    fn bytes_round_trip_little_endian() {
        let c = Command::mapti(0x0102_0304, 0x0506_0708, 0x2000, 9);
        let b = c.to_bytes();
        assert_eq!(b[0], 0x0a);
        assert_eq!(&b[4..8], &[0x04, 0x03, 0x02, 0x01]);
        assert_eq!(Command::from_bytes(&b), c);
    }
}
