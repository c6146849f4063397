//! Sockets for user processes: UDP, TCP (client, listener, accepted) and ICMP echo.
//!
//! A process holds a [`Socket`] (through a `Socket` capability); the net task owns the
//! smoltcp socket behind it. As with the kernel's sessions, the two meet in `SHARED`:
//! the caller queues what it sends and takes what arrived, the task moves bytes between
//! those queues and smoltcp after every poll and posts the socket's notification (and
//! the owner's chosen event bits) when something changed. Every queue is bounded, so a
//! process's socket memory is at most `abi::net::MAX_SOCKETS_PER_PROCESS` times one
//! socket's buffers (the table in docs/net.md).
//!
//! Dropping the `Socket` closes it: UDP and ICMP once the datagrams already given to it
//! have left (at most `LINGER_NS`), TCP with a FIN (the task
//! keeps the smoltcp socket until the close completes or `LINGER_NS` passes, then
//! aborts it with a RST). A process that dies drops its capabilities, so its sockets
//! close this way and nothing stays behind.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint, Ipv4Address};

use super::{SHARED, Shared, wake_task};
use crate::sched::{self, NotifyId};
use crate::time;

/// Sockets in the whole system (user and accepted-but-not-yet-taken); a process holds
/// at most `abi::net::MAX_SOCKETS_PER_PROCESS` (the process layer counts its table).
const MAX_SOCKETS: usize = 256;
/// Largest UDP payload sent or received (a reassembled datagram may be this large).
const MAX_DATAGRAM: usize = abi::net::MAX_DATAGRAM;
/// Datagrams a UDP or ICMP socket queues each way.
const DATAGRAMS_QUEUED: usize = 32;
/// Bytes a UDP socket's smoltcp buffers hold each way.
const UDP_BUFFER: usize = 64 * 1024;
/// TCP receive window (the smoltcp buffer) and bytes queued for the owner.
const TCP_RX: usize = 256 * 1024;
/// TCP send buffer, and bytes the owner may queue beyond it.
const TCP_TX: usize = 64 * 1024;
/// Connections a listener keeps ready (its smoltcp listening sockets).
const MAX_BACKLOG: usize = 8;
/// How long a closed TCP connection may take to finish its FIN exchange.
const LINGER_NS: u64 = 5_000_000_000;
/// A UDP or ICMP datagram that cannot leave this long (its next hop does not answer
/// ARP) is dropped with everything queued behind it.
const STUCK_TX_NS: u64 = 3_000_000_000;

/// Randomises the ephemeral ports per boot (set when the interface comes up).
pub(super) static PORT_SEED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The first port of the dynamic range the kernel picks local ports from.
const EPHEMERAL_FIRST: u16 = 49152;

/// A socket's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// A TCP stream (or listener).
    Tcp,
    /// ICMP echo (the kernel fills in the identifier and checksum).
    Icmp,
}

/// Why a socket call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockError {
    /// The interface has no address yet (DHCP) or the stack is not running.
    NotConfigured,
    /// The deadline passed.
    Timeout,
    /// Nothing to take now and no wait was asked for.
    WouldBlock,
    /// The peer refused the connection.
    Refused,
    /// The connection was reset.
    Reset,
    /// Not connected (TCP send before connect, after shutdown).
    NotConnected,
    /// The port is taken.
    AddrInUse,
    /// The call does not fit the socket's state or protocol (listen on UDP, bind twice).
    BadState,
    /// A malformed argument (an ICMP message that is not an echo request, a datagram
    /// over `MAX_DATAGRAM`).
    Invalid,
    /// Too many sockets.
    NoMemory,
    /// The caller was killed while it waited.
    Cancelled,
}

/// What the socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// UDP or ICMP, or TCP before connect/listen.
    Fresh,
    /// TCP connecting or connected to a remote.
    Stream,
    /// TCP listening.
    Listener { backlog: usize },
}

/// A datagram and its remote end.
struct Datagram {
    data: Vec<u8>,
    remote: (Ipv4Address, u16),
}

