//! HTTP/1.1 client: URLs, request formatting, response parsing, redirects.
//!
//! User programs (`fetch`, the test suite, `netbench`) fetch files with it and must
//! turn every malformed or hostile response into an error, never a hang or a panic.
//! The parsing is sans-IO: it never touches a socket, so [`client`] drives it over any
//! connector (the runtime's TCP sockets on Capstan, scripted servers in the tests) with
//! whatever pieces arrive, and the host tests drive it with every possible split of a
//! response and with random byte soups. Bodies stream
//! through a sink callback, so a 16 MiB download needs no 16 MiB buffer; a
//! `BodyDigest` counts and hashes them on the way (RFC 9110 semantics, RFC 9112
//! message syntax).
//!
//! A request goes: `Url::parse` → `Request::get` → send → `ResponseParser::feed`
//! per segment → `ResponseParser::finish` at EOF → `RedirectPolicy::next` on the
//! head, repeating with the returned URL.
#![no_std]

extern crate alloc;

#[cfg(test)]
extern crate std;

mod body;
pub mod client;
pub mod digest;
mod head;
mod parser;
mod url;

use alloc::vec::Vec;
use core::fmt;

pub use digest::{BlockFn, BodyDigest, Sha256Digest};
pub use parser::{Progress, ResponseParser};
pub use url::{RedirectPolicy, Url};

/// Everything that can go wrong between a URL string and a complete body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The URL could not be parsed; the text says which part was wrong.
    BadUrl(&'static str),
    /// The URL names a scheme other than `http` (TLS is not implemented).
    UnsupportedScheme,
    /// The first line is not `HTTP/1.0` or `HTTP/1.1`, a 3-digit status, a reason.
    MalformedStatusLine,
    /// A header (or trailer) line is not `name: value` with legal characters.
    MalformedHeader,
    /// The header block or one of its lines exceeds the size limit.
    HeaderTooLarge,
    /// More header (or trailer) fields than the limit.
    TooManyHeaders,
    /// The connection closed before the header block was complete.
    TruncatedHead,
    /// `Content-Length` is not a decimal number, overflows, or has conflicting values.
    BadContentLength,
    /// Both `Transfer-Encoding` and `Content-Length`, or `Transfer-Encoding` in HTTP/1.0.
    AmbiguousFraming,
    /// A transfer coding other than `chunked` (e.g. gzip), which we cannot decode.
    UnsupportedTransferEncoding,
    /// A content coding other than `identity` (we ask for `identity` and do not decode).
    UnsupportedContentEncoding(ContentCoding),
    /// A chunk-size line or the CRLF after chunk data is malformed.
    BadChunk,
    /// A chunk size that does not fit in 64 bits.
    ChunkTooLarge,
    /// The connection closed before the body announced by the framing was complete.
    TruncatedBody,
    /// A redirect status without a `Location` header.
    MissingLocation,
    /// More redirects than the policy allows.
    TooManyRedirects,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl(why) => write!(f, "bad URL: {why}"),
            Self::UnsupportedScheme => f.write_str("unsupported URL scheme (only http:// works)"),
            Self::MalformedStatusLine => f.write_str("malformed HTTP status line"),
            Self::MalformedHeader => f.write_str("malformed HTTP header line"),
            Self::HeaderTooLarge => f.write_str("HTTP header block or line too large"),
            Self::TooManyHeaders => f.write_str("too many HTTP header fields"),
            Self::TruncatedHead => f.write_str("connection closed inside the response headers"),
            Self::BadContentLength => f.write_str("invalid or conflicting Content-Length"),
            Self::AmbiguousFraming => {
                f.write_str("ambiguous body framing (Transfer-Encoding with Content-Length)")
            }
            Self::UnsupportedTransferEncoding => {
                f.write_str("unsupported Transfer-Encoding (only chunked)")
            }
            Self::UnsupportedContentEncoding(c) => write!(
                f,
                "unsupported Content-Encoding: {} (the request asked for identity)",
                c.name()
            ),
            Self::BadChunk => f.write_str("malformed chunked encoding"),
            Self::ChunkTooLarge => f.write_str("chunk size overflows 64 bits"),
            Self::TruncatedBody => f.write_str("truncated body: connection closed early"),
            Self::MissingLocation => f.write_str("redirect without a Location header"),
            Self::TooManyRedirects => f.write_str("too many redirects"),
        }
    }
}

impl core::error::Error for HttpError {}

/// A content coding (RFC 9110 §8.4.1), named in `UnsupportedContentEncoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentCoding {
    /// `gzip` or `x-gzip`.
    Gzip,
    /// `deflate`.
    Deflate,
    /// `compress` or `x-compress`.
    Compress,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
    /// Anything else.
    Other,
}

impl ContentCoding {
    /// The coding a field value names (case-insensitive).
    pub fn of(name: &[u8]) -> Self {
        let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        if is("gzip") || is("x-gzip") {
            Self::Gzip
        } else if is("deflate") {
            Self::Deflate
        } else if is("compress") || is("x-compress") {
            Self::Compress
        } else if is("br") {
            Self::Brotli
        } else if is("zstd") {
            Self::Zstd
        } else {
            Self::Other
        }
    }

    /// Its registered name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Compress => "compress",
            Self::Brotli => "br",
            Self::Zstd => "zstd",
            Self::Other => "an unknown coding",
        }
    }
}

/// Request formatting (RFC 9112 §3); the only method the client needs is GET.
pub struct Request;

impl Request {
    /// The complete bytes of a `GET` for `url`, asking the server to close the
    /// connection after the response so an unframed body ends at EOF, and for the body
    /// as it is (`Accept-Encoding: identity`: we do not decode content codings).
    pub fn get(url: &Url) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + url.host().len() + url.target().len());
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(url.target().as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(url.authority().as_bytes());
        out.extend_from_slice(
            b"\r\nUser-Agent: capstan\r\nConnection: close\r\nAccept: */*\r\n\
              Accept-Encoding: identity\r\n\r\n",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn get_request_bytes() {
        let url = Url::parse("http://example.com/a/b?x=1").unwrap();
        assert_eq!(
            Request::get(&url),
            b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: capstan\r\n\
              Connection: close\r\nAccept: */*\r\nAccept-Encoding: identity\r\n\r\n"
        );
    }

    #[test]
    fn get_request_with_port_and_root() {
        let url = Url::parse("http://10.0.2.2:8080").unwrap();
        let req = Request::get(&url);
        assert!(req.starts_with(b"GET / HTTP/1.1\r\nHost: 10.0.2.2:8080\r\n"));
        let v6 = Url::parse("http://[fe80::1]:81/x").unwrap();
        assert!(Request::get(&v6).starts_with(b"GET /x HTTP/1.1\r\nHost: [fe80::1]:81\r\n"));
    }

    #[test]
    fn errors_have_messages() {
        assert_eq!(
            HttpError::TruncatedBody.to_string(),
            "truncated body: connection closed early"
        );
        assert_eq!(
            HttpError::BadUrl("bad port").to_string(),
            "bad URL: bad port"
        );
        assert!(HttpError::UnsupportedScheme.to_string().contains("http://"));
        assert_eq!(
            HttpError::UnsupportedContentEncoding(ContentCoding::of(b"X-GZip")).to_string(),
            "unsupported Content-Encoding: gzip (the request asked for identity)"
        );
        assert_eq!(ContentCoding::of(b"br"), ContentCoding::Brotli);
        assert_eq!(ContentCoding::of(b"sdch"), ContentCoding::Other);
    }
}
