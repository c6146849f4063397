//! DNS stub resolver logic: queries, reply checks, A/AAAA answers, retry schedule.
//!
//! Issue 6 wants A and AAAA lookups, and NXDOMAIN, SERVFAIL, truncation and timeouts
//! reported as distinct errors. smoltcp's DNS socket (0.14) folds every failure into
//! one `GetQueryResultError::Failed` and ignores the TC bit, and its record parser
//! knows AAAA only with `proto-ipv6`, which the stack does not enable (the lab is
//! IPv4; an AAAA answer is data to us). So the protocol lives here, without I/O:
//! `Query` builds the question and judges every datagram that reaches its port,
//! `wire` reads names and records, `Retry` says when to resend and when to give up.
//! `resolve` drives a lookup over any [`resolve::Transport`] (UDP with retries, TCP
//! when a reply comes truncated), so the program that does the I/O stays small. Being pure, all of it is host-tested, hostile
//! replies included: whatever arrives is ignored or becomes an error, never a panic
//! or a hang. Notes: docs/net.md ("DNS").
#![no_std]

extern crate alloc;

#[cfg(test)]
extern crate std;

pub mod resolve;
mod wire;

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use wire::HEADER_LEN;

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
    /// The TC bit: the answer did not fit in UDP (and, after the fallback to TCP, did
    /// not come whole there either).
    Truncated,
    /// The name exists but has no record of the asked type (RFC 2308 §2.2 NODATA).
    NoData,
    /// No usable reply after every retry.
    Timeout,
    /// A CNAME chain longer than the limit or looping.
    CnameLoop,
    /// The name is empty, has an empty or >63-byte label, or exceeds 253 bytes.
    BadName,
    /// A reply to our question whose records do not parse: counts beyond the end,
    /// wrong RDATA lengths, bad compression pointers, names over 255 octets.
    Malformed,
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NxDomain => f.write_str("no such domain (NXDOMAIN)"),
            Self::ServFail => f.write_str("DNS server failure (SERVFAIL)"),
            Self::Refused => f.write_str("DNS query refused"),
            Self::BadQuery => f.write_str("DNS server rejected the query"),
            Self::OtherRcode(code) => write!(f, "DNS error code {code}"),
            Self::Truncated => f.write_str("DNS reply truncated, also over TCP"),
            Self::NoData => f.write_str("no DNS record of that type"),
            Self::Timeout => f.write_str("DNS query timed out"),
            Self::CnameLoop => f.write_str("CNAME chain too long or looping"),
            Self::BadName => f.write_str("invalid DNS name"),
            Self::Malformed => f.write_str("malformed DNS reply"),
        }
    }
}

impl core::error::Error for DnsError {}

/// The record types a lookup can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    /// An IPv4 address, TYPE 1 (RFC 1035 §3.4.1).
    A,
    /// An IPv6 address, TYPE 28 (RFC 3596 §2.1).
    Aaaa,
}

impl RecordType {
    /// The TYPE/QTYPE value.
    pub const fn code(self) -> u16 {
        match self {
            Self::A => TYPE_A,
            Self::Aaaa => TYPE_AAAA,
        }
    }
}

const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// A successful lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved<T = IpAddr> {
    /// Addresses of the asked type, in the order the server sent them.
    pub addrs: Vec<T>,
    /// CNAME records followed from the asked name to the addresses.
    pub cnames: usize,
}

impl Resolved {
    /// The IPv4 addresses (for an A lookup, all of them).
    pub fn ipv4(self) -> Resolved<Ipv4Addr> {
        let pick = |a| match a {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        };
        Resolved {
            addrs: self.addrs.into_iter().filter_map(pick).collect(),
            cnames: self.cnames,
        }
    }

    /// The IPv6 addresses (for an AAAA lookup, all of them).
    pub fn ipv6(self) -> Resolved<Ipv6Addr> {
        let pick = |a| match a {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        };
        Resolved {
            addrs: self.addrs.into_iter().filter_map(pick).collect(),
            cnames: self.cnames,
        }
    }
}

