//! A lookup from question to answer over any transport: UDP with retries, then TCP
//! when the server says its answer did not fit (the TC bit, RFC 7766 §5).
//!
//! The transport does the I/O (the user-space runtime's sockets in `nslookup` and
//! `fetch`, a script in the tests); this module decides what to send, what to ignore
//! and when to give up. A reply that is not for our question is ignored without
//! extending the wait, so a stream of junk cannot keep a lookup alive past its
//! deadline; a silent server is a `Timeout` after the last retry.

use alloc::vec::Vec;

use super::{DnsError, Query, RecordType, Resolved, Retry, Verdict};

/// How long a TCP exchange may take once UDP came back truncated.
pub const TCP_WAIT_MS: u64 = 5000;

/// Largest DNS message over TCP (its length prefix is 16 bits).
pub const MAX_TCP_MESSAGE: usize = 65535;

/// What a resolver needs from the network, with the server already chosen.
pub trait Transport {
    /// Milliseconds on the transport's clock (deadlines below use it).
    fn now_ms(&self) -> u64;
    /// Sends one datagram to the server.
    fn udp_send(&mut self, msg: &[u8]) -> Result<(), DnsError>;
    /// The next datagram from the server, waiting until `deadline_ms`; `None` when the
    /// deadline passes first.
    fn udp_recv(&mut self, deadline_ms: u64) -> Result<Option<Vec<u8>>, DnsError>;
    /// Sends `framed` (a [`tcp_frame`]) over a new TCP connection to the server and
    /// returns what comes back until the server closes, the reply is complete
    /// ([`TcpReply`] says), or `deadline_ms`.
    fn tcp_exchange(&mut self, framed: &[u8], deadline_ms: u64) -> Result<Vec<u8>, DnsError>;
}

/// `msg` with its two-byte length prefix (RFC 1035 §4.2.2).
pub fn tcp_frame(msg: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(msg.len() + 2);
    v.extend_from_slice(&(msg.len().min(MAX_TCP_MESSAGE) as u16).to_be_bytes());
    v.extend_from_slice(&msg[..msg.len().min(MAX_TCP_MESSAGE)]);
    v
}

/// The first length-prefixed message of a TCP stream, as far as it has arrived:
/// `Some(message)` once complete.
pub fn tcp_message(stream: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*stream.first()?, *stream.get(1)?]));
    stream.get(2..2 + len)
}

/// Resolves `name`'s records of `qtype` with query id `id`, retrying on the `retry`
/// schedule, falling back to TCP on a truncated UDP reply.
pub fn resolve<T: Transport>(
    t: &mut T,
    id: u16,
    name: &str,
    qtype: RecordType,
    mut retry: Retry,
) -> Result<Resolved, DnsError> {
    let query = Query::new(id, name, qtype)?;
    loop {
        let wait_ms = retry.send()?;
        t.udp_send(query.bytes())?;
        let deadline = t.now_ms().saturating_add(wait_ms);
        while let Some(reply) = t.udp_recv(deadline)? {
            match query.reply(&reply) {
                Ok(Verdict::Ignore) => continue,
                Ok(Verdict::Answer(found)) => return Ok(found),
                Err(DnsError::Truncated) => return over_tcp(t, &query),
                Err(e) => return Err(e),
            }
        }
    }
}

