//! The virtio-net header (virtio 1.2 §5.1.6): what the device wrote in front of a
//! received packet, checked; what the driver writes in front of a transmitted one.
//!
//! With the checksum and segmentation offloads negotiated, the header carries meaning
//! the kernel acts on: "this checksum is only the pseudo-header sum, the data never
//! crossed a wire" (`NEEDS_CSUM`), "the device checked it" (`DATA_VALID`), "this is a
//! TCP segment of up to 64 KiB" (`GSO_TCPV4`). The device writes it, so every field is
//! validated against what was negotiated before the packet goes anywhere: a flag or
//! segmentation type we did not ask for, a segment without a partial checksum, or a
//! checksum position outside the packet is a malformed packet, counted and dropped.

/// `flags`: the transport checksum is partial (pseudo-header only); compute it at
/// `csum_start + csum_offset` over the bytes from `csum_start` on.
pub const NEEDS_CSUM: u8 = 1;
/// `flags`: the device validated the transport checksum.
pub const DATA_VALID: u8 = 2;
/// `gso_type`: not a segmentation-offload packet.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: a TCP/IPv4 segment larger than the MTU (`GUEST_TSO4` / `HOST_TSO4`).
pub const GSO_TCPV4: u8 = 1;

/// Offsets inside `struct virtio_net_hdr_v1`.
mod off {
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: usize = 2;
    pub const GSO_SIZE: usize = 4;
    pub const CSUM_START: usize = 6;
    pub const CSUM_OFFSET: usize = 8;
    pub const NUM_BUFFERS: usize = 10;
}

/// Which receive offloads were negotiated: what the device may put in a header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxOffloads {
    /// `GUEST_CSUM`: `NEEDS_CSUM` and `DATA_VALID` may be set.
    pub csum: bool,
    /// `GUEST_TSO4`: `gso_type` may be `GSO_TCPV4`.
    pub tso4: bool,
    /// `MRG_RXBUF`: `num_buffers` is meaningful (1..=queue size).
    pub mergeable: bool,
}

/// What the device says about a received packet's transport checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxCsum {
    /// Nothing: the receiver verifies it.
    Unchecked,
    /// `DATA_VALID`: the device verified it.
    Valid,
    /// `NEEDS_CSUM`: the field at `start + offset` holds only the pseudo-header sum (a
    /// packet from the host's own stack that never crossed a wire).
    Partial {
        /// Where the checksummed bytes start (the transport header), from the frame start.
        start: u16,
        /// Where the checksum field is, from `start`.
        offset: u16,
    },
}

/// A received packet's header, validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    /// The transport checksum's state.
    pub csum: RxCsum,
    /// `Some(mss)` for a `GSO_TCPV4` segment (a TCP segment larger than the MTU).
    pub gso_size: Option<u16>,
    /// The device's `hdr_len` hint for a segment (checked against the packet length).
    pub hdr_len: u16,
}

impl RxMeta {
    /// A plain packet: nothing offloaded.
    pub const PLAIN: RxMeta = RxMeta {
        csum: RxCsum::Unchecked,
        gso_size: None,
        hdr_len: 0,
    };
}