/// The shared half of one socket.
pub(super) struct SockState {
    id: u64,
    owner: u32,
    proto: Proto,
    role: Role,
    /// Bound local port (UDP/TCP), or the ICMP identifier.
    local: Option<u16>,
    /// Connected remote (TCP), or the UDP filter set by `connect`.
    remote: Option<(Ipv4Address, u16)>,
    /// The smoltcp sockets: one, or a listener's listening sockets.
    handles: Vec<SocketHandle>,
    out_datagrams: VecDeque<Datagram>,
    in_datagrams: VecDeque<Datagram>,
    out_stream: VecDeque<u8>,
    in_stream: Vec<u8>,
    /// Accepted connections waiting for `accept` (their ids).
    ready: VecDeque<u64>,
    /// A listener's connection not yet handed out: which listener it came from.
    accepted_by: Option<u64>,
    /// Came from a listener: shares the listener's port without holding it.
    from_listener: bool,
    established: bool,
    /// The owner shut down sending (TCP: FIN queued after `out_stream`).
    write_shut: bool,
    /// The stream ended: `Ok` at the peer's FIN, or how it died.
    ended: Option<Result<(), SockError>>,
    notify: NotifyId,
    /// The owner's notification word and the bits to set there on news.
    events: Option<(NotifyId, u64)>,
    /// The owner dropped it; `closing_since` once its TCP close started.
    closed: bool,
    closing_since: Option<u64>,
    /// Since when a datagram has waited to leave (next hop unresolved).
    stuck_since: Option<u64>,
    rx_bytes: u64,
    tx_bytes: u64,
    tx_dropped: u64,
}

impl SockState {
    fn new(id: u64, owner: u32, proto: Proto, notify: NotifyId) -> SockState {
        SockState {
            id,
            owner,
            proto,
            role: Role::Fresh,
            local: None,
            remote: None,
            handles: Vec::new(),
            out_datagrams: VecDeque::new(),
            in_datagrams: VecDeque::new(),
            out_stream: VecDeque::new(),
            in_stream: Vec::new(),
            ready: VecDeque::new(),
            accepted_by: None,
            from_listener: false,
            established: false,
            write_shut: false,
            ended: None,
            notify,
            events: None,
            closed: false,
            closing_since: None,
            stuck_since: None,
            rx_bytes: 0,
            tx_bytes: 0,
            tx_dropped: 0,
        }
    }

    fn post(&self) {
        let _ = sched::notify_post(self.notify, 1);
        if let Some((word, bits)) = self.events {
            let _ = sched::notify_post(word, bits);
        }
    }

    /// `post` from the net task: the owner is woken on this CPU, and the task yields to
    /// it next (see `serve`). Whether anyone was woken.
    fn post_here(&self) -> bool {
        let mut woke = sched::notify_post_here(self.notify, 1).unwrap_or(false);
        if let Some((word, bits)) = self.events {
            woke |= sched::notify_post_here(word, bits).unwrap_or(false);
        }
        woke
    }

    /// Whether a read would not block (data, a connection, or the end).
    fn readable(&self) -> bool {
        !self.in_datagrams.is_empty()
            || !self.in_stream.is_empty()
            || !self.ready.is_empty()
            || self.ended.is_some()
    }
}

/// A socket a process holds. Dropping it closes the socket (see the module note).
#[derive(Debug)]
pub struct Socket {
    id: u64,
    notify: NotifyId,
    proto: Proto,
}

/// One line of `/proc/net`.
#[derive(Debug, Clone, Copy)]
pub struct SocketInfo {
    /// Protocol.
    pub proto: Proto,
    /// Owner pid.
    pub owner: u32,
    /// Local port (or ICMP identifier).
    pub local: Option<u16>,
    /// Remote end.
    pub remote: Option<(Ipv4Address, u16)>,
    /// State, as a word.
    pub state: &'static str,
    /// Payload bytes received and sent.
    pub rx_bytes: u64,
    /// Payload bytes sent.
    pub tx_bytes: u64,
    /// Datagrams dropped because their next hop never answered.
    pub tx_dropped: u64,
}

/// Every socket, for `/proc/net`.
pub fn list() -> Vec<SocketInfo> {
    SHARED
        .lock()
        .socks
        .iter()
        .filter(|s| !s.closed || s.closing_since.is_some())
        .map(|s| SocketInfo {
            proto: s.proto,
            owner: s.owner,
            local: s.local,
            remote: s.remote,
            state: state_word(s),
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            tx_dropped: s.tx_dropped,
        })
        .collect()
}

fn state_word(s: &SockState) -> &'static str {
    match (s.role, s.ended, s.closed) {
        (_, _, true) => "closing",
        (_, Some(Ok(())), _) => "eof",
        (_, Some(Err(_)), _) => "failed",
        (Role::Listener { .. }, _, _) => "listen",
        (Role::Stream, _, _) if s.accepted_by.is_some() => "unaccepted",
        (Role::Stream, _, _) if s.established => "established",
        (Role::Stream, _, _) => "connecting",
        (Role::Fresh, _, _) if s.local.is_some() => "bound",
        (Role::Fresh, _, _) => "open",
    }
}

