//! The net task's side of the sockets: smoltcp sockets behind the processes' queues.
//!
//! After every poll the task walks the socket table: it creates the smoltcp socket a new
//! user socket needs, moves datagrams and stream bytes between the owner's queues and
//! smoltcp, turns a listener's connected sockets into accepted ones, finishes closes
//! (draining, lingering, then removing), and posts a socket's notification when
//! something an owner could wait for changed.

use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Interface, SocketSet};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::super::{IfaceId, SHARED};
use super::{
    DATAGRAMS_QUEUED, Datagram, LINGER_NS, MAX_DATAGRAM, Proto, Role, STUCK_TX_NS, SockError,
    SockState, TCP_RX, TCP_RX_ACCEPTED, TCP_RX_QUEUED, TCP_TX, UDP_BUFFER,
};
use crate::sched;
use crate::time;

/// The net task's part: creates smoltcp sockets for new user sockets, moves data both
/// ways, hands out accepted connections, finishes closes; posts news. Returns how many
/// threads the news woke (queued on this CPU: the caller may yield to them).
pub(in crate::net::stack) fn serve(
    id: IfaceId,
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
) -> usize {
    let now = time::now_ns();
    let mut woke = 0;
    let mut s = SHARED.lock();
    let mut accepted = Vec::new();
    let mut next_id = s.next_session;
    for st in s.socks.iter_mut().filter(|st| st.iface == id) {
        let before = (st.readable(), st.established, st.writable());
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
        // News for the owner: something to read (or the end), the connection made, or
        // room to send in a queue that was full. Not a queue that merely drained: a
        // process that sent a request and then waits for the answer would be woken for
        // nothing (an extra trip into the kernel per exchange) by its request leaving.
        let after = (st.readable(), st.established, st.writable());
        let news = (after.0 && !before.0) || after.1 != before.1 || (after.2 && !before.2);
        if news {
            woke += st.post_here();
        }
    }
    s.next_session = next_id;
    s.socks.extend(accepted);
    // Free what is finished: closed datagram sockets, streams whose close completed
    // (or lingered too long), unaccepted connections of a closed listener.
    let closed_listeners: Vec<u64> = s
        .socks
        .iter()
        .filter(|x| x.iface == id && x.closed && matches!(x.role, Role::Listener { .. }))
        .map(|x| x.id)
        .collect();
    for st in s.socks.iter_mut().filter(|st| st.iface == id) {
        if st
            .accepted_by
            .is_some_and(|l| closed_listeners.contains(&l))
        {
            st.closed = true;
        }
    }
    let mut i = 0;
    while i < s.socks.len() {
        let st = &mut s.socks[i];
        if st.iface == id && st.closed && finish_close(st, sockets, now) {
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
        let sum = !crate::net::ingress::fold(crate::net::ingress::sum(0, buf));
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

/// A smoltcp TCP socket with a `window`-byte receive buffer; `None` if the heap has no
/// room for its buffers (the connection fails with `NoMemory`, nothing panics).
fn tcp_socket(window: usize) -> Option<tcp::Socket<'static>> {
    Some(tcp::Socket::new(
        tcp::SocketBuffer::new(zeroed(window)?),
        tcp::SocketBuffer::new(zeroed(TCP_TX)?),
    ))
}

fn zeroed(len: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).ok()?;
    v.resize(len, 0);
    Some(v)
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
        let Some(mut socket) = tcp_socket(TCP_RX) else {
            st.ended = Some(Err(SockError::NoMemory));
            return;
        };
        let ep = IpEndpoint::new(IpAddress::Ipv4(remote.0), remote.1);
        match socket.connect(iface.context(), ep, local) {
            Ok(()) => st.handles.push(sockets.add(socket)),
            Err(_) => st.ended = Some(Err(SockError::Refused)),
        }
        return;
    }
    let socket = sockets.get_mut::<tcp::Socket>(st.handles[0]);
    send_queued(st, socket);
    while st.in_stream.len() < TCP_RX_QUEUED && socket.can_recv() {
        let room = TCP_RX_QUEUED - st.in_stream.len();
        let moved = socket.recv(|data| {
            let n = data.len().min(room);
            st.in_stream.extend(&data[..n]);
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
            // A handshake the peer reset sends smoltcp's accepted socket back to `Listen`:
            // it must not take the next connection on the port behind its owner's back.
            tcp::State::Listen if st.from_listener => {
                socket.abort();
                st.ended = Some(Err(SockError::Reset));
            }
            // Not connected yet: an accepted socket leaves `Listen` at the peer's SYN and
            // waits in `SynReceived` for the handshake's last ACK.
            tcp::State::SynSent | tcp::State::SynReceived | tcp::State::Listen => {}
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
        (c.iface, c.pinned) = (st.iface, true);
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
        // No memory for another: the listener goes on with the sockets it has.
        let Some(mut socket) = tcp_socket(TCP_RX_ACCEPTED) else {
            return;
        };
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
