//! HTTP GET over the kernel's TCP sessions: resolve, connect, stream, follow redirects.
//!
//! The sans-IO `http` parser does all the protocol work; this module only moves
//! bytes between a `TcpSession` and it, hashing the body as it streams (a 16 MiB
//! download never sits in memory) with the CPU's SHA-256 instructions when it has
//! them. Errors are values: refused connections, malformed responses, truncated
//! bodies, too many redirects, DNS failures. A server that sends more than its
//! `Content-Length` gets its response taken as announced and the connection closed;
//! the surplus is reported in `Fetched::excess`.

use smoltcp::wire::Ipv4Address;

use super::dns::DnsError;
use super::http::{
    BlockFn, BodyDigest, HttpError, Progress, RedirectPolicy, Request, ResponseParser,
    Sha256Digest, Url, digest::soft_blocks,
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
    /// SHA-256 of the body (`None` when the caller asked for no check).
    pub sha256: Option<Sha256Digest>,
    /// The first bytes of the body (up to 256), for small-file checks.
    pub prefix: alloc::vec::Vec<u8>,
    /// Redirects followed.
    pub redirects: u8,
    /// Bytes the server sent after the end of the final response (ignored; the
    /// connection was closed).
    pub excess: u64,
}

/// How a body is checked as it streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// SHA-256 (with the CPU's instructions when present).
    Sha256,
    /// Length only (benchmarks: the transfer without the hash).
    LengthOnly,
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

/// The fastest SHA-256 block function this CPU has.
pub fn sha256_blocks() -> BlockFn {
    if crate::arch::sha256::available() {
        crate::arch::sha256::compress
    } else {
        soft_blocks
    }
}

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

/// GETs `url` (http only), following up to 5 redirects, and hashes the body; names
/// resolve through `dns_server`.
pub fn get(url: &str, dns_server: Ipv4Address) -> Result<Fetched, FetchError> {
    get_with(url, dns_server, Check::Sha256)
}

/// As [`get`], checking the body as `check` says.
pub fn get_with(url: &str, dns_server: Ipv4Address, check: Check) -> Result<Fetched, FetchError> {
    let mut url = Url::parse(url).map_err(FetchError::Http)?;
    let mut policy = RedirectPolicy::default();
    loop {
        let got = get_once(&url, dns_server, check)?;
        let head = got
            .parser
            .head()
            .ok_or(FetchError::Http(HttpError::TruncatedHead))?;
        match policy.next(&url, head).map_err(FetchError::Http)? {
            Some(next) => url = next,
            None => {
                let (len, sha256) = match got.digest {
                    Some(d) => {
                        let (len, sha) = d.finish();
                        (len, Some(sha))
                    }
                    None => (got.len, None),
                };
                return Ok(Fetched {
                    status: head.status(),
                    len,
                    sha256,
                    prefix: got.prefix,
                    redirects: policy.followed(),
                    excess: got.parser.excess(),
                });
            }
        }
    }
}

/// One response, read to its end.
struct Once {
    parser: ResponseParser,
    digest: Option<BodyDigest>,
    len: u64,
    prefix: alloc::vec::Vec<u8>,
}

fn get_once(url: &Url, dns_server: Ipv4Address, check: Check) -> Result<Once, FetchError> {
    let addr = host_address(url, dns_server)?;
    let session = TcpSession::connect(addr, url.port()).map_err(FetchError::Net)?;
    session.send(&Request::get(url)).map_err(FetchError::Net)?;
    let mut once = Once {
        parser: ResponseParser::new(),
        digest: match check {
            Check::Sha256 => Some(BodyDigest::with_blocks(sha256_blocks())),
            Check::LengthOnly => None,
        },
        len: 0,
        prefix: alloc::vec::Vec::new(),
    };
    loop {
        let chunk = session
            .recv(256 * 1024, time::now_ns() + IDLE_TIMEOUT_NS)
            .map_err(FetchError::Net)?;
        if chunk.is_empty() {
            once.parser.finish().map_err(FetchError::Http)?;
            return Ok(once);
        }
        let Once {
            parser,
            digest,
            len,
            prefix,
        } = &mut once;
        let mut sink = |piece: &[u8]| {
            *len += piece.len() as u64;
            if let Some(d) = digest.as_mut() {
                d.update(piece);
            }
            let room = 256usize.saturating_sub(prefix.len());
            prefix.extend_from_slice(&piece[..piece.len().min(room)]);
        };
        if parser.feed(&chunk, &mut sink).map_err(FetchError::Http)? == Progress::Done {
            // Dropping the session closes the connection, whatever the server still sends.
            return Ok(once);
        }
    }
}