fn take_id(s: &mut Shared) -> u64 {
    let id = s.next_session;
    s.next_session += 1;
    id
}

/// A free ephemeral port for `proto` (none of our sockets or services has it).
fn ephemeral(s: &Shared, proto: Proto) -> Option<u16> {
    let span = 65535 - EPHEMERAL_FIRST + 1;
    let seed = u64::from(PORT_SEED.load(core::sync::atomic::Ordering::Relaxed));
    (0..u64::from(span))
        .map(|i| EPHEMERAL_FIRST + ((seed + s.next_session + i) % u64::from(span)) as u16)
        .find(|&p| port_free(s, proto, p))
}

/// Whether no socket of `proto` (and no kernel service) holds `port`.
fn port_free(s: &Shared, proto: Proto, port: u16) -> bool {
    let service = proto == Proto::Udp
        && [super::service::ECHO_PORT, super::service::DISCARD_PORT, 68].contains(&port);
    !service
        && !s
            .socks
            .iter()
            .any(|x| x.proto == proto && x.local == Some(port) && !x.from_listener)
}

impl Socket {
    /// Opens a socket owned by process `owner`.
    pub fn open(proto: Proto, owner: u32) -> Result<Socket, SockError> {
        let notify = sched::notify_create().map_err(|_| SockError::NoMemory)?;
        let mut s = SHARED.lock();
        if s.socks.len() >= MAX_SOCKETS {
            drop(s);
            sched::notify_destroy(notify);
            return Err(SockError::NoMemory);
        }
        let id = take_id(&mut s);
        let mut st = SockState::new(id, owner, proto, notify);
        if proto == Proto::Icmp {
            st.local = Some(0x8000 | (id as u16 & 0x7fff)); // the echo identifier
        }
        s.socks.push(st);
        Ok(Socket { id, notify, proto })
    }

    /// Its protocol.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Runs `f` on the socket's shared state (which lives until the `Socket` is
    /// dropped; `BadState` if it were ever missing).
    fn with<R>(
        &self,
        f: impl FnOnce(&mut SockState, &mut Vec<Ipv4Address>) -> R,
    ) -> Result<R, SockError> {
        let mut s = SHARED.lock();
        let Shared {
            socks,
            fresh_remotes,
            ..
        } = &mut *s;
        let st = socks
            .iter_mut()
            .find(|x| x.id == self.id)
            .ok_or(SockError::BadState)?;
        Ok(f(st, fresh_remotes))
    }

    /// Sets the bits posted to `word` (the owner's notification word) on news; `None`
    /// stops them.
    pub fn set_events(&self, events: Option<(NotifyId, u64)>) -> Result<(), SockError> {
        self.with(|st, _| {
            st.events = events;
            if st.readable() {
                st.post();
            }
        })
    }

    /// Records that process `pid` holds it now (a capability moved): `/proc/net` shows
    /// it as the owner, and the previous owner's event bits stop.
    pub fn set_owner(&self, pid: u32) {
        let _ = self.with(|st, _| {
            st.owner = pid;
            st.events = None;
        });
    }

    /// The event bits set with `set_events`.
    pub fn events(&self) -> Option<(NotifyId, u64)> {
        self.with(|st, _| st.events).ok().flatten()
    }

    /// Binds UDP or TCP to `port` (0: a free ephemeral port); returns the port.
    pub fn bind(&self, port: u16) -> Result<u16, SockError> {
        let mut s = SHARED.lock();
        let port = if port == 0 {
            ephemeral(&s, self.proto).ok_or(SockError::AddrInUse)?
        } else if port_free(&s, self.proto, port) {
            port
        } else {
            return Err(SockError::AddrInUse);
        };
        let st = s
            .socks
            .iter_mut()
            .find(|x| x.id == self.id)
            .ok_or(SockError::BadState)?;
        if st.proto == Proto::Icmp || st.local.is_some() || st.role != Role::Fresh {
            return Err(SockError::BadState);
        }
        st.local = Some(port);
        Ok(port)
    }

    fn ensure_local(&self) -> Result<(), SockError> {
        let bound = self.with(|st, _| st.local.is_some())?;
        if !bound {
            self.bind(0)?;
        }
        Ok(())
    }

