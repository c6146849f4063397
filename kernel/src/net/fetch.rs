//! HTTP GET over the kernel's TCP sessions: resolve, connect, stream, follow redirects.
//!
//! The sans-IO `http` parser does all the protocol work; this module only moves
//! bytes between a `TcpSession` and it, hashing the body as it streams (a 16 MiB
//! download never sits in memory). Errors are values: refused connections,
//! malformed responses, truncated bodies, too many redirects, DNS failures.

use smoltcp::wire::Ipv4Address;

use super::dns::DnsError;
use super::http::{
    BodyDigest, HttpError, Progress, RedirectPolicy, Request, ResponseParser, Sha256Digest, Url,
};
use super::resolve::resolve_a;
use super::stack::{NetError, TcpSession};
use crate::time;

/// What a successful GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Final status code (after redirects).
    pub status: u16,
    /// Body length in bytes.
    pub len: u64,
    /// SHA-256 of the body.
    pub sha256: Sha256Digest,
    /// The first bytes of the body (up to 256), for small-file checks.
    pub prefix: alloc::vec::Vec<u8>,
    /// Redirects followed.
    pub redirects: u8,
}

/// Why a GET failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// URL, response or redirect problem.
    Http(HttpError),
    /// The host name did not resolve.
    Dns(DnsError),
    /// Transport: refused, timed out, not configured.
    Net(NetError),
}

impl core::fmt::Display for FetchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FetchError::Http(e) => write!(f, "HTTP: {e}"),
            FetchError::Dns(e) => write!(f, "DNS: {e}"),
            FetchError::Net(NetError::Refused) => f.write_str("connection refused"),
            FetchError::Net(e) => write!(f, "network: {e:?}"),
        }
    }
}

/// Per-read inactivity limit.
const IDLE_TIMEOUT_NS: u64 = 10_000_000_000;

fn host_address(url: &Url, dns_server: Ipv4Address) -> Result<Ipv4Address, FetchError> {
    if let Ok(ip) = url.host().parse::<core::net::Ipv4Addr>() {
        return Ok(Ipv4Address::from_octets(ip.octets()));
    }
    let found = resolve_a(url.host(), dns_server).map_err(FetchError::Dns)?;
    found
        .addrs
        .first()
        .copied()
        .ok_or(FetchError::Dns(DnsError::NoData))
}

/// GETs `url` (http only), following up to 5 redirects; names resolve through
/// `dns_server`.
pub fn get(url: &str, dns_server: Ipv4Address) -> Result<Fetched, FetchError> {
    let mut url = Url::parse(url).map_err(FetchError::Http)?;
    let mut policy = RedirectPolicy::default();
    loop {
        let (parser, digest, prefix) = get_once(&url, dns_server)?;
        let head = parser
            .head()
            .ok_or(FetchError::Http(HttpError::TruncatedHead))?;
        match policy.next(&url, head).map_err(FetchError::Http)? {
            Some(next) => url = next,
            None => {
                let (len, sha256) = digest.finish();
                return Ok(Fetched {
                    status: head.status(),
                    len,
                    sha256,
                    prefix,
                    redirects: policy.followed(),
                });
            }
        }
    }
}

fn get_once(
    url: &Url,
    dns_server: Ipv4Address,
) -> Result<(ResponseParser, BodyDigest, alloc::vec::Vec<u8>), FetchError> {
    let addr = host_address(url, dns_server)?;
    let session = TcpSession::connect(addr, url.port()).map_err(FetchError::Net)?;
    session.send(&Request::get(url)).map_err(FetchError::Net)?;
    let mut parser = ResponseParser::new();
    let mut digest = BodyDigest::new();
    let mut prefix = alloc::vec::Vec::new();
    loop {
        let chunk = session
            .recv(64 * 1024, time::now_ns() + IDLE_TIMEOUT_NS)
            .map_err(FetchError::Net)?;
        if chunk.is_empty() {
            parser.finish().map_err(FetchError::Http)?;
            return Ok((parser, digest, prefix));
        }
        let mut sink = |piece: &[u8]| {
            digest.update(piece);
            let room = 256usize.saturating_sub(prefix.len());
            prefix.extend_from_slice(&piece[..piece.len().min(room)]);
        };
        if parser.feed(&chunk, &mut sink).map_err(FetchError::Http)? == Progress::Done {
            return Ok((parser, digest, prefix));
        }
    }
}
