//! DNS lookups (A records, CNAME chains) over a `UdpSession`, with distinct errors.
//!
//! smoltcp's DNS socket reports every failure as one `Failed`, so the kernel sends
//! its own queries: `dns::classify` maps the reply header to NXDOMAIN, SERVFAIL,
//! truncation, ...; `dns::Retry` bounds the retries; smoltcp's `wire::dns` parses
//! the records. A silent server is a `Timeout` after the last retry.

use alloc::vec::Vec;

use smoltcp::wire::{DnsPacket, DnsRecord, DnsRecordData, Ipv4Address};

use super::dns::{self, DnsError, Retry, Verdict};
use super::stack::{NetError, UdpSession};
use crate::time;

/// A successful A lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Addresses from the A records.
    pub addrs: Vec<Ipv4Address>,
    /// CNAME records followed on the way.
    pub cnames: usize,
}

/// Builds a recursive A query for `name` (RFC 1035 §4.1).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; 1 question
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
    q
}

/// Resolves `name`'s A records through `server`.
pub fn resolve_a(name: &str, server: Ipv4Address) -> Result<Resolved, DnsError> {
    dns::check_name(name)?;
    let id = (time::now_ns() as u16) ^ 0x5a5a;
    let session = UdpSession::open(server, 53).map_err(|_| DnsError::Timeout)?;
    let q = query(id, name);
    let mut retry = Retry::DEFAULT;
    loop {
        let wait_ms = retry.send()?;
        session.send(&q).map_err(|_| DnsError::Timeout)?;
        let deadline = time::now_ns() + wait_ms * 1_000_000;
        loop {
            match session.recv(deadline) {
                Ok(reply) => match dns::classify(id, &reply)? {
                    Verdict::Ignore => continue,
                    Verdict::Answers(n) => return parse_answers(&reply, n),
                },
                Err(NetError::Timeout) => break,
                Err(_) => return Err(DnsError::Timeout),
            }
        }
    }
}

fn parse_answers(reply: &[u8], count: u16) -> Result<Resolved, DnsError> {
    let packet = DnsPacket::new_checked(reply).map_err(|_| DnsError::BadQuery)?;
    let mut rest = packet.payload();
    // Skip the question: name, type, class.
    let (after, _) = smoltcp::wire::DnsQuestion::parse(rest).map_err(|_| DnsError::BadQuery)?;
    rest = after;
    let mut out = Resolved {
        addrs: Vec::new(),
        cnames: 0,
    };
    for _ in 0..count {
        let (after, record): (&[u8], DnsRecord<'_>) =
            DnsRecord::parse(rest).map_err(|_| DnsError::BadQuery)?;
        rest = after;
        match record.data {
            DnsRecordData::A(a) => out.addrs.push(a),
            DnsRecordData::Cname(_) => out.cnames += 1,
            _ => {}
        }
        if out.cnames > usize::from(dns::MAX_CNAME_HOPS) {
            return Err(DnsError::CnameLoop);
        }
    }
    if out.addrs.is_empty() {
        Err(DnsError::NoData)
    } else {
        Ok(out)
    }
}