    /// TCP: starts connecting to `remote` (wait with `wait_connected`). UDP: only
    /// datagrams from `remote` are received from now on, and `send` without an address
    /// goes there.
    pub fn connect(&self, remote: (Ipv4Address, u16)) -> Result<(), SockError> {
        configured()?;
        if remote.1 == 0 || remote.0.is_unspecified() {
            return Err(SockError::Invalid);
        }
        match self.proto {
            Proto::Icmp => return Err(SockError::BadState),
            Proto::Udp => self.ensure_local()?,
            Proto::Tcp => {}
        }
        self.with(|st, fresh| {
            if st.proto == Proto::Tcp {
                if st.role != Role::Fresh {
                    return Err(SockError::BadState);
                }
                st.role = Role::Stream;
            }
            st.remote = Some(remote);
            fresh.push(remote.0);
            Ok(())
        })??;
        if self.proto == Proto::Tcp {
            // A local port for the connection (not a listening one: Role::Stream).
            let mut s = SHARED.lock();
            let port = ephemeral(&s, Proto::Tcp).ok_or(SockError::AddrInUse)?;
            if let Some(st) = s.socks.iter_mut().find(|x| x.id == self.id)
                && st.local.is_none()
            {
                st.local = Some(port);
            }
        }
        wake_task();
        Ok(())
    }

    /// TCP: waits until the connection is up (or refused, or `deadline` passes).
    pub fn wait_connected(&self, deadline: u64) -> Result<(), SockError> {
        loop {
            let now = self.with(|st, _| match (st.established, st.ended) {
                (true, _) => Some(Ok(())),
                (false, Some(Err(e))) => Some(Err(e)),
                (false, Some(Ok(()))) => Some(Err(SockError::Refused)),
                (false, None) if st.role != Role::Stream => Some(Err(SockError::NotConnected)),
                _ => None,
            })?;
            if let Some(r) = now {
                return r;
            }
            self.wait(deadline)?;
        }
    }

    /// TCP: listens on the bound port with up to `backlog` connections ready.
    pub fn listen(&self, backlog: usize) -> Result<(), SockError> {
        if self.proto != Proto::Tcp {
            return Err(SockError::BadState);
        }
        self.with(|st, _| {
            if st.role != Role::Fresh || st.local.is_none() {
                return Err(SockError::BadState);
            }
            st.role = Role::Listener {
                backlog: backlog.clamp(1, MAX_BACKLOG),
            };
            Ok(())
        })??;
        wake_task();
        Ok(())
    }

    /// TCP listener: the next connection, and its remote end.
    pub fn accept(&self, deadline: u64) -> Result<(Socket, (Ipv4Address, u16)), SockError> {
        loop {
            let got = self.with(|st, _| {
                if !matches!(st.role, Role::Listener { .. }) {
                    return Some(Err(SockError::BadState));
                }
                st.ready.pop_front().map(Ok)
            })?;
            match got {
                Some(Ok(id)) => {
                    let mut s = SHARED.lock();
                    let Some(c) = s.socks.iter_mut().find(|x| x.id == id) else {
                        continue; // it died before it was taken
                    };
                    c.accepted_by = None;
                    let remote = c.remote.unwrap_or((Ipv4Address::UNSPECIFIED, 0));
                    let sock = Socket {
                        id,
                        notify: c.notify,
                        proto: Proto::Tcp,
                    };
                    drop(s);
                    wake_task(); // a listening slot is free again
                    return Ok((sock, remote));
                }
                Some(Err(e)) => return Err(e),
                None => self.wait(deadline)?,
            }
        }
    }

    /// Sends `data`: a datagram to `to` (UDP: or to the connected remote; ICMP: an echo
    /// request whose identifier and checksum the kernel sets), or stream bytes (TCP: as
    /// many as fit, waiting until `deadline` for room). Returns the bytes taken.
    pub fn send(
        &self,
        data: &[u8],
        to: Option<(Ipv4Address, u16)>,
        deadline: u64,
    ) -> Result<usize, SockError> {
        configured()?;
        match self.proto {
            Proto::Udp | Proto::Icmp => self.send_datagram(data, to, deadline),
            Proto::Tcp => self.send_stream(data, deadline),
        }
    }

