//! A GET from URL to checked body over any connector: connect, send, stream the body
//! through the parser into a sink, follow redirects, and stop at the deadlines.
//!
//! Two deadlines bound every fetch: the overall one (a server that trickles one byte a
//! second cannot keep a fetch alive past it) and an idle one (no byte for that long is
//! a stall). The connector does the I/O (the user-space runtime's TCP sockets and DNS
//! in `fetch`; scripted servers in the tests).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use super::{
    BlockFn, BodyDigest, HttpError, Progress, RedirectPolicy, Request, ResponseParser,
    Sha256Digest, Url,
};

/// A failure below HTTP, as the connector words it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoError(pub String);

/// Why a GET failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// URL, response or redirect problem.
    Http(HttpError),
    /// Name resolution, connection or transfer failed (the connector's words).
    Io(IoError),
    /// The overall deadline passed.
    Deadline,
    /// No byte arrived for the idle limit.
    Stalled,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Http(e) => write!(f, "HTTP: {e}"),
            FetchError::Io(IoError(why)) => f.write_str(why),
            FetchError::Deadline => f.write_str("the fetch took longer than its deadline"),
            FetchError::Stalled => {
                f.write_str("the server stalled (no data within the idle limit)")
            }
        }
    }
}

impl From<HttpError> for FetchError {
    fn from(e: HttpError) -> Self {
        FetchError::Http(e)
    }
}

/// What a connector's receive returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Recv {
    /// Bytes (never zero).
    Data(usize),
    /// The server closed its side.
    Closed,
    /// Nothing arrived before the deadline given.
    TimedOut,
}

/// An open connection.
pub trait Connection {
    /// Sends all of `data` before `deadline_ms`.
    fn send_all(&mut self, data: &[u8], deadline_ms: u64) -> Result<(), IoError>;
    /// Receives into `buf`, waiting until `deadline_ms`.
    fn recv(&mut self, buf: &mut [u8], deadline_ms: u64) -> Result<Recv, IoError>;
}

/// Opens connections and keeps the time.
pub trait Connector {
    /// Its connections (dropped to close).
    type Conn: Connection;
    /// Milliseconds on the connector's clock.
    fn now_ms(&self) -> u64;
    /// Resolves `host` and connects to its `port` before `deadline_ms`.
    fn connect(&mut self, host: &str, port: u16, deadline_ms: u64) -> Result<Self::Conn, IoError>;
}

/// How a body is checked as it streams.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// SHA-256 with this block function.
    Sha256(BlockFn),
    /// Length only.
    LengthOnly,
}

/// Limits of one GET.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Overall time, redirects included.
    pub total_ms: u64,
    /// Longest wait for the next byte.
    pub idle_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            total_ms: 120_000,
            idle_ms: 10_000,
        }
    }
}

/// What a successful GET returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Final status code (after redirects).
    pub status: u16,
    /// Body length in bytes.
    pub len: u64,
    /// SHA-256 of the body, when asked for.
    pub sha256: Option<Sha256Digest>,
    /// Redirects followed.
    pub redirects: u8,
    /// Bytes the server sent after the end of the final response (ignored).
    pub excess: u64,
}

/// Body bytes as they arrive, and how far the download is (bytes so far, total when
/// the server announced one).
pub trait Sink {
    /// The next piece of the final response's body.
    fn body(&mut self, piece: &[u8]);
    /// Called after each receive with the body bytes so far.
    fn progress(&mut self, _received: u64, _total: Option<u64>) {}
}

/// A sink that keeps nothing.
pub struct Discard;

impl Sink for Discard {
    fn body(&mut self, _: &[u8]) {}
}

/// GETs `url` (http only), following up to 5 redirects, within `limits`; the final
/// response's body goes to `sink` and is measured and checked as `check` says.
pub fn get<C: Connector>(
    c: &mut C,
    url: &str,
    check: Check,
    limits: Limits,
    sink: &mut dyn Sink,
) -> Result<Fetched, FetchError> {
    let deadline = c.now_ms().saturating_add(limits.total_ms);
    let mut url = Url::parse(url)?;
    let mut policy = RedirectPolicy::default();
    loop {
        let mut once = Once::new(check);
        exchange(c, &url, deadline, limits.idle_ms, &mut once, sink)?;
        let head = once.parser.head().ok_or(HttpError::TruncatedHead)?;
        match policy.next(&url, head)? {
            Some(next) => url = next,
            None => {
                let status = head.status();
                let excess = once.parser.excess();
                let (len, sha256) = match once.digest {
                    Some(d) => {
                        let (len, sha) = d.finish();
                        (len, Some(sha))
                    }
                    None => (once.len, None),
                };
                return Ok(Fetched {
                    status,
                    len,
                    sha256,
                    redirects: policy.followed(),
                    excess,
                });
            }
        }
    }
}

