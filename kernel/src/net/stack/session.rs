//! UDP and TCP conversations that other kernel threads hold; the net task owns the sockets.
//!
//! A thread opens a session and gets a handle with a notification; the net task creates
//! the smoltcp socket on its next round and moves data between the socket and the
//! session's queues after every poll. Dropping the handle closes (UDP) or aborts (TCP)
//! the socket. DNS queries use `UdpSession`, HTTP uses `TcpSession`.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpAddress, Ipv4Address};

use super::{NetError, SHARED, new_session, wake_task};
use crate::sched::{self, NotifyId};

/// A UDP conversation another thread holds; the net task owns the socket.
pub(super) struct UdpState {
    id: u64,
    remote: (Ipv4Address, u16),
    handle: Option<SocketHandle>,
    outgoing: VecDeque<Vec<u8>>,
    incoming: VecDeque<Vec<u8>>,
    notify: NotifyId,
    closed: bool,
}

/// A UDP conversation with one remote endpoint (DNS queries use it). Dropping it closes
/// the socket.
pub struct UdpSession {
    id: u64,
    notify: NotifyId,
}

impl UdpSession {
    /// Opens a session to `remote` from an ephemeral local port.
    pub fn open(remote: Ipv4Address, port: u16) -> Result<UdpSession, NetError> {
        let (id, notify) = new_session(remote, |s, id, notify| {
            s.udp.push(UdpState {
                id,
                remote: (remote, port),
                handle: None,
                outgoing: VecDeque::new(),
                incoming: VecDeque::new(),
                notify,
                closed: false,
            })
        })?;
        Ok(UdpSession { id, notify })
    }

    fn with<R>(&self, f: impl FnOnce(&mut UdpState) -> R) -> Option<R> {
        SHARED
            .lock()
            .udp
            .iter_mut()
            .find(|u| u.id == self.id)
            .map(f)
    }

    /// Queues one datagram.
    pub fn send(&self, payload: &[u8]) -> Result<(), NetError> {
        self.with(|u| u.outgoing.push_back(payload.to_vec()))
            .ok_or(NetError::Busy)?;
        wake_task();
        Ok(())
    }

    /// The next datagram from the remote, or `Timeout` at `deadline_ns`.
    pub fn recv(&self, deadline_ns: u64) -> Result<Vec<u8>, NetError> {
        loop {
            if let Some(d) = self.with(|u| u.incoming.pop_front()).flatten() {
                return Ok(d);
            }
            if sched::notify_wait(self.notify, deadline_ns).is_err() {
                return Err(NetError::Timeout);
            }
        }
    }
}

impl Drop for UdpSession {
    fn drop(&mut self) {
        let _ = self.with(|u| u.closed = true);
        wake_task();
    }
}

/// Moves datagrams between the sessions and their sockets; opens and closes sockets.
pub(super) fn udp_sessions(sockets: &mut SocketSet<'_>) {
    let mut s = SHARED.lock();
    for u in s.udp.iter_mut() {
        if u.handle.is_none() && !u.closed {
            let buf = || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 4096]);
            let mut socket = udp::Socket::new(buf(), buf());
            let port = ephemeral_port(u.id);
            if socket.bind(port).is_ok() {
                u.handle = Some(sockets.add(socket));
            }
        }
        let Some(h) = u.handle else { continue };
        let socket = sockets.get_mut::<udp::Socket>(h);
        while let Some(d) = u.outgoing.front() {
            let ep = (IpAddress::Ipv4(u.remote.0), u.remote.1);
            if socket.send_slice(d, ep).is_err() {
                break;
            }
            u.outgoing.pop_front();
        }
        let mut got = false;
        while let Ok((data, meta)) = socket.recv() {
            let from = meta.endpoint;
            if from.addr == IpAddress::Ipv4(u.remote.0) && from.port == u.remote.1 {
                u.incoming.push_back(data.to_vec());
                got = true;
            }
        }
        if got {
            let _ = sched::notify_post(u.notify, 1);
        }
    }
    for u in s.udp.iter().filter(|u| u.closed) {
        if let Some(h) = u.handle {
            sockets.remove(h);
        }
        sched::notify_destroy(u.notify);
    }
    s.udp.retain(|u| !u.closed);
}