    fn send_datagram(
        &self,
        data: &[u8],
        to: Option<(Ipv4Address, u16)>,
        deadline: u64,
    ) -> Result<usize, SockError> {
        if data.len() > MAX_DATAGRAM {
            return Err(SockError::Invalid);
        }
        if self.proto == Proto::Icmp && (data.len() < 8 || data[0] != 8 || data[1] != 0) {
            return Err(SockError::Invalid); // only echo requests
        }
        if self.proto == Proto::Udp {
            self.ensure_local()?;
        }
        loop {
            let queued = self.with(|st, fresh| {
                let remote = match (to, st.remote) {
                    (Some(r), _) | (None, Some(r)) => r,
                    (None, None) => return Err(SockError::NotConnected),
                };
                if remote.0.is_unspecified() || (st.proto == Proto::Udp && remote.1 == 0) {
                    return Err(SockError::Invalid);
                }
                if st.out_datagrams.len() >= DATAGRAMS_QUEUED {
                    return Ok(false);
                }
                fresh.push(remote.0);
                st.out_datagrams.push_back(Datagram {
                    data: data.to_vec(),
                    remote,
                });
                Ok(true)
            })??;
            if queued {
                wake_task();
                return Ok(data.len());
            }
            self.wait(deadline)?;
        }
    }

    fn send_stream(&self, data: &[u8], deadline: u64) -> Result<usize, SockError> {
        loop {
            let taken = self.with(|st, _| {
                if st.role != Role::Stream || st.write_shut {
                    return Err(SockError::NotConnected);
                }
                if let Some(Err(e)) = st.ended {
                    return Err(e);
                }
                let room = TCP_TX.saturating_sub(st.out_stream.len());
                let n = room.min(data.len());
                st.out_stream.extend(&data[..n]);
                Ok(n)
            })??;
            if taken > 0 || data.is_empty() {
                wake_task();
                return Ok(taken);
            }
            self.wait(deadline)?;
        }
    }

    /// Receives up to `max` bytes: a datagram (cut to `max`) and its sender, or stream
    /// bytes (an empty result is the peer's FIN). Waits until `deadline`.
    pub fn recv(
        &self,
        max: usize,
        deadline: u64,
    ) -> Result<(Vec<u8>, (Ipv4Address, u16)), SockError> {
        loop {
            let got = self.with(|st, _| {
                if let Some(d) = st.in_datagrams.pop_front() {
                    let mut data = d.data;
                    data.truncate(max);
                    return Some(Ok((data, d.remote)));
                }
                if st.proto != Proto::Tcp {
                    return None;
                }
                if matches!(st.role, Role::Listener { .. }) {
                    return Some(Err(SockError::BadState));
                }
                let remote = st.remote.unwrap_or((Ipv4Address::UNSPECIFIED, 0));
                if !st.in_stream.is_empty() {
                    let out = if st.in_stream.len() <= max {
                        core::mem::take(&mut st.in_stream)
                    } else {
                        let rest = st.in_stream.split_off(max);
                        core::mem::replace(&mut st.in_stream, rest)
                    };
                    return Some(Ok((out, remote)));
                }
                match st.ended {
                    Some(Ok(())) => Some(Ok((Vec::new(), remote))),
                    Some(Err(e)) => Some(Err(e)),
                    None if st.role == Role::Fresh => Some(Err(SockError::NotConnected)),
                    None => None,
                }
            })?;
            match got {
                Some(r) => {
                    if self.proto == Proto::Tcp {
                        wake_task(); // room freed: the task may read more
                    }
                    return r;
                }
                None => self.wait(deadline)?,
            }
        }
    }

    /// TCP: no more sending (a FIN follows what is queued).
    pub fn shutdown_write(&self) -> Result<(), SockError> {
        self.with(|st, _| {
            if st.proto != Proto::Tcp || st.role != Role::Stream {
                return Err(SockError::NotConnected);
            }
            st.write_shut = true;
            Ok(())
        })??;
        wake_task();
        Ok(())
    }

    /// Waits for news until `deadline` (0: do not wait).
    fn wait(&self, deadline: u64) -> Result<(), SockError> {
        if deadline == 0 {
            return Err(SockError::WouldBlock);
        }
        if time::now_ns() >= deadline {
            return Err(SockError::Timeout);
        }
        if sched::current_user_killed() {
            return Err(SockError::Cancelled);
        }
        let _ = sched::notify_wait(self.notify, deadline);
        if sched::current_user_killed() {
            return Err(SockError::Cancelled);
        }
        Ok(())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let mut s = SHARED.lock();
        if let Some(st) = s.socks.iter_mut().find(|x| x.id == self.id) {
            st.closed = true;
            st.events = None;
        }
        drop(s);
        wake_task();
    }
}