/// One response being read.
struct Once {
    parser: ResponseParser,
    digest: Option<BodyDigest>,
    len: u64,
}

impl Once {
    fn new(check: Check) -> Self {
        Once {
            parser: ResponseParser::new(),
            digest: match check {
                Check::Sha256(blocks) => Some(BodyDigest::with_blocks(blocks)),
                Check::LengthOnly => None,
            },
            len: 0,
        }
    }
}

/// The announced body length of the head parsed so far, if any.
fn announced(parser: &ResponseParser) -> Option<u64> {
    let value = parser.head()?.header("content-length")?;
    core::str::from_utf8(value).ok()?.trim().parse().ok()
}

fn exchange<C: Connector>(
    c: &mut C,
    url: &Url,
    deadline: u64,
    idle_ms: u64,
    once: &mut Once,
    sink: &mut dyn Sink,
) -> Result<(), FetchError> {
    let mut conn = c
        .connect(url.host(), url.port(), deadline)
        .map_err(FetchError::Io)?;
    if c.now_ms() >= deadline {
        return Err(FetchError::Deadline);
    }
    conn.send_all(&Request::get(url), deadline)
        .map_err(FetchError::Io)?;
    let mut buf: Vec<u8> = alloc::vec![0; 64 * 1024];
    loop {
        let now = c.now_ms();
        if now >= deadline {
            return Err(FetchError::Deadline);
        }
        let wait_until = now.saturating_add(idle_ms).min(deadline);
        let n = match conn.recv(&mut buf, wait_until).map_err(FetchError::Io)? {
            Recv::Data(n) => n,
            Recv::Closed => {
                once.parser.finish()?;
                return Ok(());
            }
            Recv::TimedOut if wait_until == deadline => return Err(FetchError::Deadline),
            Recv::TimedOut => return Err(FetchError::Stalled),
        };
        let Once {
            parser,
            digest,
            len,
        } = once;
        // Body pieces go to the sink only for the final response, not a redirect's.
        // Once the head is known that is decided before the pieces come; in the receive
        // that completes the head, they wait in `early` until it is.
        let known = parser.head().map(|h| !RedirectPolicy::redirects(h));
        let mut early: Vec<u8> = Vec::new();
        let mut piece_sink = |piece: &[u8]| {
            *len += piece.len() as u64;
            if let Some(d) = digest.as_mut() {
                d.update(piece);
            }
            match known {
                Some(true) => sink.body(piece),
                Some(false) => {}
                None => early.extend_from_slice(piece),
            }
        };
        let progress = parser.feed(&buf[..n], &mut piece_sink)?;
        let final_response = parser.head().is_some_and(|h| !RedirectPolicy::redirects(h));
        if final_response {
            if !early.is_empty() {
                sink.body(&early);
            }
            sink.progress(*len, announced(parser));
        }
        if progress == Progress::Done {
            // Dropping the connection closes it, whatever the server still sends.
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::rc::Rc;
    use alloc::string::ToString;
    use alloc::vec;
    use core::cell::RefCell;

    /// What a scripted server does on one connection.
    #[derive(Clone)]
    enum Act {
        /// Sends these bytes.
        Send(Vec<u8>),
        /// Sends nothing for this long.
        Pause(u64),
        /// Closes.
        Close,
    }

    #[derive(Default)]
    struct State {
        now: u64,
        connects: Vec<(String, u16)>,
        requests: Vec<Vec<u8>>,
    }

    struct Server {
        state: Rc<RefCell<State>>,
        /// One script per connection, in order.
        scripts: VecDeque<Vec<Act>>,
    }

    struct Conn {
        state: Rc<RefCell<State>>,
        acts: VecDeque<Act>,
    }

    impl Connection for Conn {
        fn send_all(&mut self, data: &[u8], _: u64) -> Result<(), IoError> {
            self.state.borrow_mut().requests.push(data.to_vec());
            Ok(())
        }
        fn recv(&mut self, buf: &mut [u8], deadline_ms: u64) -> Result<Recv, IoError> {
            let mut st = self.state.borrow_mut();
            loop {
                match self.acts.pop_front() {
                    Some(Act::Send(mut bytes)) => {
                        let n = bytes.len().min(buf.len());
                        buf[..n].copy_from_slice(&bytes[..n]);
                        if n < bytes.len() {
                            self.acts.push_front(Act::Send(bytes.split_off(n)));
                        }
                        return Ok(Recv::Data(n));
                    }
                    Some(Act::Pause(ms)) => {
                        if st.now + ms > deadline_ms {
                            self.acts.push_front(Act::Pause(st.now + ms - deadline_ms));
                            st.now = deadline_ms;
                            return Ok(Recv::TimedOut);
                        }
                        st.now += ms;
                    }
                    Some(Act::Close) | None => return Ok(Recv::Closed),
                }
            }
        }
    }

    impl Connector for Server {
        type Conn = Conn;
        fn now_ms(&self) -> u64 {
            self.state.borrow().now
        }
        fn connect(&mut self, host: &str, port: u16, _: u64) -> Result<Conn, IoError> {
            self.state
                .borrow_mut()
                .connects
                .push((host.to_string(), port));
            let acts = self
                .scripts
                .pop_front()
                .ok_or_else(|| IoError("connection refused".to_string()))?;
            Ok(Conn {
                state: self.state.clone(),
                acts: acts.into(),
            })
        }
    }

    fn server(scripts: Vec<Vec<Act>>) -> Server {
        Server {
            state: Rc::default(),
            scripts: scripts.into(),
        }
    }

    fn send(s: &str) -> Act {
        Act::Send(s.as_bytes().to_vec())
    }

    struct Keep(Vec<u8>, Vec<(u64, Option<u64>)>);

    impl Sink for Keep {
        fn body(&mut self, piece: &[u8]) {
            self.0.extend_from_slice(piece);
        }
        fn progress(&mut self, received: u64, total: Option<u64>) {
            self.1.push((received, total));
        }
    }

    fn fetch(s: &mut Server, url: &str, limits: Limits) -> (Result<Fetched, FetchError>, Keep) {
        let mut keep = Keep(Vec::new(), Vec::new());
        let r = get(
            s,
            url,
            Check::Sha256(crate::digest::soft_blocks),
            limits,
            &mut keep,
        );
        (r, keep)
    }

    #[test]
    fn a_body_in_pieces_is_streamed_and_hashed() {
        let mut s = server(vec![vec![
            send("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello"),
            Act::Pause(5),
            send(" world"),
            Act::Close,
        ]]);
        let (r, keep) = fetch(&mut s, "http://lab.test:8080/x", Limits::default());
        let got = r.unwrap();
        assert_eq!((got.status, got.len, got.redirects), (200, 11, 0));
        assert_eq!(got.sha256, Some(Sha256Digest::of(b"hello world")));
        assert_eq!(keep.0, b"hello world");
        assert_eq!(keep.1.last(), Some(&(11, Some(11))));
        assert_eq!(s.state.borrow().connects, [("lab.test".to_string(), 8080)]);
        assert!(
            s.state.borrow().requests[0].starts_with(b"GET /x HTTP/1.1\r\nHost: lab.test:8080\r\n")
        );
    }

    #[test]
    fn redirects_are_followed_and_only_the_final_body_kept() {
        let mut s = server(vec![
            vec![send(
                "HTTP/1.1 302 Found\r\nLocation: /final\r\nContent-Length: 4\r\n\r\nmove",
            )],
            vec![send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")],
        ]);
        let (r, keep) = fetch(&mut s, "http://lab.test/start", Limits::default());
        let got = r.unwrap();
        assert_eq!((got.status, got.len, got.redirects), (200, 2, 1));
        assert_eq!(keep.0, b"ok");
    }

    #[test]
    fn a_stalled_server_is_an_error_not_a_hang() {
        let limits = Limits {
            total_ms: 60_000,
            idle_ms: 1000,
        };
        let mut s = server(vec![vec![
            send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            Act::Pause(5000),
            send("defghij"),
        ]]);
        assert_eq!(
            fetch(&mut s, "http://a.test/", limits).0,
            Err(FetchError::Stalled)
        );
        assert_eq!(s.state.borrow().now, 1000);
    }

    #[test]
    fn a_trickling_server_meets_the_overall_deadline() {
        let limits = Limits {
            total_ms: 3000,
            idle_ms: 1000,
        };
        let mut acts = vec![send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")];
        for _ in 0..100 {
            acts.push(Act::Pause(500));
            acts.push(send("x"));
        }
        let mut s = server(vec![acts]);
        assert_eq!(
            fetch(&mut s, "http://a.test/", limits).0,
            Err(FetchError::Deadline)
        );
        assert!(s.state.borrow().now <= 3000);
    }

    #[test]
    fn truncated_and_refused() {
        let mut s = server(vec![vec![
            send("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
            Act::Close,
        ]]);
        assert_eq!(
            fetch(&mut s, "http://a.test/", Limits::default()).0,
            Err(FetchError::Http(HttpError::TruncatedBody))
        );
        let mut s = server(vec![]);
        assert_eq!(
            fetch(&mut s, "http://a.test/", Limits::default()).0,
            Err(FetchError::Io(IoError("connection refused".to_string())))
        );
        assert_eq!(
            fetch(&mut server(vec![]), "ftp://a.test/", Limits::default()).0,
            Err(FetchError::Http(HttpError::UnsupportedScheme))
        );
    }
}
