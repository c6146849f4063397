//! smoltcp over virtio-net: the net task, DHCP, ICMP echo, and the kernel API.
//!
//! One kernel thread owns the NIC and the smoltcp interface. It sleeps on the
//! RX vector's notification (the interrupt, or a request from another thread),
//! runs a NAPI round that moves received frames into a queue, lets smoltcp
//! process them, and sleeps again until the next interrupt or the next smoltcp
//! timer. No tick polls the device. Other threads talk to it through requests
//! (`ping`) and read its state (`address`). See docs/net.md.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::{dhcpv4, icmp, tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, Ipv4Address,
    Ipv4Cidr,
};

use super::ingress::{self, IngressStats, Malformed};
use super::virtio::{self, VirtioNic};
use crate::sched::{self, NotifyId};
use crate::sync::IrqLock;
use crate::time;

/// Frames held between the NAPI round and smoltcp (bounded: a flood drops, counted).
const RX_QUEUE_MAX: usize = 512;
const ICMP_IDENT: u16 = 0xca95;
/// The UDP echo service's port.
pub const ECHO_PORT: u16 = 7;
/// UDP discard service (RFC 863): datagrams are counted and dropped (flood tests).
pub const DISCARD_PORT: u16 = 9;
/// A datagram to the discard port with exactly this payload marks the end of a flood.
pub const FLOOD_END: &[u8] = b"capstan-flood-end";

/// What other threads can see and ask.
struct Shared {
    /// The RX vector's INTID.
    rx_intid: Option<u32>,
    mode: Option<RxMode>,
    /// Wakes the net task (the RX vector's notification).
    wake: Option<NotifyId>,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Address>,
    pings: Vec<Ping>,
    rx_dropped: u64,
    icmp_echo_requests_seen: u64,
    rx_stats: Option<drivers::virtio::net::QueueStats>,
    tx_stats: Option<drivers::virtio::net::QueueStats>,
    nic: Option<NicInfo>,
    ingress: IngressStats,
    discarded: u64,
    flood_ends: u64,
    reinit_requested: bool,
    reinits: u64,
    /// Counters of the devices given up on (so totals survive a reset).
    retired: (
        drivers::virtio::net::QueueStats,
        drivers::virtio::net::QueueStats,
    ),
    echoed: u64,
    udp: Vec<UdpState>,
    tcp: Vec<TcpState>,
    next_session: u64,
}

/// A UDP conversation another thread holds; the net task owns the socket.
struct UdpState {
    id: u64,
    remote: (Ipv4Address, u16),
    handle: Option<SocketHandle>,
    outgoing: VecDeque<Vec<u8>>,
    incoming: VecDeque<Vec<u8>>,
    notify: NotifyId,
    closed: bool,
}

struct Ping {
    target: Ipv4Address,
    seq: u16,
    sent_ns: Option<u64>,
    result: Option<Result<u64, NetError>>,
    notify: NotifyId,
}

static SHARED: IrqLock<Shared> = IrqLock::new(Shared {
    rx_intid: None,
    nic: None,
    ingress: IngressStats {
        dropped: [0; Malformed::COUNT],
    },
    discarded: 0,
    flood_ends: 0,
    reinit_requested: false,
    reinits: 0,
    retired: (
        drivers::virtio::net::QueueStats::ZERO,
        drivers::virtio::net::QueueStats::ZERO,
    ),
    mode: None,
    wake: None,
    address: None,
    gateway: None,
    pings: Vec::new(),
    rx_dropped: 0,
    icmp_echo_requests_seen: 0,
    rx_stats: None,
    tx_stats: None,
    echoed: 0,
    udp: Vec::new(),
    tcp: Vec::new(),
    next_session: 1,
});

/// A network operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetError {
    /// The stack is not running or has no address yet.
    NotConfigured,
    /// No answer in time.
    Timeout,
    /// The request could not be queued.
    Busy,
    /// The peer refused the connection (RST to our SYN).
    Refused,
}