fn over_tcp<T: Transport>(t: &mut T, query: &Query) -> Result<Resolved, DnsError> {
    let deadline = t.now_ms().saturating_add(TCP_WAIT_MS);
    let stream = t.tcp_exchange(&tcp_frame(query.bytes()), deadline)?;
    let msg = tcp_message(&stream).ok_or(DnsError::Truncated)?;
    match query.reply(msg)? {
        Verdict::Answer(found) => Ok(found),
        // Over our own connection there is no one else to ignore.
        Verdict::Ignore => Err(DnsError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::VecDeque;
    use alloc::vec;
    use core::net::{IpAddr, Ipv4Addr};

    /// Builds a reply from the query.
    type Reply = fn(&[u8]) -> Vec<u8>;

    /// One thing the fake server does when asked.
    #[derive(Clone)]
    enum Step {
        /// Nothing arrives before the deadline.
        Silence,
        /// This datagram arrives (built from the query by the closure).
        Datagram(Reply),
    }

    struct Script {
        now: u64,
        udp: VecDeque<Step>,
        sent: usize,
        tcp: Option<Reply>,
        tcp_used: usize,
        last_query: Vec<u8>,
    }

    impl Transport for Script {
        fn now_ms(&self) -> u64 {
            self.now
        }
        fn udp_send(&mut self, msg: &[u8]) -> Result<(), DnsError> {
            self.sent += 1;
            self.last_query = msg.to_vec();
            Ok(())
        }
        fn udp_recv(&mut self, deadline_ms: u64) -> Result<Option<Vec<u8>>, DnsError> {
            match self.udp.pop_front() {
                Some(Step::Datagram(f)) => Ok(Some(f(&self.last_query))),
                Some(Step::Silence) | None => {
                    self.now = deadline_ms;
                    Ok(None)
                }
            }
        }
        fn tcp_exchange(&mut self, framed: &[u8], _deadline_ms: u64) -> Result<Vec<u8>, DnsError> {
            self.tcp_used += 1;
            let query = tcp_message(framed).expect("framed query").to_vec();
            let reply = (self.tcp.ok_or(DnsError::Timeout)?)(&query);
            Ok(tcp_frame(&reply))
        }
    }

    fn script(udp: Vec<Step>, tcp: Option<Reply>) -> Script {
        Script {
            now: 0,
            udp: udp.into(),
            sent: 0,
            tcp,
            tcp_used: 0,
            last_query: Vec::new(),
        }
    }

    /// A reply to `q` with `flags`, its question echoed, and one A record 192.0.2.1.
    fn answer_with(q: &[u8], flags: u16, id_delta: u16) -> Vec<u8> {
        let mut m = q.to_vec();
        let id = u16::from_be_bytes([m[0], m[1]]).wrapping_add(id_delta);
        m[0..2].copy_from_slice(&id.to_be_bytes());
        m[2..4].copy_from_slice(&flags.to_be_bytes());
        m[6..8].copy_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        m
    }

    fn good(q: &[u8]) -> Vec<u8> {
        answer_with(q, 0x8180, 0)
    }

    fn truncated(q: &[u8]) -> Vec<u8> {
        answer_with(q, 0x8380, 0)
    }

    fn foreign(q: &[u8]) -> Vec<u8> {
        answer_with(q, 0x8180, 1)
    }

    fn lookup(t: &mut Script) -> Result<Resolved, DnsError> {
        resolve(
            t,
            7,
            "lab.capstan.test",
            RecordType::A,
            Retry::new(3, 100, 400),
        )
    }

    const LAB: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

    #[test]
    fn first_answer_wins() {
        let mut t = script(vec![Step::Datagram(good)], None);
        assert_eq!(lookup(&mut t).map(|r| r.addrs), Ok(vec![LAB]));
        assert_eq!(t.sent, 1);
    }

    #[test]
    fn silence_is_retried_then_a_timeout() {
        let mut t = script(vec![Step::Silence, Step::Datagram(good)], None);
        assert_eq!(lookup(&mut t).map(|r| r.addrs), Ok(vec![LAB]));
        assert_eq!((t.sent, t.now), (2, 100));
        let mut t = script(vec![], None);
        assert_eq!(lookup(&mut t), Err(DnsError::Timeout));
        assert_eq!(
            (t.sent, t.now),
            (3, 100 + 200 + 400),
            "three sends, backing off"
        );
    }

    #[test]
    fn foreign_replies_are_ignored_without_extending_the_wait() {
        let mut t = script(
            vec![
                Step::Datagram(foreign),
                Step::Datagram(foreign),
                Step::Datagram(good),
            ],
            None,
        );
        assert_eq!(lookup(&mut t).map(|r| r.addrs), Ok(vec![LAB]));
        assert_eq!(t.sent, 1);
    }

    #[test]
    fn truncation_falls_back_to_tcp() {
        let mut t = script(vec![Step::Datagram(truncated)], Some(good));
        assert_eq!(lookup(&mut t).map(|r| r.addrs), Ok(vec![LAB]));
        assert_eq!((t.sent, t.tcp_used), (1, 1));
        // Truncated over TCP as well: the error says so.
        let mut t = script(vec![Step::Datagram(truncated)], Some(truncated));
        assert_eq!(lookup(&mut t), Err(DnsError::Truncated));
        // A TCP reply for another query is malformed, not ignored.
        let mut t = script(vec![Step::Datagram(truncated)], Some(foreign));
        assert_eq!(lookup(&mut t), Err(DnsError::Malformed));
        // No TCP service.
        let mut t = script(vec![Step::Datagram(truncated)], None);
        assert_eq!(lookup(&mut t), Err(DnsError::Timeout));
    }

    #[test]
    fn tcp_framing() {
        let framed = tcp_frame(b"abc");
        assert_eq!(framed, [0, 3, b'a', b'b', b'c']);
        assert_eq!(tcp_message(&framed), Some(&b"abc"[..]));
        assert_eq!(tcp_message(&framed[..4]), None, "incomplete");
        assert_eq!(tcp_message(&framed[..1]), None);
        assert_eq!(tcp_message(&[0, 0]), Some(&b""[..]));
    }
}