fn configured() -> Result<(), SockError> {
    if SHARED.lock().address.is_some() {
        Ok(())
    } else {
        Err(SockError::NotConfigured)
    }
}

/// The net task's part: creates smoltcp sockets for new user sockets, moves data both
/// ways, hands out accepted connections, finishes closes; posts news. Returns whether
/// the news woke a process (on this CPU: the caller yields to it).
pub(super) fn serve(iface: &mut Interface, sockets: &mut SocketSet<'static>) -> bool {
    let now = time::now_ns();
    let mut woke = false;
    let mut s = SHARED.lock();
    let mut accepted = Vec::new();
    let mut next_id = s.next_session;
    for st in s.socks.iter_mut() {
        let before = (
            st.readable(),
            st.established,
            st.out_datagrams.len(),
            st.out_stream.len(),
        );
        match st.proto {
            Proto::Udp => serve_udp(st, sockets, now),
            Proto::Icmp => serve_icmp(st, sockets, now),
            Proto::Tcp => match st.role {
                Role::Fresh => {}
                Role::Stream => serve_stream(st, iface, sockets, now),
                Role::Listener { backlog } => {
                    serve_listener(st, backlog, sockets, &mut next_id, &mut accepted)
                }
            },
        }
        let after = (
            st.readable(),
            st.established,
            st.out_datagrams.len(),
            st.out_stream.len(),
        );
        if after != before || (after.0 && !before.0) {
            woke |= st.post_here();
        }
    }
    s.next_session = next_id;
    s.socks.extend(accepted);
    // Free what is finished: closed datagram sockets, streams whose close completed
    // (or lingered too long), unaccepted connections of a closed listener.
    let closed_listeners: Vec<u64> = s
        .socks
        .iter()
        .filter(|x| x.closed && matches!(x.role, Role::Listener { .. }))
        .map(|x| x.id)
        .collect();
    for st in s.socks.iter_mut() {
        if st
            .accepted_by
            .is_some_and(|l| closed_listeners.contains(&l))
        {
            st.closed = true;
        }
    }
    let mut i = 0;
    while i < s.socks.len() {
        if s.socks[i].closed && finish_close(&mut s.socks[i], sockets, now) {
            let st = s.socks.swap_remove(i);
            sched::notify_destroy(st.notify);
        } else {
            i += 1;
        }
    }
    woke
}

/// Whether a closed socket is done and its smoltcp sockets gone.
fn finish_close(st: &mut SockState, sockets: &mut SocketSet<'static>, now: u64) -> bool {
    // A datagram sent just before the close (an echo's answer, a process's last word
    // before exit) still leaves: the smoltcp socket stays until its queue drains.
    if st.proto != Proto::Tcp
        && let Some(&h) = st.handles.first()
    {
        let queued = st.out_datagrams.len()
            + match st.proto {
                Proto::Udp => sockets.get::<udp::Socket>(h).send_queue(),
                _ => sockets.get::<icmp::Socket>(h).send_queue(),
            };
        let since = *st.closing_since.get_or_insert(now);
        if queued > 0 && now.saturating_sub(since) < LINGER_NS {
            return false;
        }
    }
    // A connection that did not die lingers, even after the peer's FIN (its half-close):
    // our queued bytes and our FIN still go out.
    let lingers = st.proto == Proto::Tcp
        && st.role == Role::Stream
        && st.established
        && !matches!(st.ended, Some(Err(_)));
    if lingers && let Some(&h) = st.handles.first() {
        let socket = sockets.get_mut::<tcp::Socket>(h);
        let since = *st.closing_since.get_or_insert(now);
        if socket.state() != tcp::State::Closed
            && socket.state() != tcp::State::TimeWait
            && now.saturating_sub(since) < LINGER_NS
        {
            if st.out_stream.is_empty() {
                socket.close(); // FIN after smoltcp's queue; idempotent
            }
            return false;
        }
    }
    for h in st.handles.drain(..) {
        if st.proto == Proto::Tcp {
            sockets.get_mut::<tcp::Socket>(h).abort();
        }
        sockets.remove(h);
    }
    true
}

fn udp_socket() -> udp::Socket<'static> {
    let buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; DATAGRAMS_QUEUED],
            vec![0; UDP_BUFFER],
        )
    };
    udp::Socket::new(buf(), buf())
}

fn icmp_socket(ident: u16) -> icmp::Socket<'static> {
    let buf = || {
        icmp::PacketBuffer::new(
            vec![icmp::PacketMetadata::EMPTY; DATAGRAMS_QUEUED],
            vec![0; 4 * MAX_DATAGRAM],
        )
    };
    let mut socket = icmp::Socket::new(buf(), buf());
    let _ = socket.bind(icmp::Endpoint::Ident(ident));
    socket
}