/// How the net task learns about received frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// The RX MSI-X vector wakes the task (NAPI over the capability types).
    Interrupt,
    /// No RX interrupt: the task polls the ring every `1/hz` seconds (the predecessor's
    /// design, kept so benchmarks can compare the same build).
    Poll {
        /// Polls per second.
        hz: u64,
    },
}

/// Starts the net task: attaches the NIC and runs DHCP.
pub fn start(mode: RxMode) -> Result<(), virtio::AttachError> {
    let mut nic = virtio::attach()?;
    if let RxMode::Poll { .. } = mode {
        nic.enter_polling_mode();
    }
    sched::spawn("net", move || run(nic, mode))
        .map_err(|_| virtio::AttachError::Dma(abi::Error::ENOMEM))?;
    Ok(())
}

/// The DHCP-assigned address, once configured.
pub fn address() -> Option<Ipv4Cidr> {
    SHARED.lock().address
}

/// The default gateway from DHCP.
pub fn gateway() -> Option<Ipv4Address> {
    SHARED.lock().gateway
}

/// The RX vector's INTID and its delivery count.
pub fn rx_irq() -> Option<(u32, u64)> {
    let intid = SHARED.lock().rx_intid?;
    Some((intid, crate::irq::count(intid)))
}

/// The driver's RX queue counters (as of the net task's last round).
pub fn rx_stats() -> Option<drivers::virtio::net::QueueStats> {
    SHARED.lock().rx_stats
}

/// How the NIC is attached, and its link (updated every net-task round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NicInfo {
    /// Interrupt mechanism the driver fell back to (or chose).
    pub irq: virtio::IrqMode,
    /// Modern or legacy virtio interface.
    pub transport: drivers::virtio::TransportKind,
    /// Link state from the last configuration interrupt.
    pub link_up: bool,
    /// Configuration-change interrupts handled.
    pub config_events: u64,
    /// Times the link went down.
    pub link_downs: u64,
}

/// How the NIC is attached (None before the stack started).
pub fn nic_info() -> Option<NicInfo> {
    SHARED.lock().nic
}

/// A snapshot for the monitor's `net` command and `/proc` later.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    /// RX mode.
    pub mode: Option<RxMode>,
    /// DHCP address.
    pub address: Option<Ipv4Cidr>,
    /// RX queue counters.
    pub rx: Option<drivers::virtio::net::QueueStats>,
    /// TX queue counters.
    pub tx: Option<drivers::virtio::net::QueueStats>,
    /// RX interrupts taken on the RX vector.
    pub rx_interrupts: u64,
    /// Frames dropped because smoltcp's input queue was full.
    pub rx_dropped: u64,
    /// UDP datagrams echoed.
    pub echoed: u64,
    /// How the NIC is attached.
    pub nic: Option<NicInfo>,
    /// Frames the ingress check dropped, by reason.
    pub ingress: IngressStats,
    /// Datagrams the discard service dropped.
    pub discarded: u64,
    /// Flood-end markers seen on the discard port.
    pub flood_ends: u64,
    /// Times the device was reset and brought up again.
    pub reinits: u64,
}

/// The stack's counters (None before it started).
pub fn status() -> Option<Status> {
    let rx_interrupts = rx_irq().map_or(0, |(_, n)| n);
    let s = SHARED.lock();
    s.mode?;
    Some(Status {
        mode: s.mode,
        address: s.address,
        rx: s.rx_stats,
        tx: s.tx_stats,
        rx_interrupts,
        rx_dropped: s.rx_dropped,
        echoed: s.echoed,
        nic: s.nic,
        ingress: s.ingress,
        discarded: s.discarded,
        flood_ends: s.flood_ends,
        reinits: s.reinits,
    })
}

/// Asks the net task to reset the NIC and bring it up again, as it does by itself when
/// the device sets `DEVICE_NEEDS_RESET` or corrupts a ring (tests use this to exercise
/// the recovery path, which QEMU cannot trigger).
pub fn request_reinit() {
    SHARED.lock().reinit_requested = true;
    wake_task();
}

