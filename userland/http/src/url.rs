//! `http://` URLs, reference resolution for `Location`, and the redirect limit.
//!
//! Only what an HTTP/1.1 client over plain TCP needs from RFC 3986: scheme,
//! host (name, IPv4 or bracketed IPv6), port and request target. Resolution
//! follows RFC 3986 §5.2 so relative `Location` values from real servers work,
//! and everything that would end up on the request line is percent-encoded, so a
//! hostile `Location` can never inject CR/LF into the next request.

use alloc::format;
use alloc::string::String;
use core::fmt;

use super::HttpError;
use super::head::Head;

/// A parsed `http://host[:port]/path?query` URL (the fragment is dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Lower-case host name or address, without IPv6 brackets.
    host: String,
    port: u16,
    /// Origin-form request target: absolute path plus optional `?query`.
    target: String,
}

/// Port used when the URL names none (RFC 9110 §4.2.1).
const DEFAULT_PORT: u16 = 80;
/// Longest DNS name (RFC 1035 §2.3.4).
const MAX_HOST: usize = 253;

impl Url {
    /// Parses an absolute `http://` URL.
    pub fn parse(s: &str) -> Result<Self, HttpError> {
        let (scheme, rest) = split_scheme(s).ok_or(HttpError::BadUrl("missing scheme"))?;
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(HttpError::UnsupportedScheme);
        }
        let rest = rest
            .strip_prefix("//")
            .ok_or(HttpError::BadUrl("missing //host"))?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (host, port) = parse_authority(authority)?;
        let tail = strip_fragment(tail);
        let (path, query) = split_query(tail);
        let path = if path.is_empty() { "/" } else { path };
        Ok(Self {
            host,
            port,
            target: make_target(path, query),
        })
    }

    /// Host name or address (no brackets around IPv6 addresses).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// TCP port (80 unless the URL says otherwise).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Request target for the request line: `/path?query`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Value for the `Host` header: host, bracketed if IPv6, plus `:port` if not 80.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == DEFAULT_PORT {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Resolves a reference (a `Location` value) against this URL (RFC 3986 §5.2).
    pub fn join(&self, reference: &str) -> Result<Self, HttpError> {
        let r = strip_fragment(reference.trim_matches([' ', '\t']));
        if split_scheme(r).is_some() {
            return Self::parse(r);
        }
        if r.starts_with("//") {
            return Self::parse(&format!("http:{r}"));
        }
        let (path, query) = split_query(r);
        let (base_path, base_query) = split_query(&self.target);
        let target = if path.is_empty() {
            make_target(base_path, query.or(base_query))
        } else if path.starts_with('/') {
            make_target(path, query)
        } else {
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            make_target(&format!("{dir}{path}"), query)
        };
        Ok(Self {
            host: self.host.clone(),
            port: self.port,
            target,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.target)
    }
}

/// Splits `scheme:rest` if `s` starts with a syntactically valid scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next()?.is_ascii_alphabetic();
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some((scheme, rest))
}

fn strip_fragment(s: &str) -> &str {
    s.split_once('#').map_or(s, |(before, _)| before)
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (s, None),
    }
}

fn parse_authority(authority: &str) -> Result<(String, u16), HttpError> {
    if authority.contains('@') {
        return Err(HttpError::BadUrl("user info is not supported"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or(HttpError::BadUrl("unclosed [ in host"))?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || ":.".contains(c))
        {
            return Err(HttpError::BadUrl("bad IPv6 address"));
        }
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(HttpError::BadUrl("bad port"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(HttpError::BadUrl("missing host"));
    }
    let host_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':');
    if host.len() > MAX_HOST || !host.chars().all(host_ok) {
        return Err(HttpError::BadUrl("bad host name"));
    }
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => parse_port(p)?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn parse_port(p: &str) -> Result<u16, HttpError> {
    if p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::BadUrl("bad port"));
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(HttpError::BadUrl("bad port")),
        Ok(port) => Ok(port),
    }
}

/// Builds `/path[?query]` with dot segments removed and unsafe bytes escaped.
fn make_target(path: &str, query: Option<&str>) -> String {
    let mut out = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1));
    let path = if path.starts_with('/') {
        remove_dot_segments(path)
    } else {
        format!("/{path}")
    };
    percent_encode_into(&mut out, &path);
    if let Some(q) = query {
        out.push('?');
        percent_encode_into(&mut out, q);
    }
    out
}

/// RFC 3986 §5.2.4 for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let segments: alloc::vec::Vec<&str> = path.split('/').skip(1).collect();
    let mut out: alloc::vec::Vec<&str> = alloc::vec::Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        if last {
            out.push("");
        }
    }
    let mut s = String::with_capacity(path.len());
    s.push('/');
    s.push_str(&out.join("/"));
    s
}