/// A TCP connection another thread holds; the net task owns the socket.
pub(super) struct TcpState {
    id: u64,
    remote: (Ipv4Address, u16),
    handle: Option<SocketHandle>,
    outgoing: VecDeque<u8>,
    /// Received bytes not yet taken; `recv` takes the whole buffer (no copy) when it
    /// fits the caller's limit.
    incoming: Vec<u8>,
    /// Connected at least once (a close before that is a refusal).
    established: bool,
    /// The peer finished sending (or the connection died).
    ended: Option<Result<(), NetError>>,
    notify: NotifyId,
    closed: bool,
}

/// Received bytes the net task buffers per connection before it stops reading from the
/// socket (the TCP window then throttles the sender).
const TCP_BUFFERED_MAX: usize = 256 * 1024;

/// A TCP connection (HTTP uses it). Dropping it aborts the connection.
pub struct TcpSession {
    id: u64,
    notify: NotifyId,
}

impl TcpSession {
    /// Connects to `remote:port` (completion or refusal shows in `recv`).
    pub fn connect(remote: Ipv4Address, port: u16) -> Result<TcpSession, NetError> {
        let (id, notify) = new_session(remote, |s, id, notify| {
            s.tcp.push(TcpState {
                id,
                remote: (remote, port),
                handle: None,
                outgoing: VecDeque::new(),
                incoming: Vec::new(),
                established: false,
                ended: None,
                notify,
                closed: false,
            })
        })?;
        wake_task();
        Ok(TcpSession { id, notify })
    }

    fn with<R>(&self, f: impl FnOnce(&mut TcpState) -> R) -> Option<R> {
        SHARED
            .lock()
            .tcp
            .iter_mut()
            .find(|t| t.id == self.id)
            .map(f)
    }

    /// Queues bytes to send.
    pub fn send(&self, data: &[u8]) -> Result<(), NetError> {
        self.with(|t| t.outgoing.extend(data))
            .ok_or(NetError::Busy)?;
        wake_task();
        Ok(())
    }

    /// Up to `max` received bytes; an empty vector means the peer closed cleanly.
    pub fn recv(&self, max: usize, deadline_ns: u64) -> Result<Vec<u8>, NetError> {
        loop {
            let got = self.with(|t| {
                if !t.incoming.is_empty() {
                    let out = if t.incoming.len() <= max {
                        core::mem::take(&mut t.incoming)
                    } else {
                        let rest = t.incoming.split_off(max);
                        core::mem::replace(&mut t.incoming, rest)
                    };
                    return Some(Ok(out));
                }
                t.ended.map(|e| e.map(|()| Vec::new()))
            });
            match got.flatten() {
                Some(r) => {
                    wake_task(); // room freed: the net task may read more from the socket
                    return r;
                }
                None if sched::notify_wait(self.notify, deadline_ns).is_err() => {
                    return Err(NetError::Timeout);
                }
                None => {}
            }
        }
    }
}

impl Drop for TcpSession {
    fn drop(&mut self) {
        let _ = self.with(|t| t.closed = true);
        wake_task();
    }
}

/// One connection's share of a `tcp_sessions` pass, moved out of the shared state so
/// the bulk copies run without holding its lock (other CPUs' readers would spin on it).
struct Exchange {
    id: u64,
    handle: SocketHandle,
    outgoing: VecDeque<u8>,
    incoming: Vec<u8>,
    room: usize,
    established: bool,
    ended: Option<Result<(), NetError>>,
}

