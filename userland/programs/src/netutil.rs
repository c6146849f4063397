//! What the network tools share: the DNS and HTTP libraries' I/O over the runtime's
//! sockets, host names to addresses, times and rates as text.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use abi::Error;
use capstan_rt::net::{Proto, Socket};
use capstan_rt::time;
use dns::resolve::{Transport, tcp_message};
use dns::{DnsError, RecordType, Resolved, Retry};
use http::client::{Connection, Connector, IoError, Recv};

fn ms_to_ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// A DNS server reached through UDP (and TCP for truncated answers).
pub struct DnsServer {
    server: Ipv4Addr,
    port: u16,
    udp: Socket,
}

impl DnsServer {
    /// A resolver talking to `server`:53.
    pub fn new(server: Ipv4Addr) -> Result<DnsServer, Error> {
        Self::with_port(server, 53)
    }

    /// A resolver talking to `server`:`port` (UDP and TCP).
    pub fn with_port(server: Ipv4Addr, port: u16) -> Result<DnsServer, Error> {
        let udp = Socket::open(Proto::Udp, 0)?;
        udp.connect(server, port, 0)?;
        Ok(DnsServer { server, port, udp })
    }

    /// Resolves `name`'s `qtype` records.
    pub fn resolve(&mut self, name: &str, qtype: RecordType) -> Result<Resolved, DnsError> {
        let id = (time::counter() as u16) ^ 0x5a5a;
        dns::resolve::resolve(self, id, name, qtype, Retry::DEFAULT)
    }
}

impl Transport for DnsServer {
    fn now_ms(&self) -> u64 {
        time::now() / 1_000_000
    }

    fn udp_send(&mut self, msg: &[u8]) -> Result<(), DnsError> {
        self.udp
            .send_to(msg, None, time::now() + 1_000_000_000)
            .map(|_| ())
            .map_err(|_| DnsError::Timeout)
    }

    fn udp_recv(&mut self, deadline_ms: u64) -> Result<Option<Vec<u8>>, DnsError> {
        let mut buf = alloc::vec![0u8; abi::net::MAX_DATAGRAM];
        match self.udp.recv(&mut buf, ms_to_ns(deadline_ms).max(1)) {
            Ok(n) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(Error::ETIMEDOUT) => Ok(None),
            Err(_) => Err(DnsError::Timeout),
        }
    }

    fn tcp_exchange(&mut self, framed: &[u8], deadline_ms: u64) -> Result<Vec<u8>, DnsError> {
        let deadline = ms_to_ns(deadline_ms);
        let tcp = Socket::open(Proto::Tcp, 0).map_err(|_| DnsError::Timeout)?;
        tcp.connect(self.server, self.port, deadline)
            .map_err(|_| DnsError::Timeout)?;
        tcp.send_all(framed, deadline)
            .map_err(|_| DnsError::Timeout)?;
        let mut stream = Vec::new();
        let mut buf = alloc::vec![0u8; 16 * 1024];
        while tcp_message(&stream).is_none() && stream.len() < 2 + dns::resolve::MAX_TCP_MESSAGE {
            match tcp.recv(&mut buf, deadline) {
                Ok(0) => break,
                Ok(n) => stream.extend_from_slice(&buf[..n]),
                Err(_) => return Err(DnsError::Timeout),
            }
        }
        Ok(stream)
    }
}

/// The DNS server to use: `given`, else the first DHCP named.
pub fn dns_server(given: Option<Ipv4Addr>) -> Result<Ipv4Addr, String> {
    given
        .or_else(|| capstan_rt::net::dns_servers().first().copied())
        .ok_or_else(|| String::from("no DNS server (DHCP named none; give one)"))
}

/// `host` as an address: a dotted quad as it is, a name through `server` (or the
/// DHCP-given one).
pub fn resolve_host(host: &str) -> Result<Ipv4Addr, String> {
    resolve_host_via(host, None)
}

/// As `resolve_host`, through `server` when given.
pub fn resolve_host_via(host: &str, server: Option<Ipv4Addr>) -> Result<Ipv4Addr, String> {
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Ok(a);
    }
    let server = dns_server(server)?;
    let mut dns = DnsServer::new(server).map_err(|e| alloc::format!("socket: {e}"))?;
    let found = dns
        .resolve(host, RecordType::A)
        .map_err(|e| alloc::format!("{e}"))?
        .ipv4();
    found
        .addrs
        .first()
        .copied()
        .ok_or_else(|| String::from("no address"))
}

/// HTTP over the runtime's TCP sockets; names resolve through `dns` (or DHCP's).
pub struct Tcp {
    /// The DNS server for host names.
    pub dns: Option<Ipv4Addr>,
}

/// A TCP connection for the HTTP client.
pub struct TcpConn(Socket);

fn io(what: &str, e: Error) -> IoError {
    IoError(alloc::format!("{what}: {e}"))
}

impl Connector for Tcp {
    type Conn = TcpConn;

    fn now_ms(&self) -> u64 {
        time::now() / 1_000_000
    }

    fn connect(&mut self, host: &str, port: u16, deadline_ms: u64) -> Result<TcpConn, IoError> {
        let addr =
            resolve_host_via(host, self.dns).map_err(|e| IoError(alloc::format!("{host}: {e}")))?;
        let s = Socket::open(Proto::Tcp, 0).map_err(|e| io("socket", e))?;
        s.connect(addr, port, ms_to_ns(deadline_ms))
            .map_err(|e| io(&alloc::format!("connect to {addr}:{port}"), e))?;
        Ok(TcpConn(s))
    }
}

impl Connection for TcpConn {
    fn send_all(&mut self, data: &[u8], deadline_ms: u64) -> Result<(), IoError> {
        self.0
            .send_all(data, ms_to_ns(deadline_ms))
            .map_err(|e| io("send", e))
    }

    fn recv(&mut self, buf: &mut [u8], deadline_ms: u64) -> Result<Recv, IoError> {
        match self.0.recv(buf, ms_to_ns(deadline_ms).max(1)) {
            Ok(0) => Ok(Recv::Closed),
            Ok(n) => Ok(Recv::Data(n)),
            Err(Error::ETIMEDOUT) => Ok(Recv::TimedOut),
            Err(e) => Err(io("receive", e)),
        }
    }
}

/// The fastest SHA-256 block function this CPU has.
pub fn sha256_blocks() -> http::BlockFn {
    if has_feature("sha2") {
        // SAFETY: the kernel read ID_AA64ISAR0_EL1 and says the CPU has FEAT_SHA256.
        unsafe { http::digest::hardware_blocks() }
    } else {
        http::digest::soft_blocks
    }
}

/// Whether `/proc/cpuinfo` lists `feature`.
pub fn has_feature(feature: &str) -> bool {
    crate::tool::read_text("/proc/cpuinfo").is_ok_and(|t| {
        t.lines()
            .filter_map(|l| l.strip_prefix("features "))
            .any(|l| l.split(' ').any(|f| f == feature))
    })
}

/// ns as milliseconds with three decimals.
pub fn ms3(ns: u64) -> String {
    alloc::format!("{}.{:03}", ns / 1_000_000, ns / 1000 % 1000)
}

/// Bytes per second as `12.3 MiB/s`.
pub fn rate(bytes: u64, ns: u64) -> String {
    let per_s = (u128::from(bytes) * 1_000_000_000 / u128::from(ns.max(1))) as u64;
    alloc::format!("{}/s", crate::tool::bytes(per_s))
}
