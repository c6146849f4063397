//! Interfaces fed by user-mode NIC drivers: the kernel's side of `NetIf` capabilities.
//!
//! A driver holding a NIC's `Device` opens the interface for that device (`netif_open`):
//! the kernel maps a frame area into it (`abi::netif`: an RX ring the driver fills, a TX
//! ring the kernel fills) and, the first time, starts a task that runs a smoltcp
//! interface of its own over that area, with its own DHCP client, gate (checks,
//! reassembly, neighbours) and UDP echo and discard services. User sockets reach it by
//! address (`bind` to its address, or a remote inside its subnet: `route`).
//!
//! The interface, its address and its sockets belong to the kernel; the driver only
//! carries frames. When the driver dies its `Attachment` drops after its address space is
//! gone, the interface is down (frames it sends are dropped and counted, TCP retransmits),
//! and when a new driver opens the same device the interface carries on over a fresh area:
//! connections survive a driver restart.
//!
//! The area is written by the driver at any time and trusted for nothing: an index more
//! than a ring ahead drops the batch (and resynchronises), a length outside an Ethernet
//! frame drops the frame, each counted in `/proc/netif`; frames then pass the same gate
//! as the kernel NIC's.

use alloc::sync::Arc;
use alloc::vec::Vec;

use abi::Error;
use abi::netif::AREA_LEN;
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

use super::IfaceId;
use crate::arch::shared::SharedArea;
use crate::sched::{self, NotifyId, WakeOn};
use crate::sync::IrqLock;

mod task;

/// `NetIf` interfaces at most (ids 1 to 4; 0 is the kernel's NIC).
const MAX_NETIFS: usize = 4;

/// What an interface counted (`/proc/netif`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames taken from the RX ring.
    pub rx_frames: u64,
    /// Of those, frames that spanned slots (segments the device coalesced).
    pub rx_chained: u64,
    /// Frames put in the TX ring.
    pub tx_frames: u64,
    /// Times `RX_HEAD` ran more than a ring ahead (the batch was dropped).
    pub rx_bad_index: u64,
    /// Frames whose length was no Ethernet frame, or whose slots ran past `RX_HEAD`
    /// (dropped).
    pub rx_bad_len: u64,
    /// Frames with undefined or contradicting flags (dropped).
    pub rx_bad_flags: u64,
    /// Frames dropped because the kernel had no memory for them just then.
    pub rx_no_memory: u64,
    /// Times `TX_TAIL` was not between the ring's start and `TX_HEAD` (frame dropped).
    pub tx_bad_index: u64,
    /// Frames dropped because the TX ring was full.
    pub tx_full: u64,
    /// Frames dropped because no driver was attached (more than the task keeps for the
    /// next one).
    pub tx_no_driver: u64,
    /// Frames sent while no driver was attached and handed to the next one.
    pub tx_parked: u64,
    /// ICMP echo requests to the interface that passed the gate (each is answered).
    pub echo_requests: u64,
    /// Drivers that opened the interface.
    pub attaches: u64,
    /// `netif_kick` calls.
    pub kicks: u64,
}

impl Counters {
    fn add(&mut self, d: &Counters) {
        self.rx_frames += d.rx_frames;
        self.rx_chained += d.rx_chained;
        self.tx_frames += d.tx_frames;
        self.rx_bad_index += d.rx_bad_index;
        self.rx_bad_len += d.rx_bad_len;
        self.rx_bad_flags += d.rx_bad_flags;
        self.rx_no_memory += d.rx_no_memory;
        self.tx_bad_index += d.tx_bad_index;
        self.tx_full += d.tx_full;
        self.tx_no_driver += d.tx_no_driver;
        self.tx_parked += d.tx_parked;
        self.echo_requests += d.echo_requests;
    }
}

/// A driver's frame area and where to signal it.
#[derive(Debug)]
struct Link {
    area: SharedArea,
    /// The driver's notification word and the bit `netif_open` named.
    signal: (NotifyId, u64),
}

/// What other threads see of one interface.
struct IfShared {
    id: IfaceId,
    /// The device the interface belongs to (PCI `bus << 8 | dev << 3 | fn`).
    bdf: u32,
    mac: [u8; 6],
    wake: NotifyId,
    link: Option<Arc<Link>>,
    address: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Address>,
    counters: Counters,
}

static NETIFS: IrqLock<Vec<IfShared>> = IrqLock::new(Vec::new());

/// What a driver does after `netif_kick` (`abi::netif::KICK_POLLING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverNext {
    /// Waits for its next interrupt.
    Waits,
    /// Goes on polling its device.
    Polls,
}

/// A driver's hold on an interface: the object behind a `NetIf` capability. Dropping it
/// (after the driver's mapping of the area is gone) detaches the driver; the interface
/// stays.
#[derive(Debug)]
pub struct Attachment {
    id: IfaceId,
    link: Arc<Link>,
}

impl Attachment {
    /// Physical address of the frame area (mapped into the driver).
    pub fn area_paddr(&self) -> usize {
        self.link.area.paddr()
    }

    /// The frame area, as the driver sees it (kernel tests play the driver through it).
    pub fn area(&self) -> &SharedArea {
        &self.link.area
    }