/// Escapes everything outside visible ASCII (spaces, controls, UTF-8 bytes).
fn percent_encode_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Follows redirects up to a limit (RFC 9110 §15.4).
///
/// Keep one policy per top-level fetch; after each response head call `next`:
/// `Ok(None)` means "this is the final response", `Ok(Some(url))` means "fetch
/// `url` instead". Every status listed below is re-fetched as a GET, which is
/// what RFC 9110 allows for a GET (303 mandates it; the others keep the method).
#[derive(Debug)]
pub struct RedirectPolicy {
    limit: u8,
    followed: u8,
}

impl Default for RedirectPolicy {
    fn default() -> Self {
        Self::new(Self::DEFAULT_LIMIT)
    }
}

impl RedirectPolicy {
    /// Redirects followed before `TooManyRedirects` (what browsers allow is ~20).
    pub const DEFAULT_LIMIT: u8 = 5;

    /// A policy that follows at most `limit` redirects.
    pub fn new(limit: u8) -> Self {
        Self { limit, followed: 0 }
    }

    /// Redirects followed so far.
    pub fn followed(&self) -> u8 {
        self.followed
    }

    /// Whether a response with this head would be followed (its body is not the one
    /// asked for).
    pub fn redirects(head: &Head) -> bool {
        is_redirect(head.status())
    }

    /// The URL to fetch next if `head` (received for `current`) is a redirect.
    pub fn next(&mut self, current: &Url, head: &Head) -> Result<Option<Url>, HttpError> {
        self.next_for(current, head.status(), head.header("location"))
    }

    fn next_for(
        &mut self,
        current: &Url,
        status: u16,
        location: Option<&[u8]>,
    ) -> Result<Option<Url>, HttpError> {
        if !is_redirect(status) {
            return Ok(None);
        }
        let location = location.ok_or(HttpError::MissingLocation)?;
        let location =
            core::str::from_utf8(location).map_err(|_| HttpError::BadUrl("Location not UTF-8"))?;
        if self.followed >= self.limit {
            return Err(HttpError::TooManyRedirects);
        }
        self.followed += 1;
        current.join(location).map(Some)
    }
}