/// Drops a datagram socket's queue when its head could not leave for `STUCK_TX_NS`
/// (smoltcp would retry its ARP request forever and starve other new neighbours;
/// see `service::pings`). Returns whether the smoltcp socket must be replaced.
fn stuck(st: &mut SockState, queued: usize, now: u64) -> bool {
    if queued == 0 {
        st.stuck_since = None;
        return false;
    }
    let since = *st.stuck_since.get_or_insert(now);
    if now.saturating_sub(since) < STUCK_TX_NS {
        return false;
    }
    st.tx_dropped += queued as u64;
    st.stuck_since = None;
    true
}

fn serve_udp(st: &mut SockState, sockets: &mut SocketSet<'static>, now: u64) {
    if st.closed && st.out_datagrams.is_empty() {
        return; // a closed socket only flushes what it was given (see finish_close)
    }
    let Some(port) = st.local else { return };
    if st.handles.is_empty() {
        let mut socket = udp_socket();
        if socket.bind(port).is_err() {
            st.ended = Some(Err(SockError::AddrInUse));
            return;
        }
        st.handles.push(sockets.add(socket));
    }
    let h = st.handles[0];
    let socket = sockets.get_mut::<udp::Socket>(h);
    while let Some(d) = st.out_datagrams.front() {
        let ep = IpEndpoint::new(IpAddress::Ipv4(d.remote.0), d.remote.1);
        if socket.send_slice(&d.data, ep).is_err() {
            break;
        }
        st.tx_bytes += d.data.len() as u64;
        st.out_datagrams.pop_front();
    }
    while !st.closed && st.in_datagrams.len() < DATAGRAMS_QUEUED {
        let Ok((data, meta)) = socket.recv() else {
            break;
        };
        let IpAddress::Ipv4(from) = meta.endpoint.addr;
        if st.remote.is_some_and(|r| r != (from, meta.endpoint.port)) {
            continue; // connected: only the remote's datagrams
        }
        st.rx_bytes += data.len() as u64;
        st.in_datagrams.push_back(Datagram {
            data: data.to_vec(),
            remote: (from, meta.endpoint.port),
        });
    }
    let queued = socket.send_queue();
    if stuck(st, queued, now) {
        sockets.remove(h);
        st.handles.clear(); // a fresh socket next round
    }
}

fn serve_icmp(st: &mut SockState, sockets: &mut SocketSet<'static>, now: u64) {
    if st.closed && st.out_datagrams.is_empty() {
        return;
    }
    let Some(ident) = st.local else { return };
    if st.handles.is_empty() {
        st.handles.push(sockets.add(icmp_socket(ident)));
    }
    let h = st.handles[0];
    let socket = sockets.get_mut::<icmp::Socket>(h);
    while let Some(d) = st.out_datagrams.front() {
        let Ok(buf) = socket.send(d.data.len(), IpAddress::Ipv4(d.remote.0)) else {
            break;
        };
        buf.copy_from_slice(&d.data);
        buf[4..6].copy_from_slice(&ident.to_be_bytes());
        buf[2..4].copy_from_slice(&[0, 0]);
        let sum = internet_checksum(buf);
        buf[2..4].copy_from_slice(&sum.to_be_bytes());
        st.tx_bytes += d.data.len() as u64;
        st.out_datagrams.pop_front();
    }
    while !st.closed && st.in_datagrams.len() < DATAGRAMS_QUEUED {
        let Ok((data, from)) = socket.recv() else {
            break;
        };
        let IpAddress::Ipv4(from) = from;
        // Echo replies for our identifier only (smoltcp also hands over errors that
        // quote our requests; those are not for a ping socket).
        if data.len() < 8 || data[0] != 0 || data[4..6] != ident.to_be_bytes() {
            continue;
        }
        st.rx_bytes += data.len() as u64;
        st.in_datagrams.push_back(Datagram {
            data: data.to_vec(),
            remote: (from, 0),
        });
    }
    let queued = socket.send_queue();
    if stuck(st, queued, now) {
        sockets.remove(h);
        st.handles.clear();
    }
}

/// RFC 1071 checksum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; TCP_RX]),
        tcp::SocketBuffer::new(vec![0; TCP_TX]),
    )
}

