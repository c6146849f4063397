//! The process's side of a socket: open, bind, connect, listen, accept, send, recv, close.
//!
//! Every call takes the `SHARED` lock, changes the socket's shared half (`SockState`) or
//! queues data there, and wakes the net task, which does the protocol work (`task.rs`);
//! a call that must wait sleeps on the socket's notification until the task posts news
//! or the caller's deadline passes.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use smoltcp::wire::Ipv4Address;

use super::super::{IfaceId, SHARED, Shared, iface_address, netif, service, wake_iface};
use super::{
    DATAGRAMS_QUEUED, Datagram, EPHEMERAL_FIRST, MAX_BACKLOG, MAX_DATAGRAM, MAX_SOCKETS, PORT_SEED,
    Proto, Role, SockError, SockState, Socket, TCP_TX,
};
use crate::sched::{self, NotifyId};
use crate::time;

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
    let service =
        proto == Proto::Udp && [service::ECHO_PORT, service::DISCARD_PORT, 68].contains(&port);
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

    /// Binds UDP or TCP to `port` (0: a free ephemeral port) on interface `iface` (`None`:
    /// decided by the first remote, else the primary); returns the port.
    pub fn bind(&self, port: u16, iface: Option<IfaceId>) -> Result<u16, SockError> {
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
        if let Some(id) = iface {
            st.iface = id;
            st.pinned = true;
        }
        Ok(port)
    }

    /// Decides the interface by `remote` unless it is decided: the `NetIf` interface
    /// whose subnet holds it, else the primary.
    fn route(&self, remote: Ipv4Address) -> Result<(), SockError> {
        self.with(|st, _| {
            if !st.pinned {
                st.iface = netif::route(remote).unwrap_or(super::PRIMARY);
                st.pinned = true;
            }
        })
    }

    fn iface(&self) -> IfaceId {
        self.with(|st, _| st.iface).unwrap_or(super::PRIMARY)
    }

    /// Wakes the task of the socket's interface.
    fn wake(&self) {
        wake_iface(self.iface());
    }

    /// `NotConfigured` until the socket's interface has an address.
    fn configured(&self) -> Result<(), SockError> {
        match iface_address(self.iface()) {
            Some(_) => Ok(()),
            None => Err(SockError::NotConfigured),
        }
    }

    fn ensure_local(&self) -> Result<(), SockError> {
        let bound = self.with(|st, _| st.local.is_some())?;
        if !bound {
            self.bind(0, None)?;
        }
        Ok(())
    }

    /// TCP: starts connecting to `remote` (wait with `wait_connected`). UDP: only
    /// datagrams from `remote` are received from now on, and `send` without an address
    /// goes there.
    pub fn connect(&self, remote: (Ipv4Address, u16)) -> Result<(), SockError> {
        if self.proto != Proto::Icmp {
            self.route(remote.0)?;
        }
        self.configured()?;
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
            if st.iface == super::PRIMARY {
                fresh.push(remote.0);
            }
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
        self.wake();
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
        self.wake();
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
                    self.wake(); // a listening slot is free again
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
        if let Some((addr, _)) = to {
            self.route(addr)?;
        }
        self.configured()?;
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
                if st.iface == super::PRIMARY {
                    fresh.push(remote.0);
                }
                st.out_datagrams.push_back(Datagram {
                    data: data.to_vec(),
                    remote,
                });
                Ok(true)
            })??;
            if queued {
                self.wake();
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
                self.wake();
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
                    return Some(Ok((take_front(&mut st.in_stream, max), remote)));
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
                        self.wake(); // room freed: the task may read more
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
        self.wake();
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
        let mut iface = super::PRIMARY;
        if let Some(st) = s.socks.iter_mut().find(|x| x.id == self.id) {
            st.closed = true;
            st.events = None;
            iface = st.iface;
        }
        drop(s);
        wake_iface(iface);
    }
}

/// Up to `max` bytes from the front of `stream`, in one copy (all of it, when it fits, with
/// no copy: the ring's buffer becomes the result).
fn take_front(stream: &mut VecDeque<u8>, max: usize) -> Vec<u8> {
    if stream.len() <= max {
        return Vec::from(core::mem::take(stream));
    }
    let (front, back) = stream.as_slices();
    let first = front.len().min(max);
    let mut out = Vec::with_capacity(max);
    out.extend_from_slice(&front[..first]);
    out.extend_from_slice(&back[..max - first]);
    stream.drain(..max);
    out
}