/// The statuses a GET follows (RFC 9110 §15.4).
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn parse_basic() {
        let u = url("http://Example.COM/dir/file.bin?x=1&y=2#frag");
        assert_eq!(
            (u.host(), u.port(), u.target()),
            ("example.com", 80, "/dir/file.bin?x=1&y=2")
        );
        assert_eq!(u.to_string(), "http://example.com/dir/file.bin?x=1&y=2");
        let u = url("HTTP://10.0.2.2:8000");
        assert_eq!((u.host(), u.port(), u.target()), ("10.0.2.2", 8000, "/"));
        assert_eq!(url("http://h:/x").port(), 80);
        assert_eq!(url("http://h?q").target(), "/?q");
        let v6 = url("http://[FE80::1]:8080/");
        assert_eq!(
            (v6.host(), v6.port(), v6.authority().as_str()),
            ("fe80::1", 8080, "[fe80::1]:8080")
        );
        assert_eq!(url("http://h/a b\u{e9}").target(), "/a%20b%C3%A9");
        assert_eq!(url("http://h/a/./b/../c").target(), "/a/c");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(
            Url::parse("https://example.com/"),
            Err(HttpError::UnsupportedScheme)
        );
        assert_eq!(
            Url::parse("ftp://example.com/"),
            Err(HttpError::UnsupportedScheme)
        );
        assert_eq!(
            Url::parse("example.com/x"),
            Err(HttpError::BadUrl("missing scheme"))
        );
        assert_eq!(Url::parse(""), Err(HttpError::BadUrl("missing scheme")));
        assert_eq!(
            Url::parse("http:/x"),
            Err(HttpError::BadUrl("missing //host"))
        );
        assert_eq!(
            Url::parse("http:///x"),
            Err(HttpError::BadUrl("missing host"))
        );
        assert_eq!(
            Url::parse("http://:80/x"),
            Err(HttpError::BadUrl("missing host"))
        );
        for bad in [
            "http://h:0/",
            "http://h:65536/",
            "http://h:8a/",
            "http://h:-1/",
            "http://h:1:2/",
        ] {
            assert_eq!(Url::parse(bad), Err(HttpError::BadUrl("bad port")), "{bad}");
        }
        assert_eq!(
            Url::parse("http://u:p@h/"),
            Err(HttpError::BadUrl("user info is not supported"))
        );
        assert_eq!(
            Url::parse("http://h\r\nX: y/"),
            Err(HttpError::BadUrl("bad host name"))
        );
        assert_eq!(
            Url::parse("http://[::1/"),
            Err(HttpError::BadUrl("unclosed [ in host"))
        );
        assert_eq!(
            Url::parse("http://[]/"),
            Err(HttpError::BadUrl("bad IPv6 address"))
        );
        assert_eq!(
            Url::parse("http://[::1]x/"),
            Err(HttpError::BadUrl("bad port"))
        );
    }

    #[test]
    fn join_references() {
        let base = url("http://a.test:81/b/c/d?q");
        let cases = [
            ("http://other.test/x", "http://other.test/x"),
            ("//other.test:9/x?y", "http://other.test:9/x?y"),
            ("/abs/path", "http://a.test:81/abs/path"),
            ("g", "http://a.test:81/b/c/g"),
            ("./g/", "http://a.test:81/b/c/g/"),
            ("../g", "http://a.test:81/b/g"),
            ("../../../../g", "http://a.test:81/g"),
            ("..", "http://a.test:81/b/"),
            ("?y", "http://a.test:81/b/c/d?y"),
            ("#f", "http://a.test:81/b/c/d?q"),
            ("", "http://a.test:81/b/c/d?q"),
            ("  /sp ace  ", "http://a.test:81/sp%20ace"),
            ("/x\r\nInjected: 1", "http://a.test:81/x%0D%0AInjected:%201"),
        ];
        for (reference, want) in cases {
            assert_eq!(
                base.join(reference).unwrap().to_string(),
                want,
                "{reference:?}"
            );
        }
        assert_eq!(base.join("https://x/"), Err(HttpError::UnsupportedScheme));
        assert_eq!(base.join("//"), Err(HttpError::BadUrl("missing host")));
    }

    #[test]
    fn redirect_limit() {
        let start = url("http://h/0");
        let mut policy = RedirectPolicy::default();
        let mut current = start.clone();
        for i in 1..=5u8 {
            let loc = format!("/{i}");
            current = policy
                .next_for(&current, 302, Some(loc.as_bytes()))
                .unwrap()
                .unwrap();
            assert_eq!(current.target(), loc);
        }
        assert_eq!(policy.followed(), 5);
        assert_eq!(
            policy.next_for(&current, 301, Some(b"/6")),
            Err(HttpError::TooManyRedirects)
        );
        // A final response is never an error, whatever the count.
        assert_eq!(policy.next_for(&current, 200, None), Ok(None));
    }

    #[test]
    fn redirect_statuses() {
        let u = url("http://h/a/b");
        for status in [301, 302, 303, 307, 308] {
            let next = RedirectPolicy::new(1)
                .next_for(&u, status, Some(b"c"))
                .unwrap();
            assert_eq!(next.unwrap().to_string(), "http://h/a/c");
        }
        for status in [200, 204, 300, 304, 404, 500] {
            assert_eq!(
                RedirectPolicy::new(1).next_for(&u, status, Some(b"c")),
                Ok(None)
            );
        }
        let mut p = RedirectPolicy::new(0);
        assert_eq!(
            p.next_for(&u, 302, Some(b"/x")),
            Err(HttpError::TooManyRedirects)
        );
        assert_eq!(p.next_for(&u, 302, None), Err(HttpError::MissingLocation));
        assert!(matches!(
            p.next_for(&u, 302, Some(b"\xff")),
            Err(HttpError::BadUrl(_))
        ));
        let mut p = RedirectPolicy::new(3);
        assert_eq!(
            p.next_for(&u, 307, Some(b"https://h/")),
            Err(HttpError::UnsupportedScheme)
        );
    }

    /// Random references against random bases: no panic, and whatever parses
    /// yields a request target of visible ASCII only (no CR/LF injection).
    #[test]
    fn fuzz_no_injection() {
        const PARTS: &[&str] = &[
            "http:", "https:", "//", "/", "h", "[::1]", ":", "80", "99999", "?", "#", "..", ".",
            "@", " ", "\r\n", "%", "\u{e9}", "\0", "a:b", "x",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut pick = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            PARTS[(state % PARTS.len() as u64) as usize]
        };
        let base = url("http://base.test/a/b?q");
        for _ in 0..10_000 {
            let n = 1 + pick().len() % 8;
            let s: String = (0..n).map(|_| pick()).collect();
            for parsed in [Url::parse(&s), base.join(&s)].into_iter().flatten() {
                assert!(parsed.target().starts_with('/'), "{s:?}");
                assert!(
                    parsed.target().bytes().all(|b| b.is_ascii_graphic()),
                    "{s:?}"
                );
                assert!(!parsed.host().is_empty(), "{s:?}");
            }
        }
    }
}
