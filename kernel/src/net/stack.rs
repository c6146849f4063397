//! smoltcp over virtio-net: the net task, DHCP, ICMP echo, and the kernel API.
//!
//! One kernel thread owns the NIC and the smoltcp interface. It sleeps on the
//! RX vector's notification (the interrupt, or a request from another thread),
//! opens a NAPI round, lets smoltcp pull frames straight from the ring (through
//! the gate: checks, reassembly, neighbours), and sleeps again until the next
//! interrupt or the next timer. No tick polls the device. Other threads talk to it
//! through requests (`ping`, sockets) and read its state (`address`, `status`).
//! See docs/net.md.
//!
//! The pieces: `iface` sets up the interface and the services' sockets, `poll` is the
//! task's loop (NAPI round, smoltcp, device reset), `phy` is smoltcp's view of the NIC,
//! `service` the services the task runs itself (DHCP, ping, UDP echo and discard), and
//! `socket` the UDP, TCP and ICMP sockets user processes (and kernel tests) hold. This
//! file holds what they share and the kernel-facing API.

use alloc::vec::Vec;

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use super::ingress::IngressStats;
use super::neigh::NeighStats;
use super::virtio;
use crate::sched::{self, NotifyId};
use crate::sync::IrqLock;
use crate::time;

mod iface;
pub mod netif;
mod phy;
mod poll;
mod service;
mod socket;

pub use super::mode::RxMode;
pub use service::ping;
pub use socket::{Proto, SockError, Socket, list as sockets};

/// What other threads can see and ask.
struct Shared {
    /// The RX vector's INTID.
    rx_intid: Option<u32>,
    mode: Option<RxMode>,
    /// Wakes the net task (the RX vector's notification).
    wake: Option<NotifyId>,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Address>,
    pings: Vec<service::Ping>,
    icmp_echo_requests_seen: u64,
    reassembled: u64,
    delivered: u64,
    /// Datagrams being reassembled and their bytes; datagrams held for ARP.
    gate_held: (usize, usize, usize),
    neigh: NeighStats,
    /// Remotes sockets and pings just started to talk to (their next hop is asked for).
    fresh_remotes: Vec<Ipv4Address>,
    rx_stats: Option<drivers::virtio::net::QueueStats>,
    tx_stats: Option<drivers::virtio::net::QueueStats>,
    nic: Option<NicInfo>,
    ingress: IngressStats,
    discarded: u64,
    discarded_large: u64,
    flood_ends: u64,
    hostile_ends: u64,
    reinit_requested: bool,
    reinits: u64,
    /// Counters of the devices given up on (so totals survive a reset).
    retired: (
        drivers::virtio::net::QueueStats,
        drivers::virtio::net::QueueStats,
    ),
    echoed: u64,
    /// User sockets.
    socks: Vec<socket::SockState>,
    /// The next socket id.
    next_session: u64,
    /// DNS servers from DHCP.
    dns_servers: heapless::Vec<Ipv4Address, 3>,
}

static SHARED: IrqLock<Shared> = IrqLock::new(Shared {
    rx_intid: None,
    nic: None,
    ingress: IngressStats::ZERO,
    discarded: 0,
    discarded_large: 0,
    flood_ends: 0,
    hostile_ends: 0,
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
    icmp_echo_requests_seen: 0,
    reassembled: 0,
    delivered: 0,
    gate_held: (0, 0, 0),
    neigh: NeighStats {
        asked: 0,
        held: 0,
        released: 0,
        expired: 0,
        probes_answered: 0,
        defended: 0,
    },
    fresh_remotes: Vec::new(),
    rx_stats: None,
    tx_stats: None,
    echoed: 0,
    socks: Vec::new(),
    next_session: 1,
    dns_servers: heapless::Vec::new(),
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
}

/// Starts the net task: attaches the NIC and runs DHCP.
pub fn start(mode: RxMode) -> Result<(), virtio::AttachError> {
    let mut nic = virtio::attach()?;
    if let (RxMode::Poll { hz }, Some(used)) = (mode, mode.poll_hz()) {
        if hz != used {
            log::warn!(
                "net: polling at {used} Hz, not {hz} (the range is {} to {} Hz)",
                super::mode::MIN_POLL_HZ,
                super::mode::MAX_POLL_HZ
            );
        }
        nic.enter_polling_mode();
    }
    sched::spawn("net", move || poll::run(nic, mode))
        .map_err(|_| virtio::AttachError::Dma(abi::Error::ENOMEM))?;
    Ok(())
}

/// The DHCP-assigned address, once configured.
pub fn address() -> Option<Ipv4Cidr> {
    SHARED.lock().address
}

/// The DNS servers DHCP named.
pub fn dns_servers() -> heapless::Vec<Ipv4Address, 3> {
    SHARED.lock().dns_servers.clone()
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
    /// The offloads negotiated.
    pub offloads: virtio::Offloads,
}

/// How the NIC is attached (None before the stack started).
pub fn nic_info() -> Option<NicInfo> {
    SHARED.lock().nic
}

/// The offloads the NIC negotiated (None before the stack started).
pub fn offloads() -> Option<virtio::Offloads> {
    nic_info().map(|n| n.offloads)
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
    /// Datagrams reassembled from fragments.
    pub reassembled: u64,
    /// Frames the gate handed to smoltcp.
    pub delivered: u64,
    /// Datagrams being reassembled, the fragment bytes they hold, and datagrams held
    /// while their sender is resolved (all bounded; see `net::reasm`, `net::neigh`).
    pub gate_held: (usize, usize, usize),
    /// What the neighbour logic did (ARP asked, datagrams held, probes answered).
    pub neigh: NeighStats,
    /// UDP datagrams echoed.
    pub echoed: u64,
    /// How the NIC is attached.
    pub nic: Option<NicInfo>,
    /// Frames the gate dropped, by reason.
    pub ingress: IngressStats,
    /// Datagrams the discard service dropped.
    pub discarded: u64,
    /// Of those, datagrams longer than one 1500-byte frame carries (jumbo frames, or
    /// reassembled).
    pub discarded_large: u64,
    /// Flood-end markers seen on the discard port.
    pub flood_ends: u64,
    /// End markers of the hostile-peer frames seen on the discard port.
    pub hostile_ends: u64,
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
        reassembled: s.reassembled,
        delivered: s.delivered,
        gate_held: s.gate_held,
        neigh: s.neigh,
        echoed: s.echoed,
        nic: s.nic,
        ingress: s.ingress,
        discarded: s.discarded,
        discarded_large: s.discarded_large,
        flood_ends: s.flood_ends,
        hostile_ends: s.hostile_ends,
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

/// Which interface of the stack: [`PRIMARY`] (the kernel's own NIC) or a `NetIf` interface
/// (`netif`, fed by a user-mode driver).
pub type IfaceId = u8;
/// The interface of the kernel's own NIC.
pub const PRIMARY: IfaceId = 0;

/// Wakes the task that runs interface `id`.
fn wake_iface(id: IfaceId) {
    if id == PRIMARY {
        wake_task();
    } else {
        netif::wake(id);
    }
}

/// Interface `id`'s address, once DHCP configured one.
pub fn iface_address(id: IfaceId) -> Option<Ipv4Cidr> {
    if id == PRIMARY {
        address()
    } else {
        netif::address(id)
    }
}

fn wake_task() {
    let wake = SHARED.lock().wake;
    if let Some(w) = wake {
        let _ = sched::notify_post(w, 2);
    }
}