/// What to do with a datagram received on the query's port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a reply to our query (wrong id or question, not a response, too short):
    /// keep waiting, since answering off-path junk with an error would let anyone
    /// who can send us a datagram fail our lookups (RFC 5452 §9.1).
    Ignore,
    /// The answer.
    Answer(Resolved),
}

/// Header flag bits (RFC 1035 §4.1.1), in the second 16-bit word.
const QR: u16 = 1 << 15;
const TC: u16 = 1 << 9;
const OPCODE: u16 = 0xf << 11;
const RCODE: u16 = 0xf;
/// RD, the only flag a stub resolver sets.
const RD: u16 = 1 << 8;

/// One question (RFC 1035 §4.1.2) with its id, and the judge of what comes back.
#[derive(Debug)]
pub struct Query {
    id: u16,
    qtype: RecordType,
    /// The whole message as sent: header, then the question.
    bytes: Vec<u8>,
}

impl Query {
    /// A recursive query for `name`'s records of `qtype`.
    pub fn new(id: u16, name: &str, qtype: RecordType) -> Result<Self, DnsError> {
        check_name(name)?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + name.len() + 6);
        for word in [id, RD, 1, 0, 0, 0] {
            bytes.extend_from_slice(&word.to_be_bytes()); // QDCOUNT 1, no records
        }
        wire::push_name(&mut bytes, name);
        bytes.extend_from_slice(&qtype.code().to_be_bytes());
        bytes.extend_from_slice(&CLASS_IN.to_be_bytes());
        Ok(Self { id, qtype, bytes })
    }

    /// The datagram to send (the same bytes, same id, for every retry).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The question section as sent.
    fn question(&self) -> &[u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }

    /// Judges a datagram from the server: a reply to this query gives its answer or
    /// its error; anything else is ignored.
    pub fn reply(&self, msg: &[u8]) -> Result<Verdict, DnsError> {
        let question = self.question();
        let Some(header) = msg.get(..HEADER_LEN) else {
            return Ok(Verdict::Ignore);
        };
        let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
        let flags = word(2);
        let echo = msg.get(HEADER_LEN..HEADER_LEN + question.len());
        if word(0) != self.id
            || flags & QR == 0
            || flags & OPCODE != 0
            || word(4) != 1
            || !echo.is_some_and(|echo| same_question(echo, question))
        {
            return Ok(Verdict::Ignore);
        }
        if flags & TC != 0 {
            return Err(DnsError::Truncated);
        }
        match (flags & RCODE) as u8 {
            0 if word(6) == 0 => Err(DnsError::NoData),
            0 => self
                .answer(msg, HEADER_LEN + question.len(), word(6))
                .map(Verdict::Answer),
            1 | 4 => Err(DnsError::BadQuery),
            2 => Err(DnsError::ServFail),
            3 => Err(DnsError::NxDomain),
            5 => Err(DnsError::Refused),
            code => Err(DnsError::OtherRcode(code)),
        }
    }

    /// Follows the answer section from the asked name through CNAMEs to records of
    /// the asked type (RFC 1034 §3.6.2, §5.3.3). Records owned by other names are
    /// ignored, whatever they claim; every record is still checked.
    fn answer(&self, msg: &[u8], first: usize, count: u16) -> Result<Resolved, DnsError> {
        let (mut owner, _) = wire::read_name(&self.bytes, HEADER_LEN)?;
        let mut cnames = 0;
        loop {
            let (addrs, alias) = self.scan(msg, first, count, &owner)?;
            if !addrs.is_empty() {
                return Ok(Resolved { addrs, cnames });
            }
            owner = alias.ok_or(DnsError::NoData)?;
            cnames += 1;
            if cnames > usize::from(MAX_CNAME_HOPS) {
                return Err(DnsError::CnameLoop);
            }
        }
    }

    /// One pass over the `count` answer records from offset `first`: the addresses
    /// of the asked type owned by `owner`, and its first CNAME target.
    fn scan(
        &self,
        msg: &[u8],
        first: usize,
        count: u16,
        owner: &wire::Name,
    ) -> Result<(Vec<IpAddr>, Option<wire::Name>), DnsError> {
        let (mut addrs, mut alias) = (Vec::new(), None);
        let mut at = first;
        for _ in 0..count {
            let (record, next) = wire::read_record(msg, at)?;
            at = next;
            if record.class != CLASS_IN {
                continue;
            }
            let data = wire::rdata(msg, &record);
            let addr = match record.rtype {
                TYPE_A => IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(data).map_err(|_| DnsError::Malformed)?,
                )),
                TYPE_AAAA => IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(data).map_err(|_| DnsError::Malformed)?,
                )),
                TYPE_CNAME => {
                    let target = wire::cname_target(msg, &record)?;
                    if record.owner == *owner && alias.is_none() {
                        alias = Some(target);
                    }
                    continue;
                }
                _ => continue,
            };
            if record.owner == *owner && record.rtype == self.qtype.code() {
                addrs.push(addr);
            }
        }
        Ok((addrs, alias))
    }
}