/// A header field the device had no business writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HdrError {
    /// Shorter than the negotiated header (or a packet shorter than an Ethernet header).
    Short,
    /// A packet gathered from several buffers longer than the largest one.
    Long,
    /// Unknown flags, flags without `GUEST_CSUM`, or both checksum flags at once.
    Flags(u8),
    /// A segmentation type that was not negotiated (or the ECN bit, never negotiated).
    GsoType(u8),
    /// A segment without `NEEDS_CSUM`, a zero `gso_size`, or `hdr_len` past the packet.
    Gso,
    /// `csum_start + csum_offset + 2` past the packet.
    CsumRange,
    /// `num_buffers` 0 or larger than the queue.
    NumBuffers(u16),
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Parses the header the device wrote (`hdr.len()` is the negotiated header length: 12,
/// or 10 for a legacy device without `MRG_RXBUF`). Returns the packet's metadata and its
/// `num_buffers` (1 when the field is absent or not meaningful). The checksum position is
/// checked against the packet length later ([`RxMeta::check_len`]): a merged packet's
/// length is known only once all its buffers are in.
pub fn parse_rx_header(
    hdr: &[u8],
    hdr_len: usize,
    offloads: RxOffloads,
    qsize: usize,
) -> Result<(RxMeta, u16), HdrError> {
    if hdr.len() < hdr_len || hdr_len < 10 {
        return Err(HdrError::Short);
    }
    let flags = hdr[off::FLAGS];
    let csum = match flags {
        0 => RxCsum::Unchecked,
        DATA_VALID if offloads.csum => RxCsum::Valid,
        NEEDS_CSUM if offloads.csum => RxCsum::Partial {
            start: le16(hdr, off::CSUM_START),
            offset: le16(hdr, off::CSUM_OFFSET),
        },
        f => return Err(HdrError::Flags(f)),
    };
    let gso_size = match hdr[off::GSO_TYPE] {
        GSO_NONE => None,
        GSO_TCPV4 if offloads.tso4 => {
            let size = le16(hdr, off::GSO_SIZE);
            if size == 0 || !matches!(csum, RxCsum::Partial { .. }) {
                return Err(HdrError::Gso);
            }
            Some(size)
        }
        t => return Err(HdrError::GsoType(t)),
    };
    let num_buffers = if offloads.mergeable && hdr_len >= 12 {
        match le16(hdr, off::NUM_BUFFERS) {
            0 => return Err(HdrError::NumBuffers(0)),
            n if usize::from(n) > qsize => return Err(HdrError::NumBuffers(n)),
            n => n,
        }
    } else {
        1
    };
    let hdr_len = if gso_size.is_some() {
        le16(hdr, off::HDR_LEN)
    } else {
        0
    };
    Ok((
        RxMeta {
            csum,
            gso_size,
            hdr_len,
        },
        num_buffers,
    ))
}

impl RxMeta {
    /// Checks the checksum position and a segment's `hdr_len` against the packet's
    /// frame length.
    pub fn check_len(&self, frame_len: usize) -> Result<(), HdrError> {
        if usize::from(self.hdr_len) > frame_len {
            return Err(HdrError::Gso);
        }
        match self.csum {
            RxCsum::Partial { start, offset }
                if usize::from(start) + usize::from(offset) + 2 > frame_len =>
            {
                Err(HdrError::CsumRange)
            }
            _ => Ok(()),
        }
    }
}

/// What the driver asks the device to do with a transmitted frame's checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxCsum {
    /// The frame is complete as it is.
    None,
    /// `CSUM`: the field at `start + offset` holds the pseudo-header sum; the device sums
    /// the bytes from `start` to the end into it.
    Partial {
        /// Start of the checksummed bytes (the transport header), from the frame start.
        start: u16,
        /// The checksum field, from `start`.
        offset: u16,
    },
}