    /// `netif_kick`: frames are waiting in the RX ring; `next`, what the driver does now.
    pub fn kick(&self, next: DriverNext) {
        if let Some(w) = with(self.id, |i| {
            i.counters.kicks += 1;
            i.wake
        }) {
            let on = match next {
                // The driver waits for its next interrupt right after: the interface's
                // task takes the frames on the CPU it leaves, with no cross-CPU wake-up.
                DriverNext::Waits => WakeOn::ThisCpu,
                // The driver keeps its CPU: the task runs on an idle one beside it (a
                // download's frames then cost the driver's copies or the task's, not both).
                DriverNext::Polls => WakeOn::AnyCpu,
            };
            let _ = sched::notify_post_on(w, 1, on);
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        with(self.id, |i| {
            if i.link.as_ref().is_some_and(|l| Arc::ptr_eq(l, &self.link)) {
                i.link = None;
            }
        });
        wake(self.id);
    }
}

fn with<R>(id: IfaceId, f: impl FnOnce(&mut IfShared) -> R) -> Option<R> {
    NETIFS.lock().iter_mut().find(|i| i.id == id).map(f)
}

/// Opens the interface of the NIC at `bdf` for a driver whose notification word and bit
/// are `signal`: a fresh frame area, the interface made (and its task started) the first
/// time. `EBUSY` while another driver has it open, `EINVAL` if `mac` is not the one the
/// interface was made with, `ENOSPC` past four interfaces.
pub fn open(bdf: u32, mac: [u8; 6], signal: (NotifyId, u64)) -> Result<Attachment, Error> {
    let link = Arc::new(Link {
        area: SharedArea::new(AREA_LEN)?,
        signal,
    });
    let attach = |i: &mut IfShared| -> Result<Attachment, Error> {
        if i.link.is_some() {
            return Err(Error::EBUSY);
        }
        if i.mac != mac {
            return Err(Error::EINVAL);
        }
        i.link = Some(link.clone());
        i.counters.attaches += 1;
        Ok(Attachment {
            id: i.id,
            link: link.clone(),
        })
    };
    {
        let mut l = NETIFS.lock();
        if let Some(i) = l.iter_mut().find(|i| i.bdf == bdf) {
            let a = attach(i)?;
            drop(l);
            wake(a.id); // the task follows the new driver (not under the table's lock)
            return Ok(a);
        }
        if l.len() >= MAX_NETIFS {
            return Err(Error::ENOSPC);
        }
    }
    let wake_id = sched::notify_create().map_err(|_| Error::ENOMEM)?;
    let mut l = NETIFS.lock();
    let id = (1..=MAX_NETIFS as IfaceId)
        .find(|&id| l.iter().all(|i| i.id != id))
        .ok_or(Error::ENOSPC)?;
    let mut shared = IfShared {
        id,
        bdf,
        mac,
        wake: wake_id,
        link: None,
        address: None,
        gateway: None,
        counters: Counters::default(),
    };
    let a = attach(&mut shared)?;
    l.push(shared);
    drop(l);
    if sched::spawn("netif", move || task::run(id, mac, wake_id)).is_err() {
        NETIFS.lock().retain(|i| i.id != id);
        sched::notify_destroy(wake_id);
        return Err(Error::ENOMEM);
    }
    log::info!(
        "netif{id}: interface for {:02x}:{:02x}.{} up",
        bdf >> 8,
        (bdf >> 3) & 31,
        bdf & 7
    );
    Ok(a)
}

/// Wakes interface `id`'s task.
pub(super) fn wake(id: IfaceId) {
    if let Some(w) = with(id, |i| i.wake) {
        let _ = sched::notify_post(w, 1);
    }
}

/// Interface `id`'s DHCP address.
pub fn address(id: IfaceId) -> Option<Ipv4Cidr> {
    with(id, |i| i.address).flatten()
}

/// The interface whose subnet holds `dst`, if one does.
pub fn route(dst: Ipv4Address) -> Option<IfaceId> {
    NETIFS
        .lock()
        .iter()
        .find(|i| i.address.is_some_and(|a| a.contains_addr(&dst)))
        .map(|i| i.id)
}

/// The interface whose address is `addr`, if one's is.
pub fn by_address(addr: Ipv4Address) -> Option<IfaceId> {
    NETIFS
        .lock()
        .iter()
        .find(|i| i.address.is_some_and(|a| a.address() == addr))
        .map(|i| i.id)
}

/// One interface, for `/proc/netif`.
#[derive(Clone, Copy, Debug)]
pub struct NetifInfo {
    /// Its id (`netifN`).
    pub id: IfaceId,
    /// The device (`bus << 8 | dev << 3 | fn`).
    pub bdf: u32,
    /// Its MAC.
    pub mac: [u8; 6],
    /// Whether a driver has it open.
    pub attached: bool,
    /// DHCP address.
    pub address: Option<Ipv4Cidr>,
    /// DHCP router.
    pub gateway: Option<Ipv4Address>,
    /// Counters.
    pub counters: Counters,
}

/// Every `NetIf` interface.
pub fn list() -> Vec<NetifInfo> {
    NETIFS
        .lock()
        .iter()
        .map(|i| NetifInfo {
            id: i.id,
            bdf: i.bdf,
            mac: i.mac,
            attached: i.link.is_some(),
            address: i.address,
            gateway: i.gateway,
            counters: i.counters,
        })
        .collect()
}