/// The RX mode the stack runs in, once started.
pub fn mode() -> Option<RxMode> {
    SHARED.lock().mode
}

/// ICMP echo requests addressed to us that arrived (smoltcp answers them).
pub fn echo_requests_seen() -> u64 {
    SHARED.lock().icmp_echo_requests_seen
}

/// Waits until DHCP configured an address or `deadline_ns` passes.
pub fn wait_configured(deadline_ns: u64) -> Option<Ipv4Cidr> {
    while time::now_ns() < deadline_ns {
        if let Some(a) = address() {
            return Some(a);
        }
        sched::sleep_ns(10_000_000);
    }
    address()
}

/// Sends one ICMP echo request to `target` and waits for the reply; returns the round trip
/// in nanoseconds.
pub fn ping(target: Ipv4Address, seq: u16, timeout_ns: u64) -> Result<u64, NetError> {
    let notify = sched::notify_create().map_err(|_| NetError::Busy)?;
    let wake = {
        let mut s = SHARED.lock();
        if s.address.is_none() {
            sched::notify_destroy(notify);
            return Err(NetError::NotConfigured);
        }
        s.pings.push(Ping {
            target,
            seq,
            sent_ns: None,
            result: None,
            notify,
        });
        s.wake
    };
    if let Some(w) = wake {
        let _ = sched::notify_post(w, 2);
    }
    let _ = sched::notify_wait(notify, time::now_ns() + timeout_ns);
    let mut s = SHARED.lock();
    let pos = s.pings.iter().position(|p| p.notify == notify);
    let result = pos.and_then(|i| s.pings.remove(i).result);
    drop(s);
    sched::notify_destroy(notify);
    result.unwrap_or(Err(NetError::Timeout))
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
        let (id, notify) = new_session(|s, id, notify| {
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

/// Registers a session (a fresh id and notification) while the stack has an address.
fn new_session(
    register: impl FnOnce(&mut Shared, u64, NotifyId),
) -> Result<(u64, NotifyId), NetError> {
    let notify = sched::notify_create().map_err(|_| NetError::Busy)?;
    let mut s = SHARED.lock();
    if s.address.is_none() {
        drop(s);
        sched::notify_destroy(notify);
        return Err(NetError::NotConfigured);
    }
    let id = s.next_session;
    s.next_session += 1;
    register(&mut s, id, notify);
    Ok((id, notify))
}

fn wake_task() {
    let wake = SHARED.lock().wake;
    if let Some(w) = wake {
        let _ = sched::notify_post(w, 2);
    }
}

/// Moves datagrams between the sessions and their sockets; opens and closes sockets.
fn udp_sessions(sockets: &mut SocketSet<'_>) {
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
struct TcpState {
    id: u64,
    remote: (Ipv4Address, u16),
    handle: Option<SocketHandle>,
    outgoing: VecDeque<u8>,
    incoming: VecDeque<u8>,
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
        let (id, notify) = new_session(|s, id, notify| {
            s.tcp.push(TcpState {
                id,
                remote: (remote, port),
                handle: None,
                outgoing: VecDeque::new(),
                incoming: VecDeque::new(),
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
                    let n = t.incoming.len().min(max);
                    let (a, b) = t.incoming.as_slices();
                    let from_a = a.len().min(n);
                    let mut out = Vec::with_capacity(n);
                    out.extend_from_slice(&a[..from_a]);
                    out.extend_from_slice(&b[..n - from_a]);
                    t.incoming.drain(..n);
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

/// Connects, moves bytes both ways within bounds, notices refusal and close.
fn tcp_sessions(iface: &mut Interface, sockets: &mut SocketSet<'_>) {
    let mut s = SHARED.lock();
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
        let Some(h) = t.handle else { continue };
        let socket = sockets.get_mut::<tcp::Socket>(h);
        let before = (t.incoming.len(), t.ended);
        if socket.may_send() {
            t.established = true;
            while !t.outgoing.is_empty() && socket.can_send() {
                let (a, _) = t.outgoing.as_slices();
                match socket.send_slice(a) {
                    Ok(n) if n > 0 => drop(t.outgoing.drain(..n)),
                    _ => break,
                }
            }
        }
        while t.incoming.len() < TCP_BUFFERED_MAX && socket.can_recv() {
            let room = TCP_BUFFERED_MAX - t.incoming.len();
            let moved = socket.recv(|data| {
                let n = data.len().min(room);
                t.incoming.extend(&data[..n]);
                (n, n)
            });
            if !matches!(moved, Ok(n) if n > 0) {
                break;
            }
        }
        if t.ended.is_none() && !socket.may_recv() && !socket.can_recv() {
            if socket.state() == tcp::State::Closed && !t.established {
                t.ended = Some(Err(NetError::Refused));
            } else if socket.state() != tcp::State::SynSent {
                t.ended = Some(Ok(()));
            }
        }
        if (t.incoming.len(), t.ended) != before {
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

fn now() -> Instant {
    Instant::from_micros((time::now_ns() / 1000) as i64)
}

/// smoltcp's view of the NIC: frames the NAPI round queued, and the TX ring.
struct Phy<'a> {
    nic: &'a mut VirtioNic,
    rxq: &'a mut VecDeque<Vec<u8>>,
}

struct RxTok(Vec<u8>);
struct TxTok<'a>(&'a mut VirtioNic);

impl phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxTok<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let nic = self.0;
        let mut f = Some(f);
        let mut out = None;
        let sent = nic.net.transmit_with(&mut nic.tx, len, |buf| {
            out = f.take().map(|f| f(buf));
        });
        match (sent, out) {
            (Ok(()), Some(r)) => r,
            // Ring full or bad length: smoltcp still needs its packet built; it is dropped
            // (and counted by the driver as `full`).
            _ => f
                .map(|f| f(&mut vec![0u8; len]))
                .unwrap_or_else(|| unreachable!()),
        }
    }
}

impl phy::Device for Phy<'_> {
    type RxToken<'a>
        = RxTok
    where
        Self: 'a;
    type TxToken<'a>
        = TxTok<'a>
    where
        Self: 'a;

    fn receive(&mut self, _t: Instant) -> Option<(RxTok, TxTok<'_>)> {
        let frame = self.rxq.pop_front()?;
        Some((RxTok(frame), TxTok(self.nic)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxTok<'_>> {
        self.nic.reclaim();
        (self.nic.net.tx_free() > 0).then_some(TxTok(self.nic))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(64);
        // `ingress::check` verified every received checksum already: smoltcp only
        // computes them for transmission.
        caps.checksum.ipv4 = phy::Checksum::Tx;
        caps.checksum.udp = phy::Checksum::Tx;
        caps.checksum.tcp = phy::Checksum::Tx;
        caps.checksum.icmpv4 = phy::Checksum::Tx;
        caps
    }
}

/// Counts ICMP echo requests to us in a received frame (for the "answers a ping" test).
fn is_echo_request(frame: &[u8]) -> bool {
    // Ethernet (14) + IPv4 with IHL; proto 1 = ICMP; ICMP type 8 = echo request.
    if frame.len() < 14 + 20 + 8 || frame[12..14] != [0x08, 0x00] || frame[14 + 9] != 1 {
        return false;
    }
    let ihl = usize::from(frame[14] & 0xf) * 4;
    frame.get(14 + ihl).is_some_and(|&t| t == 8)
}

fn run(mut nic: Box<VirtioNic>, mode: RxMode) {
    let mac = nic.net.mac();
    publish(&nic, mode);
    let mut rxq: VecDeque<Vec<u8>> = VecDeque::new();
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    // A fixed seed gives every boot the same TCP initial sequence numbers and ports: a new
    // connection then collides with the previous boot's in the server's TIME_WAIT and
    // stalls until its SYN is retransmitted (RFC 6528, 6056). No RNG on cortex-a72 or
    // virt: the boot-relative counter at this point varies with the host's timing.
    let seed = splitmix64(
        crate::arch::cpu::counter()
            ^ u64::from_le_bytes([mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], 0, 0]),
    );
    config.random_seed = seed;
    PORT_SEED.store(seed as u32, core::sync::atomic::Ordering::Relaxed);
    let mut iface = Interface::new(
        config,
        &mut Phy {
            nic: &mut nic,
            rxq: &mut rxq,
        },
        now(),
    );
    let mut sockets = SocketSet::new(Vec::new());
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let mut icmp = sockets.add(icmp_socket());
    let echo_buf =
        || udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]);
    let mut echo_socket = udp::Socket::new(echo_buf(), echo_buf());
    let _ = echo_socket.bind(ECHO_PORT);
    let echo = sockets.add(echo_socket);
    let discard_buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; RX_QUEUE_MAX],
            vec![0; 64 * 1024],
        )
    };
    let mut discard_socket = udp::Socket::new(discard_buf(), discard_buf());
    let _ = discard_socket.bind(DISCARD_PORT);
    let discard = sockets.add(discard_socket);
    loop {
        let t = now();
        iface.poll(
            t,
            &mut Phy {
                nic: &mut nic,
                rxq: &mut rxq,
            },
            &mut sockets,
        );
        dhcp_events(&mut iface, &mut sockets, dhcp);
        pings(&mut sockets, &mut icmp);
        udp_echo(&mut sockets, echo);
        udp_discard(&mut sockets, discard);
        udp_sessions(&mut sockets);
        tcp_sessions(&mut iface, &mut sockets);
        iface.poll(
            now(),
            &mut Phy {
                nic: &mut nic,
                rxq: &mut rxq,
            },
            &mut sockets,
        );
        udp_sessions(&mut sockets);
        tcp_sessions(&mut iface, &mut sockets);
        let delay_ns = iface
            .poll_delay(now(), &sockets)
            .map_or(1_000_000_000, |d| d.total_micros() * 1000)
            .min(1_000_000_000);
        let deadline = time::now_ns() + delay_ns;
        let mut dropped = 0u64;
        let mut echo = 0u64;
        let mut bad = IngressStats::default();
        let mut deliver = |frame: &[u8]| {
            if let Err(why) = ingress::check(frame) {
                bad.count(why);
                return;
            }
            if is_echo_request(frame) {
                echo += 1;
            }
            if rxq.len() < RX_QUEUE_MAX {
                rxq.push_back(frame.to_vec());
            } else {
                dropped += 1;
            }
        };
        match mode {
            RxMode::Interrupt => {
                let _ = nic.receive(deadline, &mut deliver);
            }
            RxMode::Poll { hz } => {
                // Sleep to the next tick (or a request); then drain one budget.
                let period = 1_000_000_000 / hz.max(1);
                let tick = (time::now_ns() / period + 1) * period;
                let _ = sched::notify_wait(nic.rx_notify(), tick.min(deadline));
                nic.poll_rx(&mut deliver);
            }
        }
        let mut s = SHARED.lock();
        s.rx_dropped += dropped;
        for why in Malformed::ALL {
            s.ingress.dropped[why as usize] += bad.get(why);
        }
        s.icmp_echo_requests_seen += echo;
        s.rx_stats = Some(s.retired.0.plus(&nic.net.rx_stats()));
        s.tx_stats = Some(s.retired.1.plus(&nic.net.tx_stats()));
        s.nic = Some(nic_info_of(&nic));
        let reinit = core::mem::take(&mut s.reinit_requested) || nic.needs_reinit();
        drop(s);
        if reinit {
            let mut s = SHARED.lock();
            s.retired = (
                s.retired.0.plus(&nic.net.rx_stats()),
                s.retired.1.plus(&nic.net.tx_stats()),
            );
            drop(s);
            match reinit_nic(nic, mode) {
                Some(n) => nic = n,
                None => return,
            }
        }
    }
}

/// `virtio::attach` moves the driver's tables by value and needs more stack than is left
/// below the net task's own frame: run it on a thread of its own and wait for it.
fn attach_on_a_fresh_stack() -> Result<Box<VirtioNic>, virtio::AttachError> {
    type Slot = IrqLock<Option<Result<Box<VirtioNic>, virtio::AttachError>>>;
    let no_memory = virtio::AttachError::Dma(abi::Error::ENOMEM);
    let slot: alloc::sync::Arc<Slot> = alloc::sync::Arc::new(IrqLock::new(None));
    let done = sched::notify_create().map_err(|_| no_memory)?;
    let result = slot.clone();
    let spawned = sched::spawn("net-attach", move || {
        *result.lock() = Some(virtio::attach());
        let _ = sched::notify_post(done, 1);
    });
    if spawned.is_err() {
        sched::notify_destroy(done);
        return Err(no_memory);
    }
    loop {
        if let Some(r) = slot.lock().take() {
            sched::notify_destroy(done);
            return r;
        }
        let _ = sched::notify_wait(done, u64::MAX);
    }
}

/// Tells the rest of the kernel how to reach the NIC's task and what it runs on.
fn publish(nic: &VirtioNic, mode: RxMode) {
    let mut s = SHARED.lock();
    s.wake = Some(nic.rx_notify());
    s.rx_intid = Some(nic.rx_intid());
    s.nic = Some(nic_info_of(nic));
    s.mode = Some(mode);
}

/// The device is not to be trusted any more: reset it, let it go, and bring it up again
/// from scratch. The interface (address, sockets) carries on over the new one.
fn reinit_nic(nic: Box<VirtioNic>, mode: RxMode) -> Option<Box<VirtioNic>> {
    log::warn!("virtio-net: resetting the device and bringing it up again");
    let freed = nic.shut_down();
    log::info!("virtio-net: device reset; {freed} ring buffers freed");
    match attach_on_a_fresh_stack() {
        Ok(mut nic) => {
            if let RxMode::Poll { .. } = mode {
                nic.enter_polling_mode();
            }
            publish(&nic, mode);
            SHARED.lock().reinits += 1;
            log::info!("virtio-net: back up");
            Some(nic)
        }
        Err(e) => {
            log::error!("virtio-net: could not bring the device back ({e:?}); the net task stops");
            None
        }
    }
}

fn nic_info_of(nic: &VirtioNic) -> NicInfo {
    use drivers::virtio::Transport;
    NicInfo {
        irq: nic.mode,
        transport: nic.net.transport().kind(),
        link_up: nic.link_up,
        config_events: nic.config_events,
        link_downs: nic.link_downs,
    }
}

fn dhcp_events(iface: &mut Interface, sockets: &mut SocketSet<'_>, dhcp: SocketHandle) {
    let event = sockets.get_mut::<dhcpv4::Socket>(dhcp).poll();
    match event {
        Some(dhcpv4::Event::Configured(cfg)) => {
            log::info!("net: DHCP lease {} via {:?}", cfg.address, cfg.router);
            iface.update_ip_addrs(|addrs| {
                addrs.clear();
                let _ = addrs.push(IpCidr::Ipv4(cfg.address));
            });
            match cfg.router {
                Some(r) => {
                    let _ = iface.routes_mut().add_default_ipv4_route(r);
                }
                None => {
                    iface.routes_mut().remove_default_ipv4_route();
                }
            }
            let mut s = SHARED.lock();
            s.address = Some(cfg.address);
            s.gateway = cfg.router;
        }
        Some(dhcpv4::Event::Deconfigured) => {
            if SHARED.lock().address.is_some() {
                log::info!("net: DHCP lease lost");
            }
            iface.update_ip_addrs(|addrs| addrs.clear());
            iface.routes_mut().remove_default_ipv4_route();
            let mut s = SHARED.lock();
            s.address = None;
            s.gateway = None;
        }
        None => {}
    }
}

/// The UDP echo service (RFC 862): every datagram to port 7 goes back to its sender.
fn udp_echo(sockets: &mut SocketSet<'_>, echo: SocketHandle) {
    let socket = sockets.get_mut::<udp::Socket>(echo);
    let mut n = 0;
    let mut buf = [0u8; 2048];
    while socket.can_send() {
        let Ok((len, meta)) = socket.recv_slice(&mut buf) else {
            break;
        };
        if socket.send_slice(&buf[..len], meta.endpoint).is_err() {
            break;
        }
        n += 1;
    }
    if n > 0 {
        SHARED.lock().echoed += n;
    }
}

/// The discard service: counts and drops datagrams; notes flood-end markers.
fn udp_discard(sockets: &mut SocketSet<'_>, discard: SocketHandle) {
    let socket = sockets.get_mut::<udp::Socket>(discard);
    let (mut n, mut ends) = (0, 0);
    let mut buf = [0u8; 2048];
    while let Ok((len, _)) = socket.recv_slice(&mut buf) {
        n += 1;
        if buf.get(..len) == Some(FLOOD_END) {
            ends += 1;
        }
    }
    if n > 0 {
        let mut s = SHARED.lock();
        s.discarded += n;
        s.flood_ends += ends;
    }
}

static PORT_SEED: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// The local port of session `id`: in the dynamic range (49152-65535), offset per boot.
fn ephemeral_port(id: u64) -> u16 {
    let seed = u64::from(PORT_SEED.load(core::sync::atomic::Ordering::Relaxed));
    49152 + ((seed + id) % 16384) as u16
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The socket `ping` sends through, bound to our echo identifier.
fn icmp_socket() -> icmp::Socket<'static> {
    let buf = || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 16], vec![0; 4096]);
    let mut socket = icmp::Socket::new(buf(), buf());
    let _ = socket.bind(icmp::Endpoint::Ident(ICMP_IDENT));
    socket
}

