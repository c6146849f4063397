//! The network calls (group 0x50): sockets as capabilities over the kernel's stack.
//!
//! A `Socket` capability wraps the stack's [`Socket`]; the handlers take it out of the
//! caller's table (a clone of the `Arc`, so the table's lock is not held while a call
//! blocks), convert addresses and errors, and copy bytes to and from user memory. The
//! stack does the rest (`net::stack::socket`). Every blocking call has a deadline
//! (absolute ns; 0 means "do not wait": `EAGAIN`) and returns `ECANCELED` if the caller
//! is killed meanwhile.

use alloc::sync::Arc;

use abi::{CapType, Error, Handle, Rights};
use smoltcp::wire::Ipv4Address;

use super::decode::SockProto;
use super::file::Object;
use super::table::{self, Process};
use super::user::UserSlice;
use crate::arch::usercopy::{copy_from_user, copy_to_user};
use crate::net::stack::{self, Proto, SockError, Socket};

type Ret = Result<[u64; 3], Error>;

/// A socket error as the ABI names it.
pub fn error(e: SockError) -> Error {
    match e {
        SockError::NotConfigured => Error::EHOSTUNREACH,
        SockError::Timeout => Error::ETIMEDOUT,
        SockError::WouldBlock => Error::EAGAIN,
        SockError::Refused => Error::ECONNREFUSED,
        SockError::Reset => Error::ECONNRESET,
        SockError::NotConnected => Error::ENOTCONN,
        SockError::AddrInUse => Error::EADDRINUSE,
        SockError::BadState => Error::EBADSTATE,
        SockError::Invalid => Error::EINVAL,
        SockError::NoMemory => Error::ENOSPC,
        SockError::Cancelled => Error::ECANCELED,
    }
}

fn ipv4(addr: u32) -> Ipv4Address {
    let [a, b, c, d] = addr.to_be_bytes();
    Ipv4Address::new(a, b, c, d)
}

fn encode(addr: Ipv4Address) -> u64 {
    u64::from(u32::from_be_bytes(addr.octets()))
}

/// The socket behind `h` (needs `rights`).
fn socket(p: &Process, h: Handle, rights: Rights) -> Result<Arc<Socket>, Error> {
    table::with_caps(p, |caps| match caps.get(h, CapType::Socket, rights)? {
        Object::Socket(s) => Ok(s.clone()),
        _ => Err(Error::EWRONGTYPE),
    })
}

fn insert(p: &Arc<Process>, sock: Socket) -> Result<Handle, Error> {
    let rights = Rights::READ | Rights::WRITE | Rights::TRANSFER;
    table::with_caps(p, |caps| {
        caps.insert(Object::Socket(Arc::new(sock)), rights)
            .map_err(|(_, e)| e)
    })
}

/// Sockets `p` holds (the per-process bound counts its table, wherever they came from).
fn held(p: &Process) -> Result<usize, Error> {
    table::with_caps(p, |caps| {
        Ok(caps
            .iter()
            .filter(|&(_, t, _)| t == CapType::Socket)
            .count())
    })
}

fn room_for_one(p: &Process) -> Result<(), Error> {
    if held(p)? >= abi::net::MAX_SOCKETS_PER_PROCESS {
        return Err(Error::ENOSPC);
    }
    Ok(())
}

/// `sock_open(proto, events)`.
pub fn open(p: &Arc<Process>, proto: SockProto, events: u64) -> Ret {
    room_for_one(p)?;
    let proto = match proto {
        SockProto::Udp => Proto::Udp,
        SockProto::Tcp => Proto::Tcp,
        SockProto::Icmp => Proto::Icmp,
    };
    let sock = Socket::open(proto, p.pid).map_err(error)?;
    if events != 0 {
        sock.set_events(Some((table::events_word(p), events)))
            .map_err(error)?;
    }
    let h = insert(p, sock)?;
    Ok([u64::from(h.raw()), 0, 0])
}