/// Writes the header for a transmitted frame into `hdr` (zeroed, then the checksum
/// request). `num_buffers` stays 0 (virtio 1.2 §5.1.6.2).
pub fn write_tx_header(hdr: &mut [u8], csum: TxCsum) {
    hdr.fill(0);
    if let TxCsum::Partial { start, offset } = csum {
        hdr[off::FLAGS] = NEEDS_CSUM;
        hdr[off::CSUM_START..off::CSUM_START + 2].copy_from_slice(&start.to_le_bytes());
        hdr[off::CSUM_OFFSET..off::CSUM_OFFSET + 2].copy_from_slice(&offset.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: RxOffloads = RxOffloads {
        csum: true,
        tso4: true,
        mergeable: true,
    };

    fn hdr(flags: u8, gso: u8, gso_size: u16, start: u16, offset: u16, nbuf: u16) -> [u8; 12] {
        let mut h = [0u8; 12];
        h[0] = flags;
        h[1] = gso;
        h[2..4].copy_from_slice(&54u16.to_le_bytes());
        h[4..6].copy_from_slice(&gso_size.to_le_bytes());
        h[6..8].copy_from_slice(&start.to_le_bytes());
        h[8..10].copy_from_slice(&offset.to_le_bytes());
        h[10..12].copy_from_slice(&nbuf.to_le_bytes());
        h
    }

    #[test]
    fn plain_valid_partial_and_segment_headers() {
        let p = |h: [u8; 12]| parse_rx_header(&h, 12, ALL, 256);
        assert_eq!(p(hdr(0, 0, 0, 0, 0, 1)), Ok((RxMeta::PLAIN, 1)));
        let valid = p(hdr(DATA_VALID, 0, 0, 0, 0, 3)).unwrap();
        let valid_meta = RxMeta {
            csum: RxCsum::Valid,
            ..RxMeta::PLAIN
        };
        assert_eq!(valid, (valid_meta, 3));
        let seg = p(hdr(NEEDS_CSUM, GSO_TCPV4, 1448, 34, 16, 17)).unwrap();
        let partial = RxCsum::Partial {
            start: 34,
            offset: 16,
        };
        let seg_meta = RxMeta {
            csum: partial,
            gso_size: Some(1448),
            hdr_len: 54,
        };
        assert_eq!(seg, (seg_meta, 17));
        assert_eq!(seg.0.check_len(54), Ok(()));
        assert_eq!(
            seg.0.check_len(53),
            Err(HdrError::Gso),
            "hdr_len past the packet"
        );
        let partial_only = RxMeta {
            csum: partial,
            ..RxMeta::PLAIN
        };
        assert_eq!(partial_only.check_len(52), Ok(()));
        assert_eq!(partial_only.check_len(51), Err(HdrError::CsumRange));
        // Without MRG_RXBUF num_buffers is not looked at.
        let no_mrg = RxOffloads {
            mergeable: false,
            ..ALL
        };
        assert_eq!(
            parse_rx_header(&hdr(0, 0, 0, 0, 0, 0), 12, no_mrg, 256),
            Ok((RxMeta::PLAIN, 1))
        );
        assert_eq!(
            parse_rx_header(&hdr(0, 0, 0, 0, 0, 0)[..10], 10, no_mrg, 256),
            Ok((RxMeta::PLAIN, 1))
        );
    }

    #[test]
    fn fields_the_device_was_not_allowed_to_write_are_errors() {
        let p = |h: [u8; 12], o: RxOffloads| parse_rx_header(&h, 12, o, 256);
        let none = RxOffloads {
            mergeable: true,
            ..RxOffloads::default()
        };
        assert_eq!(
            p(hdr(DATA_VALID, 0, 0, 0, 0, 1), none),
            Err(HdrError::Flags(DATA_VALID))
        );
        assert_eq!(
            p(hdr(NEEDS_CSUM, 0, 0, 34, 16, 1), none),
            Err(HdrError::Flags(NEEDS_CSUM))
        );
        assert_eq!(p(hdr(3, 0, 0, 0, 0, 1), ALL), Err(HdrError::Flags(3)));
        assert_eq!(p(hdr(4, 0, 0, 0, 0, 1), ALL), Err(HdrError::Flags(4)));
        let csum_only = RxOffloads { tso4: false, ..ALL };
        assert_eq!(
            p(hdr(NEEDS_CSUM, GSO_TCPV4, 1448, 34, 16, 1), csum_only),
            Err(HdrError::GsoType(1))
        );
        for t in [3, 4, 5, 0x81, 0x80] {
            assert_eq!(
                p(hdr(NEEDS_CSUM, t, 1448, 34, 16, 1), ALL),
                Err(HdrError::GsoType(t))
            );
        }
        assert_eq!(p(hdr(0, GSO_TCPV4, 1448, 0, 0, 1), ALL), Err(HdrError::Gso));
        assert_eq!(
            p(hdr(DATA_VALID, GSO_TCPV4, 1448, 0, 0, 1), ALL),
            Err(HdrError::Gso)
        );
        assert_eq!(
            p(hdr(NEEDS_CSUM, GSO_TCPV4, 0, 34, 16, 1), ALL),
            Err(HdrError::Gso)
        );
        let mut long = hdr(NEEDS_CSUM, GSO_TCPV4, 1448, 34, 16, 1);
        long[2..4].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(
            p(long, ALL).map(|(m, _)| m.check_len(9000)),
            Ok(Err(HdrError::Gso))
        );
        assert_eq!(p(hdr(0, 0, 0, 0, 0, 0), ALL), Err(HdrError::NumBuffers(0)));
        assert_eq!(
            p(hdr(0, 0, 0, 0, 0, 257), ALL),
            Err(HdrError::NumBuffers(257))
        );
        assert_eq!(
            parse_rx_header(&[0; 11], 12, ALL, 256),
            Err(HdrError::Short)
        );
        let far = RxMeta {
            csum: RxCsum::Partial {
                start: u16::MAX,
                offset: u16::MAX,
            },
            ..RxMeta::PLAIN
        };
        assert_eq!(
            far.check_len(usize::from(u16::MAX)),
            Err(HdrError::CsumRange)
        );
    }

    #[test]
    fn every_header_byte_pattern_parses_or_errs_without_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let h = seed.to_le_bytes();
            let mut b = [0u8; 12];
            b[..8].copy_from_slice(&h);
            b[8..].copy_from_slice(&h[..4]);
            if let Ok((meta, n)) = parse_rx_header(&b, 12, ALL, 256) {
                assert!((1..=256).contains(&n));
                let _ = meta.check_len(usize::from(b[3]) * 7);
            }
        }
    }

    #[test]
    fn tx_header_requests_a_partial_checksum() {
        let mut h = [0xffu8; 12];
        write_tx_header(&mut h, TxCsum::None);
        assert_eq!(h, [0; 12]);
        write_tx_header(
            &mut h,
            TxCsum::Partial {
                start: 34,
                offset: 16,
            },
        );
        assert_eq!(h, [NEEDS_CSUM, 0, 0, 0, 0, 0, 34, 0, 16, 0, 0, 0]);
    }
}