/// Sends queued echo requests and matches replies.
fn pings(sockets: &mut SocketSet<'_>, icmp: &mut SocketHandle) {
    let mut s = SHARED.lock();
    // A request can stay queued for a host that never answers ARP after its ping gave
    // up. smoltcp rate-limits ARP per interface (one request a second, any address)
    // and this socket comes first, so that request would re-arm the limit every second
    // and starve every socket's first packet to a new neighbour for good, and block
    // later pings queued behind it. Nothing dequeues it but a fresh socket, which is
    // safe once no ping is waiting on a request already handed to the socket.
    let waiting = s.pings.iter().any(|p| p.sent_ns.is_some());
    if !waiting && sockets.get::<icmp::Socket>(*icmp).send_queue() > 0 {
        sockets.remove(*icmp);
        *icmp = sockets.add(icmp_socket());
    }
    let socket = sockets.get_mut::<icmp::Socket>(*icmp);
    let caps = DeviceCapabilities::default().checksum;
    for p in s.pings.iter_mut().filter(|p| p.sent_ns.is_none()) {
        let repr = Icmpv4Repr::EchoRequest {
            ident: ICMP_IDENT,
            seq_no: p.seq,
            data: b"capstan",
        };
        let Ok(buf) = socket.send(repr.buffer_len(), IpAddress::Ipv4(p.target)) else {
            break;
        };
        repr.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps);
        p.sent_ns = Some(time::now_ns());
    }
    while let Ok((data, from)) = socket.recv() {
        let Ok(packet) = Icmpv4Packet::new_checked(data) else {
            continue;
        };
        let Ok(Icmpv4Repr::EchoReply { seq_no, .. }) = Icmpv4Repr::parse(&packet, &caps) else {
            continue;
        };
        let done = s
            .pings
            .iter_mut()
            .find(|p| p.seq == seq_no && IpAddress::Ipv4(p.target) == from && p.result.is_none());
        if let Some(p) = done {
            let rtt = time::now_ns() - p.sent_ns.unwrap_or(0);
            p.result = Some(Ok(rtt));
            let _ = sched::notify_post(p.notify, 1);
        }
    }
}
