//! The gate's drop reasons and their counters.
//!
//! Every frame the gate refuses is counted under one of these names, so "count, reject,
//! go on" can be checked from the outside: the monitor's `net` lists them and the lab
//! tests expect exact counts per reason.

/// Why a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Shorter than an Ethernet header.
    Runt = 0,
    /// Longer than the device may deliver (1518 bytes, or 64 KiB with mergeable buffers).
    Oversized = 1,
    /// IPv4 header shorter than 20 bytes, not version 4, or IHL out of range.
    IpHeader = 2,
    /// IPv4 header checksum wrong.
    IpChecksum = 3,
    /// IPv4 total length shorter than the header or longer than the frame.
    IpLength = 4,
    /// UDP/TCP/ICMP header truncated or its length fields inconsistent.
    L4Header = 5,
    /// UDP/TCP/ICMP checksum wrong.
    L4Checksum = 6,
    /// IPv4 options malformed (length, pointer, duplicate, timestamp overflow).
    IpOptions = 7,
    /// A loose or strict source route option.
    SourceRoute = 8,
    /// Source address that no host may send from: 0/8, 127/8, multicast, 240/4,
    /// broadcast, or our own address.
    MartianSource = 9,
    /// An echo request to a broadcast or multicast address.
    BroadcastEcho = 10,
    /// The device's checksum offload does not describe this packet (position, protocol,
    /// a segment that is not TCP).
    BadOffload = 11,
    /// An ARP packet that is not Ethernet/IPv4 ARP of the right length.
    ArpMalformed = 12,
    /// An ARP packet claiming our address from another MAC (answered by an announcement).
    ArpConflict = 13,
    /// A fragment that is not a multiple of 8 bytes (but the last) or is empty.
    FragMalformed = 14,
    /// Fragments that would reassemble past 65 535 bytes.
    FragOversized = 15,
    /// Fragments overlapping each other (the whole datagram is dropped, RFC 5722's rule).
    FragOverlap = 16,
    /// A datagram that was not complete before its reassembly timeout.
    FragTimeout = 17,
    /// A datagram evicted from a full reassembly table (a fragment flood).
    FragEvicted = 18,
}

impl Dropped {
    /// Number of reasons (size of a counter array).
    pub const COUNT: usize = 19;
    /// Every reason, in counter order.
    pub const ALL: [Dropped; Self::COUNT] = [
        Self::Runt,
        Self::Oversized,
        Self::IpHeader,
        Self::IpChecksum,
        Self::IpLength,
        Self::L4Header,
        Self::L4Checksum,
        Self::IpOptions,
        Self::SourceRoute,
        Self::MartianSource,
        Self::BroadcastEcho,
        Self::BadOffload,
        Self::ArpMalformed,
        Self::ArpConflict,
        Self::FragMalformed,
        Self::FragOversized,
        Self::FragOverlap,
        Self::FragTimeout,
        Self::FragEvicted,
    ];

    /// Short name for counters and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runt => "runt",
            Self::Oversized => "oversized",
            Self::IpHeader => "ip-header",
            Self::IpChecksum => "ip-checksum",
            Self::IpLength => "ip-length",
            Self::L4Header => "l4-header",
            Self::L4Checksum => "l4-checksum",
            Self::IpOptions => "ip-options",
            Self::SourceRoute => "source-route",
            Self::MartianSource => "martian-source",
            Self::BroadcastEcho => "broadcast-echo",
            Self::BadOffload => "bad-offload",
            Self::ArpMalformed => "arp-malformed",
            Self::ArpConflict => "arp-conflict",
            Self::FragMalformed => "frag-malformed",
            Self::FragOversized => "frag-oversized",
            Self::FragOverlap => "frag-overlap",
            Self::FragTimeout => "frag-timeout",
            Self::FragEvicted => "frag-evicted",
        }
    }
}

/// Dropped frames per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngressStats {
    /// Indexed by `Dropped as usize`.
    pub dropped: [u64; Dropped::COUNT],
}

impl Default for IngressStats {
    fn default() -> Self {
        Self::ZERO
    }
}

impl IngressStats {
    /// No drops.
    pub const ZERO: IngressStats = IngressStats {
        dropped: [0; Dropped::COUNT],
    };

    /// Counts one drop.
    pub fn count(&mut self, why: Dropped) {
        self.dropped[why as usize] += 1;
    }

    /// Drops for one reason.
    pub fn get(&self, why: Dropped) -> u64 {
        self.dropped[why as usize]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_count_by_reason() {
        let mut s = IngressStats::default();
        s.count(Dropped::Runt);
        s.count(Dropped::L4Checksum);
        s.count(Dropped::L4Checksum);
        assert_eq!((s.get(Dropped::Runt), s.get(Dropped::L4Checksum)), (1, 2));
        assert_eq!(s.total(), 3);
        for (i, d) in Dropped::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
    }
}
