//! DNS outcomes as clear kernel errors, and the query retry schedule.
//!
//! Issue 6 wants NXDOMAIN, SERVFAIL, truncation and timeouts reported as
//! distinct errors. smoltcp's DNS socket (0.14) folds all of them into one
//! `GetQueryResultError::Failed` and ignores the TC bit, so the kernel glue that
//! wants the distinction reads the reply's header itself: `classify` checks the
//! 12-byte header (RFC 1035 §4.1.1) against the query it sent, and `Retry` says
//! how long to wait before resending and when to give up. Name compression,
//! records and CNAME chains stay with smoltcp's wire parser.
#![allow(
    dead_code,
    reason = "the API for the smoltcp glue, which is the next step; drop this then"
)]

use core::fmt;

/// Why a lookup produced no address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// RCODE 3: the name does not exist (RFC 1035 §4.1.1).
    NxDomain,
    /// RCODE 2: the server could not answer (often a broken upstream).
    ServFail,
    /// RCODE 5: the server refuses to answer us.
    Refused,
    /// RCODE 1 or 4: the server did not understand or implement the query.
    BadQuery,
    /// Any other non-zero RCODE.
    OtherRcode(u8),
    /// The TC bit: the answer did not fit in UDP (TCP fallback is not implemented).
    Truncated,
    /// The name exists but has no record of the asked type (RFC 2308 §2.2 NODATA).
    NoData,
    /// No usable reply after every retry.
    Timeout,
    /// A CNAME chain longer than the limit or looping.
    CnameLoop,
    /// The name is empty, has an empty or >63-byte label, or exceeds 253 bytes.
    BadName,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NxDomain => f.write_str("no such domain (NXDOMAIN)"),
            Self::ServFail => f.write_str("DNS server failure (SERVFAIL)"),
            Self::Refused => f.write_str("DNS query refused"),
            Self::BadQuery => f.write_str("DNS server rejected the query"),
            Self::OtherRcode(code) => write!(f, "DNS error code {code}"),
            Self::Truncated => f.write_str("DNS reply truncated (TCP fallback unsupported)"),
            Self::NoData => f.write_str("no DNS record of that type"),
            Self::Timeout => f.write_str("DNS query timed out"),
            Self::CnameLoop => f.write_str("CNAME chain too long or looping"),
            Self::BadName => f.write_str("invalid DNS name"),
        }
    }
}

impl core::error::Error for DnsError {}

/// What to do with a datagram received on the query's port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a reply to our query (wrong id, not a response, too short): keep
    /// waiting, since answering off-path junk with an error would let anyone
    /// who can send us a datagram fail our lookups.
    Ignore,
    /// A successful reply with this many answer records to parse.
    Answers(u16),
}

/// Header flag bits (RFC 1035 §4.1.1), in the second 16-bit word.
const QR: u16 = 1 << 15;
const TC: u16 = 1 << 9;
const OPCODE: u16 = 0xf << 11;
const RCODE: u16 = 0xf;

/// Checks a reply's header against the query id we sent.
pub fn classify(query_id: u16, reply: &[u8]) -> Result<Verdict, DnsError> {
    let word = |i: usize| u16::from_be_bytes([reply[i], reply[i + 1]]);
    if reply.len() < 12 || word(0) != query_id {
        return Ok(Verdict::Ignore);
    }
    let flags = word(2);
    if flags & QR == 0 || flags & OPCODE != 0 || word(4) != 1 {
        return Ok(Verdict::Ignore);
    }
    if flags & TC != 0 {
        return Err(DnsError::Truncated);
    }
    match (flags & RCODE) as u8 {
        0 if word(6) == 0 => Err(DnsError::NoData),
        0 => Ok(Verdict::Answers(word(6))),
        1 | 4 => Err(DnsError::BadQuery),
        2 => Err(DnsError::ServFail),
        3 => Err(DnsError::NxDomain),
        5 => Err(DnsError::Refused),
        code => Err(DnsError::OtherRcode(code)),
    }
}

/// Checks a host name before a query is built (RFC 1035 §2.3.4 limits).
pub fn check_name(name: &str) -> Result<(), DnsError> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| (1..=63).contains(&l.len());
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(DnsError::BadName);
    }
    Ok(())
}

/// Longest CNAME chain followed (dnsmasq and glibc stop around 8–16).
pub const MAX_CNAME_HOPS: u8 = 8;

