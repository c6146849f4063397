//! DNS lookups (A and AAAA, CNAME chains) over a `UdpSession`, with distinct errors.
//!
//! smoltcp's DNS socket reports every failure as one `Failed` and cannot parse AAAA
//! without IPv6 in the stack, so the kernel sends its own queries. All the protocol
//! is in the pure `dns` module (`dns::Query` builds the question and judges each
//! datagram, `dns::Retry` paces the resends); this file only moves datagrams and
//! waits. A silent server is a `Timeout` after the last retry. See docs/net.md.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::dns::{DnsError, Query, Retry, Verdict};
pub use super::dns::{RecordType, Resolved};
use super::stack::{NetError, UdpSession};
use crate::time;

/// Resolves `name`'s records of `qtype` through the DNS server at `server`:53.
pub fn resolve(name: &str, server: Ipv4Addr, qtype: RecordType) -> Result<Resolved, DnsError> {
    let id = (time::now_ns() as u16) ^ 0x5a5a;
    let query = Query::new(id, name, qtype)?;
    let session = UdpSession::open(server, 53).map_err(|_| DnsError::Timeout)?;
    let mut retry = Retry::DEFAULT;
    loop {
        let wait_ms = retry.send()?;
        session.send(query.bytes()).map_err(|_| DnsError::Timeout)?;
        let deadline = time::now_ns() + wait_ms * 1_000_000;
        loop {
            match session.recv(deadline) {
                Ok(reply) => match query.reply(&reply)? {
                    Verdict::Ignore => continue,
                    Verdict::Answer(found) => return Ok(found),
                },
                Err(NetError::Timeout) => break,
                Err(_) => return Err(DnsError::Timeout),
            }
        }
    }
}

/// Resolves `name`'s IPv4 addresses (A records).
pub fn resolve_a(name: &str, server: Ipv4Addr) -> Result<Resolved<Ipv4Addr>, DnsError> {
    resolve(name, server, RecordType::A).map(Resolved::ipv4)
}

/// Resolves `name`'s IPv6 addresses (AAAA records). The stack speaks only IPv4, so
/// these are data (to print, or to hand to a future IPv6 stack).
pub fn resolve_aaaa(name: &str, server: Ipv4Addr) -> Result<Resolved<Ipv6Addr>, DnsError> {
    resolve(name, server, RecordType::Aaaa).map(Resolved::ipv6)
}