/// `bind(h, addr, port)`: `addr` is 0 or an interface's own address (which picks it).
pub fn bind(p: &Arc<Process>, h: Handle, addr: u32, port: u16) -> Ret {
    let sock = socket(p, h, Rights::READ)?;
    // The address picks the interface: the kernel NIC's, or a `NetIf` interface's.
    let iface = match addr {
        0 => None,
        a if stack::address().is_some_and(|own| own.address() == ipv4(a)) => Some(stack::PRIMARY),
        a => Some(stack::netif::by_address(ipv4(a)).ok_or(Error::EINVAL)?),
    };
    let port = sock.bind(port, iface).map_err(error)?;
    Ok([u64::from(port), 0, 0])
}

/// `connect(h, addr, port, deadline)`.
pub fn connect(p: &Arc<Process>, h: Handle, addr: u32, port: u16, deadline: u64) -> Ret {
    let sock = socket(p, h, Rights::WRITE)?;
    sock.connect((ipv4(addr), port)).map_err(error)?;
    if sock.proto() == Proto::Tcp {
        sock.wait_connected(deadline).map_err(error)?;
    }
    Ok([0; 3])
}

/// `listen(h, backlog)`.
pub fn listen(p: &Arc<Process>, h: Handle, backlog: u32) -> Ret {
    let sock = socket(p, h, Rights::READ)?;
    sock.listen(backlog as usize).map_err(error)?;
    Ok([0; 3])
}

/// `accept(h, deadline)`: the new socket's handle, the peer's address and port.
pub fn accept(p: &Arc<Process>, h: Handle, deadline: u64) -> Ret {
    room_for_one(p)?;
    let listener = socket(p, h, Rights::READ)?;
    let (sock, (addr, port)) = listener.accept(deadline).map_err(error)?;
    // The connection reports to the listener's owner the same way.
    let _ = sock.set_events(listener.events());
    let h = insert(p, sock)?;
    Ok([u64::from(h.raw()), encode(addr), u64::from(port)])
}

/// `sendto(h, buf, addr, port, deadline)`: bytes taken.
pub fn send_to(
    p: &Arc<Process>,
    h: Handle,
    buf: UserSlice,
    addr: u32,
    port: u16,
    deadline: u64,
) -> Ret {
    let sock = socket(p, h, Rights::WRITE)?;
    let max = match sock.proto() {
        Proto::Tcp => 256 * 1024,
        _ => abi::net::MAX_DATAGRAM,
    };
    let range = buf.check(usize::MAX)?;
    if sock.proto() != Proto::Tcp && range.len > max {
        return Err(Error::EINVAL);
    }
    let mut tmp = alloc::vec![0u8; range.len.min(max)];
    copy_from_user(&mut tmp, range.addr).map_err(|_| Error::EFAULT)?;
    let to = (addr != abi::net::ADDR_CONNECTED).then(|| (ipv4(addr), port));
    let n = sock.send(&tmp, to, deadline).map_err(error)?;
    Ok([n as u64, 0, 0])
}

/// `recvfrom(h, buf, deadline)`: bytes, sender address, sender port.
pub fn recv_from(p: &Arc<Process>, h: Handle, buf: UserSlice, deadline: u64) -> Ret {
    let sock = socket(p, h, Rights::READ)?;
    let range = buf.check(usize::MAX)?;
    let (data, (addr, port)) = sock.recv(range.len.min(1 << 20), deadline).map_err(error)?;
    copy_to_user(range.addr, &data).map_err(|_| Error::EFAULT)?;
    Ok([data.len() as u64, encode(addr), u64::from(port)])
}

/// `shutdown(h, SHUT_WR)`.
pub fn shutdown(p: &Arc<Process>, h: Handle) -> Ret {
    let sock = socket(p, h, Rights::WRITE)?;
    sock.shutdown_write().map_err(error)?;
    Ok([0; 3])
}