/// Resend schedule: wait `first_ms`, doubling per attempt up to `cap_ms`, and
/// report `Timeout` after `attempts` sends (RFC 1536 §1 on backoff).
#[derive(Debug)]
pub struct Retry {
    attempts_left: u8,
    wait_ms: u64,
    cap_ms: u64,
}

impl Retry {
    /// The kernel's default: 4 sends, 500 ms doubling to 2 s (5.5 s worst case).
    pub const DEFAULT: Self = Self::new(4, 500, 2000);

    /// A schedule of `attempts` sends.
    pub const fn new(attempts: u8, first_ms: u64, cap_ms: u64) -> Self {
        Self {
            attempts_left: attempts,
            wait_ms: first_ms,
            cap_ms,
        }
    }

    /// Call before each send: how long to wait for its reply, or `Timeout` when
    /// every attempt is spent.
    pub fn send(&mut self) -> Result<u64, DnsError> {
        self.attempts_left = self.attempts_left.checked_sub(1).ok_or(DnsError::Timeout)?;
        let wait = self.wait_ms;
        self.wait_ms = self.wait_ms.saturating_mul(2).min(self.cap_ms);
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    fn reply(id: u16, flags: u16, qd: u16, an: u16) -> Vec<u8> {
        [id, flags, qd, an, 0, 0]
            .iter()
            .flat_map(|w| w.to_be_bytes())
            .collect()
    }

    #[test]
    fn rcodes_map_to_errors() {
        let ok = QR | 0x0100 | 0x0080;
        assert_eq!(classify(7, &reply(7, ok, 1, 2)), Ok(Verdict::Answers(2)));
        assert_eq!(classify(7, &reply(7, ok, 1, 0)), Err(DnsError::NoData));
        assert_eq!(
            classify(7, &reply(7, ok | 3, 1, 0)),
            Err(DnsError::NxDomain)
        );
        assert_eq!(
            classify(7, &reply(7, ok | 2, 1, 0)),
            Err(DnsError::ServFail)
        );
        assert_eq!(classify(7, &reply(7, ok | 5, 1, 0)), Err(DnsError::Refused));
        assert_eq!(
            classify(7, &reply(7, ok | 1, 1, 0)),
            Err(DnsError::BadQuery)
        );
        assert_eq!(
            classify(7, &reply(7, ok | 9, 1, 0)),
            Err(DnsError::OtherRcode(9))
        );
        assert_eq!(
            classify(7, &reply(7, ok | TC, 1, 1)),
            Err(DnsError::Truncated)
        );
    }

    #[test]
    fn foreign_datagrams_are_ignored() {
        assert_eq!(classify(7, &reply(8, QR | 3, 1, 0)), Ok(Verdict::Ignore));
        assert_eq!(classify(7, &reply(7, 3, 1, 0)), Ok(Verdict::Ignore));
        assert_eq!(
            classify(7, &reply(7, QR | 1 << 11, 1, 0)),
            Ok(Verdict::Ignore)
        );
        assert_eq!(classify(7, &reply(7, QR | 3, 2, 0)), Ok(Verdict::Ignore));
        assert_eq!(classify(7, &reply(7, QR, 1, 1)[..11]), Ok(Verdict::Ignore));
        assert_eq!(classify(7, &[]), Ok(Verdict::Ignore));
    }

    #[test]
    fn names() {
        assert_eq!(check_name("lab.capstan.test"), Ok(()));
        assert_eq!(check_name("lab.capstan.test."), Ok(()));
        let long_label = "a".repeat(64);
        for bad in ["", ".", "a..b", ".a", long_label.as_str()] {
            assert_eq!(check_name(bad), Err(DnsError::BadName), "{bad:?}");
        }
        let long_name = ["a"; 128].join(".");
        assert_eq!(check_name(&long_name), Err(DnsError::BadName));
    }

    #[test]
    fn retry_backoff_then_timeout() {
        let mut r = Retry::DEFAULT;
        let waits: Vec<u64> = core::iter::from_fn(|| r.send().ok()).collect();
        assert_eq!(waits, [500, 1000, 2000, 2000]);
        assert_eq!(r.send(), Err(DnsError::Timeout));
        assert_eq!(Retry::new(0, 1, 1).send(), Err(DnsError::Timeout));
        assert!(DnsError::NxDomain.to_string().contains("NXDOMAIN"));
    }
}