fn serve_stream(
    st: &mut SockState,
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    _now: u64,
) {
    if st.closed {
        // What the owner sent before closing still leaves, then the FIN (finish_close).
        if let Some(&h) = st.handles.first() {
            send_queued(st, sockets.get_mut::<tcp::Socket>(h));
        }
        return;
    }
    if st.handles.is_empty() {
        if st.ended.is_some() {
            return;
        }
        let (Some(remote), Some(local)) = (st.remote, st.local) else {
            return;
        };
        let mut socket = tcp_socket();
        let ep = IpEndpoint::new(IpAddress::Ipv4(remote.0), remote.1);
        match socket.connect(iface.context(), ep, local) {
            Ok(()) => st.handles.push(sockets.add(socket)),
            Err(_) => st.ended = Some(Err(SockError::Refused)),
        }
        return;
    }
    let socket = sockets.get_mut::<tcp::Socket>(st.handles[0]);
    send_queued(st, socket);
    while st.in_stream.len() < TCP_RX && socket.can_recv() {
        let room = TCP_RX - st.in_stream.len();
        let moved = socket.recv(|data| {
            let n = data.len().min(room);
            st.in_stream.extend_from_slice(&data[..n]);
            (n, n)
        });
        match moved {
            Ok(n) if n > 0 => st.rx_bytes += n as u64,
            _ => break,
        }
    }
    if st.ended.is_none() && !socket.may_recv() && !socket.can_recv() {
        match socket.state() {
            tcp::State::Closed if !st.established => st.ended = Some(Err(SockError::Refused)),
            tcp::State::Closed if !st.write_shut => st.ended = Some(Err(SockError::Reset)),
            tcp::State::SynSent | tcp::State::Listen => {}
            _ => st.ended = Some(Ok(())),
        }
    }
}

/// Moves the owner's queued bytes into smoltcp while it takes them; after a shutdown of
/// the write side, the FIN once they are all in.
fn send_queued(st: &mut SockState, socket: &mut tcp::Socket<'static>) {
    if !socket.may_send() {
        return;
    }
    st.established = true;
    while !st.out_stream.is_empty() && socket.can_send() {
        let (a, _) = st.out_stream.as_slices();
        match socket.send_slice(a) {
            Ok(n) if n > 0 => {
                st.tx_bytes += n as u64;
                st.out_stream.drain(..n);
            }
            _ => break,
        }
    }
    if st.write_shut && st.out_stream.is_empty() {
        socket.close();
    }
}

fn serve_listener(
    st: &mut SockState,
    backlog: usize,
    sockets: &mut SocketSet<'static>,
    next_id: &mut u64,
    accepted: &mut Vec<SockState>,
) {
    if st.closed {
        return;
    }
    let Some(port) = st.local else { return };
    // Listening sockets that got a connection become accepted sockets of their own.
    let mut i = 0;
    while i < st.handles.len() {
        let socket = sockets.get_mut::<tcp::Socket>(st.handles[i]);
        if socket.is_listening() {
            i += 1;
            continue;
        }
        let h = st.handles.swap_remove(i);
        let Ok(notify) = sched::notify_create() else {
            sockets.get_mut::<tcp::Socket>(h).abort();
            sockets.remove(h);
            continue;
        };
        let remote = socket.remote_endpoint().map(|ep| {
            let IpAddress::Ipv4(a) = ep.addr;
            (a, ep.port)
        });
        let id = *next_id;
        *next_id += 1;
        let mut c = SockState::new(id, st.owner, Proto::Tcp, notify);
        c.role = Role::Stream;
        c.local = Some(port);
        c.remote = remote;
        c.handles.push(h);
        c.accepted_by = Some(st.id);
        c.from_listener = true;
        st.ready.push_back(id);
        accepted.push(c);
    }
    // Keep `backlog` sockets listening, counting connections not yet accepted.
    while st.handles.len() + st.ready.len() < backlog {
        let mut socket = tcp_socket();
        if socket
            .listen(IpListenEndpoint { addr: None, port })
            .is_err()
        {
            st.ended = Some(Err(SockError::AddrInUse));
            return;
        }
        st.handles.push(sockets.add(socket));
    }
}

#[cfg(test)]
mod tests {
    use super::internet_checksum;

    #[test]
    fn checksum_of_an_echo_request() {
        // type 8, code 0, csum 0, id 0x1234, seq 1, "hi"
        let msg = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        let sum = internet_checksum(&msg);
        let mut with = msg;
        with[2..4].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(internet_checksum(&with), 0);
    }
}