/// Connects, moves bytes both ways within bounds, notices refusal and close. The shared
/// state is locked only to take each connection's work and to hand back its results;
/// the bytes move between the socket and the session's buffers outside the lock.
pub(super) fn tcp_sessions(iface: &mut Interface, sockets: &mut SocketSet<'_>) {
    let mut work = take_work(iface, sockets);
    for x in work.iter_mut() {
        exchange(sockets.get_mut::<tcp::Socket>(x.handle), x);
    }
    let mut s = SHARED.lock();
    for x in work {
        let Some(t) = s.tcp.iter_mut().find(|t| t.id == x.id) else {
            continue;
        };
        let news = !x.incoming.is_empty() || x.ended != t.ended;
        // What the owner queued meanwhile goes after what the socket did not take yet.
        let newer = core::mem::replace(&mut t.outgoing, x.outgoing);
        t.outgoing.extend(newer);
        if t.incoming.is_empty() {
            t.incoming = x.incoming; // the usual case: no copy
        } else {
            t.incoming.extend_from_slice(&x.incoming);
        }
        (t.established, t.ended) = (x.established, x.ended);
        if news {
            let _ = sched::notify_post(t.notify, 1);
        }
    }
    for t in s.tcp.iter().filter(|t| t.closed) {
        if let Some(h) = t.handle {
            sockets.get_mut::<tcp::Socket>(h).abort();
            sockets.remove(h);
        }
        sched::notify_destroy(t.notify);
    }
    s.tcp.retain(|t| !t.closed);
}

/// Opens sockets for new connections and takes each open one's queued bytes and room.
fn take_work(iface: &mut Interface, sockets: &mut SocketSet<'_>) -> Vec<Exchange> {
    let mut s = SHARED.lock();
    let mut work = Vec::new();
    for t in s.tcp.iter_mut().filter(|t| !t.closed) {
        if t.handle.is_none() && t.ended.is_none() {
            let mut socket = tcp::Socket::new(
                tcp::SocketBuffer::new(vec![0; 256 * 1024]),
                tcp::SocketBuffer::new(vec![0; 16 * 1024]),
            );
            let local = ephemeral_port(t.id);
            let remote = (IpAddress::Ipv4(t.remote.0), t.remote.1);
            match socket.connect(iface.context(), remote, local) {
                Ok(()) => t.handle = Some(sockets.add(socket)),
                Err(_) => t.ended = Some(Err(NetError::Refused)),
            }
        }
        let Some(handle) = t.handle else { continue };
        work.push(Exchange {
            id: t.id,
            handle,
            outgoing: core::mem::take(&mut t.outgoing),
            incoming: Vec::new(),
            room: TCP_BUFFERED_MAX.saturating_sub(t.incoming.len()),
            established: t.established,
            ended: t.ended,
        });
    }
    work
}

/// Queued bytes into the socket, received bytes (within the room) out of it, and the
/// connection's end: a close before it was ever established is a refusal.
fn exchange(socket: &mut tcp::Socket<'_>, x: &mut Exchange) {
    if socket.may_send() {
        x.established = true;
        while !x.outgoing.is_empty() && socket.can_send() {
            let (a, _) = x.outgoing.as_slices();
            match socket.send_slice(a) {
                Ok(n) if n > 0 => drop(x.outgoing.drain(..n)),
                _ => break,
            }
        }
    }
    if x.room > 0 && socket.can_recv() {
        x.incoming.reserve(x.room);
    }
    while x.incoming.len() < x.room && socket.can_recv() {
        let room = x.room - x.incoming.len();
        let moved = socket.recv(|data| {
            let n = data.len().min(room);
            x.incoming.extend_from_slice(&data[..n]);
            (n, n)
        });
        if !matches!(moved, Ok(n) if n > 0) {
            break;
        }
    }
    if x.ended.is_none() && !socket.may_recv() && !socket.can_recv() {
        if socket.state() == tcp::State::Closed && !x.established {
            x.ended = Some(Err(NetError::Refused));
        } else if socket.state() != tcp::State::SynSent {
            x.ended = Some(Ok(()));
        }
    }
}

pub(super) static PORT_SEED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The local port of session `id`: in the dynamic range (49152-65535), offset per boot.
fn ephemeral_port(id: u64) -> u16 {
    let seed = u64::from(PORT_SEED.load(core::sync::atomic::Ordering::Relaxed));
    49152 + ((seed + id) % 16384) as u16
}