/// The reply's copy of the question matches ours: the name ASCII case-insensitively
/// (servers may keep or change case, RFC 4343), type and class exactly.
fn same_question(echo: &[u8], ours: &[u8]) -> bool {
    let name_len = ours.len().saturating_sub(4);
    echo.len() == ours.len()
        && echo[..name_len].eq_ignore_ascii_case(&ours[..name_len])
        && echo[name_len..] == ours[name_len..]
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
    /// The default: 4 sends, 500 ms doubling to 2 s (5.5 s worst case).
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
    use alloc::vec;

    const ID: u16 = 0x1234;
    /// The flags of a normal answer: QR, RD, RA.
    const OK: u16 = QR | RD | 0x0080;
    /// A compression pointer to the question's name (offset 12).
    const QNAME: &[u8] = &[0xc0, 12];

    fn name(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        wire::push_name(&mut v, s);
        v
    }

    /// One resource record, class IN, TTL 60.
    fn rr(owner: &[u8], rtype: u16, data: &[u8]) -> Vec<u8> {
        rr_class(owner, rtype, CLASS_IN, data)
    }

    fn rr_class(owner: &[u8], rtype: u16, class: u16, data: &[u8]) -> Vec<u8> {
        let mut v = owner.to_vec();
        for word in [rtype, class, 0, 60, data.len() as u16] {
            v.extend_from_slice(&word.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    /// A reply to `q` with these header fields, its question echoed, then `records`.
    fn reply_with(
        q: &Query,
        id: u16,
        flags: u16,
        qd: u16,
        an: u16,
        records: &[Vec<u8>],
    ) -> Vec<u8> {
        let mut m = Vec::new();
        for word in [id, flags, qd, an, 0, 0] {
            m.extend_from_slice(&word.to_be_bytes());
        }
        m.extend_from_slice(q.question());
        records.iter().for_each(|r| m.extend_from_slice(r));
        m
    }

    fn reply(q: &Query, flags: u16, records: &[Vec<u8>]) -> Vec<u8> {
        reply_with(q, ID, flags, 1, records.len() as u16, records)
    }

    fn a(q: &Query, records: &[Vec<u8>]) -> Result<Verdict, DnsError> {
        q.reply(&reply(q, OK, records))
    }

    fn addrs(v: Result<Verdict, DnsError>) -> Result<(Vec<IpAddr>, usize), DnsError> {
        match v? {
            Verdict::Answer(r) => Ok((r.addrs, r.cnames)),
            Verdict::Ignore => panic!("reply ignored"),
        }
    }

    fn v4(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(a))
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    const V6_1: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    fn lab(qtype: RecordType) -> Query {
        Query::new(ID, "lab.capstan.test", qtype).unwrap()
    }

    #[test]
    fn queries_carry_the_asked_type() {
        let q = lab(RecordType::A);
        let mut want = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        want.extend_from_slice(b"\x03lab\x07capstan\x04test\x00");
        want.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(q.bytes(), &want[..]);
        let aaaa = Query::new(ID, "lab.capstan.test.", RecordType::Aaaa).unwrap();
        let n = want.len();
        want[n - 3] = 28;
        assert_eq!(
            aaaa.bytes(),
            &want[..],
            "AAAA is QTYPE 28; a trailing dot changes nothing"
        );
        assert_eq!(
            Query::new(ID, "a..b", RecordType::A).unwrap_err(),
            DnsError::BadName
        );
    }

    #[test]
    fn rcodes_map_to_errors() {
        let q = lab(RecordType::A);
        let with = |flags| q.reply(&reply(&q, flags, &[]));
        assert_eq!(with(OK), Err(DnsError::NoData));
        assert_eq!(with(OK | 3), Err(DnsError::NxDomain));
        assert_eq!(with(OK | 2), Err(DnsError::ServFail));
        assert_eq!(with(OK | 5), Err(DnsError::Refused));
        assert_eq!(with(OK | 1), Err(DnsError::BadQuery));
        assert_eq!(with(OK | 4), Err(DnsError::BadQuery));
        assert_eq!(with(OK | 9), Err(DnsError::OtherRcode(9)));
        let full = reply(&q, OK | TC, &[rr(QNAME, TYPE_A, &[192, 0, 2, 1])]);
        assert_eq!(
            q.reply(&full),
            Err(DnsError::Truncated),
            "TC wins over a partial answer"
        );
    }

    #[test]
    fn foreign_datagrams_are_ignored() {
        let q = lab(RecordType::A);
        let rec = [rr(QNAME, TYPE_A, &[192, 0, 2, 66])];
        let ignored = |m: &[u8]| assert_eq!(q.reply(m), Ok(Verdict::Ignore), "{m:?}");
        ignored(&reply_with(&q, ID + 1, OK, 1, 1, &rec)); // mismatched id
        ignored(&reply_with(&q, ID, OK & !QR, 1, 1, &rec)); // a query, not a response
        ignored(&reply_with(&q, ID, OK | 1 << 11, 1, 1, &rec)); // opcode IQUERY
        ignored(&reply_with(&q, ID, OK | 3, 0, 0, &[])); // no question echoed
        ignored(&reply_with(&q, ID, OK, 2, 1, &rec)); // two questions
        let good = reply(&q, OK, &rec);
        for cut in 0..HEADER_LEN + q.question().len() {
            ignored(&good[..cut]); // header or question cut short
        }
        // The question echoed with another type, class or name.
        let aaaa = lab(RecordType::Aaaa);
        ignored(&reply(&aaaa, OK, &rec));
        let mut chaos = good.clone();
        chaos[HEADER_LEN + q.question().len() - 1] = 3;
        ignored(&chaos);
        let other = Query::new(ID, "lab.capstan.tesT", RecordType::A).unwrap();
        assert!(matches!(
            q.reply(&reply(&other, OK, &rec)),
            Ok(Verdict::Answer(_))
        ));
        let other = Query::new(ID, "lab.capstan.tess", RecordType::A).unwrap();
        ignored(&reply(&other, OK, &rec));
        // The echoed name as a compression pointer is not our question either.
        let mut m = good[..HEADER_LEN].to_vec();
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        ignored(&m);
    }

    #[test]
    fn a_and_aaaa_answers() {
        let q = lab(RecordType::A);
        let got = addrs(a(&q, &[rr(QNAME, TYPE_A, &[192, 0, 2, 1])]));
        assert_eq!(got, Ok((vec![v4([192, 0, 2, 1])], 0)));
        let q6 = lab(RecordType::Aaaa);
        let mut second = V6_1;
        second[15] = 0x11;
        let records = [
            rr(QNAME, TYPE_A, &[192, 0, 2, 1]), // not asked for: skipped
            rr(&name("LAB.capstan.test"), TYPE_AAAA, &V6_1),
            rr(QNAME, TYPE_AAAA, &second),
        ];
        let got = addrs(a(&q6, &records));
        assert_eq!(got, Ok((vec![v6("2001:db8::1"), v6("2001:db8::11")], 0)));
        let resolved = match q6.reply(&reply(&q6, OK, &records)) {
            Ok(Verdict::Answer(r)) => r,
            other => panic!("{other:?}"),
        };
        assert!(resolved.clone().ipv4().addrs.is_empty());
        assert_eq!(
            resolved.ipv6().addrs[1],
            "2001:db8::11".parse::<Ipv6Addr>().unwrap()
        );
        // Only an A record for an AAAA question: the name has no AAAA (NODATA).
        assert_eq!(
            a(&q6, &[rr(QNAME, TYPE_A, &[192, 0, 2, 1])]),
            Err(DnsError::NoData)
        );
    }

    /// www -> alias -> lab, the way dnsmasq sends it (owners compressed).
    fn chain(last: Vec<u8>) -> (Query, Vec<Vec<u8>>) {
        let q = Query::new(ID, "www.capstan.test", RecordType::Aaaa).unwrap();
        let records = vec![
            rr(QNAME, TYPE_CNAME, &name("alias.capstan.test")),
            rr(
                &name("alias.capstan.test"),
                TYPE_CNAME,
                &name("lab.capstan.test"),
            ),
            last,
        ];
        (q, records)
    }

    #[test]
    fn cname_chains_are_followed_in_any_order() {
        let (q, mut records) = chain(rr(&name("lab.capstan.test"), TYPE_AAAA, &V6_1));
        assert_eq!(addrs(a(&q, &records)), Ok((vec![v6("2001:db8::1")], 2)));
        records.reverse();
        assert_eq!(addrs(a(&q, &records)), Ok((vec![v6("2001:db8::1")], 2)));
        // The chain ends at a name with only an A record.
        let (q, records) = chain(rr(&name("lab.capstan.test"), TYPE_A, &[192, 0, 2, 1]));
        assert_eq!(a(&q, &records), Err(DnsError::NoData));
        // A compressed CNAME target pointing back into an earlier record.
        let q = Query::new(ID, "www.capstan.test", RecordType::A).unwrap();
        let first = rr(QNAME, TYPE_CNAME, &[3, b'l', b'a', b'b', 0xc0, 16]);
        let target_at = HEADER_LEN + q.question().len() + 2 + 10;
        let second = rr(&[0xc0, target_at as u8], TYPE_A, &[192, 0, 2, 1]);
        assert_eq!(
            addrs(a(&q, &[first, second])),
            Ok((vec![v4([192, 0, 2, 1])], 1))
        );
    }

    #[test]
    fn cname_loops_and_long_chains_stop() {
        let q = Query::new(ID, "a.test", RecordType::A).unwrap();
        let looped = [
            rr(&name("a.test"), TYPE_CNAME, &name("b.test")),
            rr(&name("b.test"), TYPE_CNAME, &name("a.test")),
        ];
        assert_eq!(a(&q, &looped), Err(DnsError::CnameLoop));
        let self_loop = [rr(&name("a.test"), TYPE_CNAME, &name("a.test"))];
        assert_eq!(a(&q, &self_loop), Err(DnsError::CnameLoop));
        // n0 -> n1 -> ... -> nN, then an A record for nN.
        let chain_of = |hops: usize| {
            let q = Query::new(ID, "n0.test", RecordType::A).unwrap();
            let mut records: Vec<Vec<u8>> = (0..hops)
                .map(|i| {
                    let (from, to) = (
                        alloc::format!("n{i}.test"),
                        alloc::format!("n{}.test", i + 1),
                    );
                    rr(&name(&from), TYPE_CNAME, &name(&to))
                })
                .collect();
            records.push(rr(
                &name(&alloc::format!("n{hops}.test")),
                TYPE_A,
                &[192, 0, 2, 9],
            ));
            a(&q, &records)
        };
        let max = usize::from(MAX_CNAME_HOPS);
        assert_eq!(addrs(chain_of(max)), Ok((vec![v4([192, 0, 2, 9])], max)));
        assert_eq!(chain_of(max + 1), Err(DnsError::CnameLoop));
    }

    #[test]
    fn records_for_other_names_or_classes_are_not_answers() {
        let q = lab(RecordType::A);
        let poison = [
            rr(&name("evil.test"), TYPE_A, &[192, 0, 2, 66]),
            rr_class(QNAME, TYPE_A, 3, &[192, 0, 2, 67]), // class CH
            rr(QNAME, 16, b"\x04text"),                   // TXT: another type
        ];
        assert_eq!(a(&q, &poison), Err(DnsError::NoData));
        // A CNAME for another name does not redirect us either.
        let (q, mut records) = chain(rr(&name("lab.capstan.test"), TYPE_AAAA, &V6_1));
        records[0] = rr(
            &name("other.capstan.test"),
            TYPE_CNAME,
            &name("alias.capstan.test"),
        );
        assert_eq!(a(&q, &records), Err(DnsError::NoData));
    }

    #[test]
    fn hostile_records_are_malformed() {
        let q = lab(RecordType::A);
        let ok = rr(QNAME, TYPE_A, &[192, 0, 2, 1]);
        let malformed = |records: &[Vec<u8>], an: u16, why: &str| {
            let m = reply_with(&q, ID, OK, 1, an, records);
            assert_eq!(q.reply(&m), Err(DnsError::Malformed), "{why}");
        };
        malformed(
            core::slice::from_ref(&ok),
            2,
            "ANCOUNT beyond the records sent",
        );
        malformed(core::slice::from_ref(&ok), u16::MAX, "ANCOUNT 65535");
        malformed(&[rr(QNAME, TYPE_A, &[192, 0, 2])], 1, "A with 3 octets");
        malformed(
            &[rr(QNAME, TYPE_A, &[192, 0, 2, 1, 0])],
            1,
            "A with 5 octets",
        );
        malformed(
            &[rr(QNAME, TYPE_AAAA, &V6_1[..15])],
            1,
            "AAAA with 15 octets",
        );
        malformed(
            &[ok.clone(), rr(&name("x.test"), TYPE_AAAA, &[0; 4])],
            2,
            "bad record after the answer",
        );
        let mut long = ok.clone();
        long[11] = 200; // RDLENGTH past the end of the message
        malformed(&[long], 1, "RDLENGTH past the end");
        let loop_at = (HEADER_LEN + q.question().len()) as u8;
        malformed(
            &[rr(&[0xc0, loop_at], TYPE_A, &[192, 0, 2, 1])],
            1,
            "owner points at itself",
        );
        malformed(
            &[rr(&[0xc0, 200], TYPE_A, &[192, 0, 2, 1])],
            1,
            "owner points forward",
        );
        let cname_at = loop_at + 12;
        malformed(
            &[rr(QNAME, TYPE_CNAME, &[0xc0, cname_at])],
            1,
            "CNAME target points at itself",
        );
        malformed(
            &[rr(QNAME, TYPE_CNAME, &[3, b'a'])],
            1,
            "CNAME target cut short",
        );
        // Trailing bytes after ANCOUNT records (authority, additional) are fine.
        let mut m = reply(&q, OK, &[ok]);
        m.extend_from_slice(&[0xff; 7]);
        assert_eq!(addrs(q.reply(&m)), Ok((vec![v4([192, 0, 2, 1])], 0)));
    }

    #[test]
    fn no_mutation_or_truncation_panics_or_hangs() {
        let (q, records) = chain(rr(&name("lab.capstan.test"), TYPE_AAAA, &V6_1));
        let good = reply(&q, OK, &records);
        assert!(matches!(q.reply(&good), Ok(Verdict::Answer(_))));
        // Every cut: the header or question is incomplete (ignored) or a record is (malformed).
        for cut in 0..good.len() {
            let got = q.reply(&good[..cut]);
            assert!(
                matches!(got, Ok(Verdict::Ignore) | Err(DnsError::Malformed)),
                "cut {cut}: {got:?}"
            );
        }
        // Every single-byte change: whatever the result, it comes back.
        let mut m = good.clone();
        for i in 0..m.len() {
            for byte in 0..=255 {
                m[i] = byte;
                let _ = q.reply(&m);
            }
            m[i] = good[i];
        }
        // Byte soups behind a valid header and question (xorshift, fixed seed).
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let prefix = reply_with(&q, ID, OK, 1, 9, &[]);
        for _ in 0..20_000 {
            let mut m = prefix.clone();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 96) as usize;
            m.extend((0..len).map(|i| x.rotate_left(i as u32 * 7) as u8));
            let got = q.reply(&m);
            assert!(
                !matches!(got, Ok(Verdict::Ignore)),
                "a soup behind our question is ours"
            );
        }
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
        assert!(DnsError::Malformed.to_string().contains("malformed"));
    }
}
