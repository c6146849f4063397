//! Sockets: UDP, TCP and ICMP echo through `Socket` capabilities (group 0x50).
//!
//! Every blocking call takes a deadline (absolute ns since boot, `time::now()` based;
//! `NO_WAIT` returns `EAGAIN` at once, `FOREVER` never times out). Dropping a
//! [`Socket`] closes it (TCP with a FIN).

use core::net::Ipv4Addr;

use abi::net::{SHUT_WR, SOCK_ICMP, SOCK_TCP, SOCK_UDP};
use abi::{Handle, Sysnum};

use crate::sys;

/// A deadline that returns at once (`EAGAIN` if the call would wait).
pub const NO_WAIT: u64 = 0;
/// A deadline that never comes.
pub const FOREVER: u64 = u64::MAX;

/// A socket's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// ICMP echo.
    Icmp,
}

/// An open socket.
#[derive(Debug)]
pub struct Socket {
    handle: Handle,
}

fn encode(a: Ipv4Addr) -> u64 {
    u64::from(u32::from(a))
}

fn decode(v: u64) -> Ipv4Addr {
    Ipv4Addr::from(v as u32)
}

impl Socket {
    /// Opens a socket; `events` are bits set in this process's notification word
    /// whenever the socket has news (0: none), for waiting on several at once with
    /// `time::notify_wait`.
    pub fn open(proto: Proto, events: u64) -> crate::Result<Socket> {
        let p = match proto {
            Proto::Udp => SOCK_UDP,
            Proto::Tcp => SOCK_TCP,
            Proto::Icmp => SOCK_ICMP,
        };
        let r = sys::call2(Sysnum::SockOpen, u64::from(p), events)?;
        Ok(Socket {
            handle: Handle(r[0] as u32),
        })
    }

    /// Takes over a socket capability received at spawn.
    pub fn from_handle(handle: Handle) -> Socket {
        Socket { handle }
    }

    /// The capability handle.
    pub fn handle(&self) -> Handle {
        self.handle
    }

    /// Gives up the handle without closing (it was granted away).
    pub fn into_handle(self) -> Handle {
        let h = self.handle;
        core::mem::forget(self);
        h
    }

    fn h(&self) -> u64 {
        u64::from(self.handle.raw())
    }

    /// Binds to local `port` (0: any free one); returns the port.
    pub fn bind(&self, port: u16) -> crate::Result<u16> {
        let r = sys::call3(Sysnum::Bind, self.h(), 0, u64::from(port))?;
        Ok(r[0] as u16)
    }

    /// Binds to `port` on the interface whose address is `addr` (the kernel NIC's, or one a
    /// user-mode driver feeds); returns the port.
    pub fn bind_at(&self, addr: Ipv4Addr, port: u16) -> crate::Result<u16> {
        let r = sys::call3(Sysnum::Bind, self.h(), encode(addr), u64::from(port))?;
        Ok(r[0] as u16)
    }

    /// TCP: connects (waits until `deadline`). UDP: fixes the remote.
    pub fn connect(&self, addr: Ipv4Addr, port: u16, deadline: u64) -> crate::Result<()> {
        sys::call4(
            Sysnum::Connect,
            self.h(),
            encode(addr),
            u64::from(port),
            deadline,
        )
        .map(|_| ())
    }

    /// TCP: listens on the bound port with `backlog` connections kept ready.
    pub fn listen(&self, backlog: u32) -> crate::Result<()> {
        sys::call2(Sysnum::Listen, self.h(), u64::from(backlog)).map(|_| ())
    }

    /// TCP: the next connection and its peer.
    pub fn accept(&self, deadline: u64) -> crate::Result<(Socket, Ipv4Addr, u16)> {
        let r = sys::call2(Sysnum::Accept, self.h(), deadline)?;
        Ok((
            Socket {
                handle: Handle(r[0] as u32),
            },
            decode(r[1]),
            r[2] as u16,
        ))
    }

    /// Sends to `to` (`None`: the connected remote); returns the bytes taken (TCP may
    /// take part of `data`).
    pub fn send_to(
        &self,
        data: &[u8],
        to: Option<(Ipv4Addr, u16)>,
        deadline: u64,
    ) -> crate::Result<usize> {
        let (addr, port) = to.map_or((0, 0), |(a, p)| (encode(a), u64::from(p)));
        let r = sys::call(
            Sysnum::SendTo,
            [
                self.h(),
                data.as_ptr() as u64,
                data.len() as u64,
                addr,
                port,
                deadline,
            ],
        )?;
        Ok(r[0] as usize)
    }

    /// Sends all of `data` on a connected socket.
    pub fn send_all(&self, mut data: &[u8], deadline: u64) -> crate::Result<()> {
        while !data.is_empty() {
            let n = self.send_to(data, None, deadline)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Receives into `buf`: the length and the sender. TCP: 0 bytes is the peer's FIN.
    pub fn recv_from(
        &self,
        buf: &mut [u8],
        deadline: u64,
    ) -> crate::Result<(usize, Ipv4Addr, u16)> {
        let r = sys::call4(
            Sysnum::RecvFrom,
            self.h(),
            buf.as_mut_ptr() as u64,
            buf.len() as u64,
            deadline,
        )?;
        Ok((r[0] as usize, decode(r[1]), r[2] as u16))
    }

    /// Receives into `buf`; returns the length.
    pub fn recv(&self, buf: &mut [u8], deadline: u64) -> crate::Result<usize> {
        self.recv_from(buf, deadline).map(|(n, _, _)| n)
    }

    /// TCP: no more sending (FIN after what is queued).
    pub fn shutdown_write(&self) -> crate::Result<()> {
        sys::call2(Sysnum::Shutdown, self.h(), u64::from(SHUT_WR)).map(|_| ())
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = crate::cap::drop(self.handle);
    }
}

/// A deadline `ms` milliseconds from now.
pub fn after_ms(ms: u64) -> u64 {
    crate::time::now().saturating_add(ms.saturating_mul(1_000_000))
}

/// The interface's DHCP-given DNS servers (from `/proc/netif`).
pub fn dns_servers() -> alloc::vec::Vec<Ipv4Addr> {
    let Ok(text) = crate::fs::read_file("/proc/netif") else {
        return alloc::vec::Vec::new();
    };
    core::str::from_utf8(&text)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.strip_prefix("dns ")?.parse().ok())
        .collect()
}
