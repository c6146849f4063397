//! The interface's task: smoltcp over the driver's frame area, the gate, DHCP and the
//! services, and the user sockets on this interface. One per `NetIf` interface, for the
//! rest of the boot, across drivers.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;

use abi::netif::{
    MAX_CHAIN, RX_HEAD, RX_RING, RX_TAIL, SLOT_HEADER, SLOTS, SlotHeader, TX_HEAD, TX_RING,
    TX_TAIL, pending, slot,
};
use drivers::virtio::net::RxMeta;

use crate::arch::shared::SharedArea;
use crate::net::ingress::{ETH_HEADER, ETHERTYPE_IPV4, PROTO_TCP};
use crate::net::netif_slot::{Chain, SlotRefused, longest};
use smoltcp::iface::{Config, Interface, PollResult, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress};

use super::super::iface::{self, Services, now};
use super::super::phy::gated_capabilities;
use super::super::service::{Lease, dhcp_poll, udp_discard, udp_echo};
use super::super::{IfaceId, socket};
use super::{Counters, Link, with};
use crate::net::gate::{Admit, Gate};
use crate::sched::{self, NotifyId, WakeOn};
use crate::time;

use crate::net::netif_slot::{MAX_ETH_FRAME, MIN_ETH_FRAME};
/// TCP segments sent while no driver is attached that are kept for the next one: mostly
/// acknowledgements and window updates; one that never arrives can leave a sender waiting
/// for its persist or retransmission timer (200 ms and more) instead of sending on. Enough
/// for a few per socket; older ones are dropped. Other protocols retry on their own (DHCP)
/// or promise nothing (UDP, ICMP), and an interface without a driver and without TCP holds
/// no memory for them.
const PARKED: usize = 64;

/// Whether an Ethernet frame carries a TCP/IPv4 segment (the kernel built it: the
/// protocol byte of its IPv4 header is enough).
fn is_tcp(frame: &[u8]) -> bool {
    frame.len() > ETH_HEADER + 9
        && frame[12..14] == ETHERTYPE_IPV4.to_be_bytes()
        && frame[ETH_HEADER + 9] == PROTO_TCP
}
/// Frames taken from the RX ring per turn before the task lets others run.
const BUDGET: usize = crate::net::virtio::BUDGET;
/// smoltcp polls per turn (as the kernel NIC's task: replies leave in the same turn).
const POLLS_PER_TURN: usize = 4;

/// The task's view of the current driver's area: its own copies of the indices it owns.
struct Ring {
    link: Option<Arc<Link>>,
    /// `link`'s driver is gone; the frames it published are still being taken.
    detached: bool,
    /// Frames sent while no driver was attached, for the next one.
    parked: VecDeque<Vec<u8>>,
    rx_tail: u32,
    tx_head: u32,
    /// Frames were put in the TX ring this turn (the driver is signalled).
    tx_added: bool,
    /// A slot was taken from a full RX ring this turn: the driver, which keeps frames in
    /// its device while the ring is full, is signalled that there is room again.
    room_freed: bool,
    /// Counted since the last publish.
    counted: Counters,
}

impl Ring {
    /// Follows the interface's driver: a new one starts with fresh (zeroed) indices.
    fn follow(&mut self, id: IfaceId) {
        let now = with(id, |i| i.link.clone()).flatten();
        let same = match (&now, &self.link) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        // A driver that went leaves the frames it published, whole: they are taken first
        // (its mapping of the area is gone, so they no longer change) unless a new driver
        // is already there. Every one taken is one the sender need not retransmit.
        if now.is_none() && self.rx_waiting() {
            self.detached = true;
            return;
        }
        if let Some(old) = core::mem::replace(&mut self.link, now) {
            self.reclaim_tx(&old);
        }
        self.detached = false;
        self.rx_tail = 0;
        self.tx_head = 0;
        if self.link.is_some() && !self.parked.is_empty() {
            log::info!(
                "netif{id}: {} frame(s) the last driver did not send go to the new one",
                self.parked.len()
            );
            for frame in core::mem::take(&mut self.parked) {
                self.counted.tx_parked += 1;
                self.push_tx(&frame);
            }
        }
    }

    /// The frames a driver that went left in its TX ring (put there as it died, or before),
    /// parked ahead of those sent since: a window update among them is what a sender that
    /// saw our window close waits for. The lengths are read back and checked like any slot
    /// (the driver could have rewritten them); the bytes are the driver's to send anyway.
    fn reclaim_tx(&mut self, old: &Link) {
        let tail = old.area.load(TX_TAIL);
        let Some(n) = pending(self.tx_head, tail) else {
            return;
        };
        let mut left = Vec::new();
        for i in 0..n {
            let off = slot(TX_RING, tail.wrapping_add(i));
            let mut len = [0u8; 2];
            old.area.read(off, &mut len);
            let len = usize::from(u16::from_le_bytes(len));
            if (MIN_ETH_FRAME..=MAX_ETH_FRAME).contains(&len) {
                let mut frame = vec![0u8; len];
                old.area.read(off + SLOT_HEADER, &mut frame);
                if is_tcp(&frame) {
                    left.push(frame);
                }
            }
        }
        for frame in left.into_iter().rev() {
            self.parked.push_front(frame);
        }
        self.trim_parked();
    }

    /// Drops (and counts) the oldest parked frames past [`PARKED`].
    fn trim_parked(&mut self) {
        while self.parked.len() > PARKED {
            self.parked.pop_front();
            self.counted.tx_no_driver += 1;
        }
    }

    /// Frames waiting in the RX ring (0 for a bad index: the next `pop_rx` deals with it).
    fn rx_waiting(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| pending(l.area.load(RX_HEAD), self.rx_tail).is_some_and(|n| n > 0))
    }

    /// The next well-formed frame of the RX ring (gathered from its slots), and what the
    /// driver said of its checksum and segmentation.
    fn pop_rx(&mut self) -> Option<(Vec<u8>, RxMeta)> {
        let link = self.link.clone()?;
        let area = &link.area;
        loop {
            let head = area.load(RX_HEAD);
            let waiting = match pending(head, self.rx_tail) {
                Some(0) => return None,
                Some(n) => n,
                None => {
                    self.counted.rx_bad_index += 1;
                    self.rx_tail = head;
                    area.store(RX_TAIL, head);
                    return None;
                }
            };
            // With fewer than a longest frame's slots free the driver may be waiting.
            self.room_freed |= waiting as usize > SLOTS - MAX_CHAIN;
            let (taken, used) = read_frame(area, self.rx_tail, waiting);
            self.rx_tail = self.rx_tail.wrapping_add(used);
            area.store(RX_TAIL, self.rx_tail);
            match taken {
                Ok(frame) => {
                    self.counted.rx_frames += 1;
                    self.counted.rx_chained += u64::from(used > 1);
                    return Some(frame);
                }
                Err(SlotRefused::Len) => self.counted.rx_bad_len += 1,
                Err(SlotRefused::Flags) => self.counted.rx_bad_flags += 1,
                Err(SlotRefused::NoMemory) => self.counted.rx_no_memory += 1,
            }
        }
    }

    /// Puts `frame` in the TX ring; dropped (and counted) with a full ring or a bad
    /// `TX_TAIL`. Without a driver a TCP segment is parked for the next one ([`PARKED`] at
    /// most, the oldest dropped and counted); anything else is dropped and counted.
    fn push_tx(&mut self, frame: &[u8]) {
        let Some(link) = self.link.as_ref().filter(|_| !self.detached) else {
            if is_tcp(frame) {
                self.parked.push_back(frame.to_vec());
                self.trim_parked();
            } else {
                self.counted.tx_no_driver += 1;
            }
            return;
        };
        if !(MIN_ETH_FRAME..=MAX_ETH_FRAME).contains(&frame.len()) {
            return; // smoltcp never builds one; nothing to send
        }
        let area = &link.area;
        match pending(self.tx_head, area.load(TX_TAIL)) {
            None => self.counted.tx_bad_index += 1,
            Some(n) if n as usize >= SLOTS => self.counted.tx_full += 1,
            Some(_) => {
                let off = slot(TX_RING, self.tx_head);
                let header = SlotHeader {
                    len: frame.len() as u16,
                    ..SlotHeader::default()
                };
                area.write(off, &header.encode());
                area.write(off + SLOT_HEADER, frame);
                self.tx_head = self.tx_head.wrapping_add(1);
                area.store(TX_HEAD, self.tx_head);
                self.tx_added = true;
                self.counted.tx_frames += 1;
            }
        }
    }

    /// Signals the driver if frames were put in its TX ring, or room made in a full RX
    /// ring, since the last call. A task that sleeps next wakes the driver on this CPU, so
    /// the frames leave without a cross-CPU wake-up; one with frames still waiting (its
    /// budget ran out) wakes it where a CPU is idle, and the two keep working side by side.
    fn signal(&mut self, on: WakeOn) {
        let news = core::mem::take(&mut self.tx_added) | core::mem::take(&mut self.room_freed);
        if news
            && !self.detached
            && let Some(link) = &self.link
        {
            let _ = sched::notify_post_on(link.signal.0, link.signal.1, on);
        }
    }
}

/// Reads the frame whose first slot is RX slot `tail`, `waiting` slots being published:
/// the frame or why it was refused, and the slots it used up (each header is read once; a
/// frame running past the published slots is refused, as the driver publishes whole
/// frames).
fn read_frame(
    area: &SharedArea,
    tail: u32,
    waiting: u32,
) -> (Result<(Vec<u8>, RxMeta), SlotRefused>, u32) {
    let at = |i: u32| slot(RX_RING, tail.wrapping_add(i));
    let header = |i: u32| {
        let mut raw = [0u8; SLOT_HEADER];
        area.read(at(i), &mut raw);
        SlotHeader::decode(&raw)
    };
    let (mut chain, first) = match Chain::first(&header(0)) {
        Ok(c) => c,
        Err(e) => return (Err(e), 1),
    };
    let mut pieces = [0usize; MAX_CHAIN];
    pieces[0] = first;
    let mut n = 1;
    while chain.more() {
        if n == waiting {
            return (Err(SlotRefused::Len), waiting);
        }
        match chain.next(&header(n)) {
            Ok(len) => pieces[n as usize] = len, // `next` refuses a slot past MAX_CHAIN
            Err(e) => return (Err(e), n + 1),
        }
        n += 1;
    }
    let (len, meta) = match chain.finish() {
        Ok(f) => f,
        Err(e) => return (Err(e), n),
    };
    let mut frame = Vec::new();
    if frame.try_reserve_exact(len).is_err() {
        return (Err(SlotRefused::NoMemory), n);
    }
    for (i, &piece) in pieces[..n as usize].iter().enumerate() {
        area.read_append(at(i as u32) + SLOT_HEADER, piece, &mut frame);
    }
    (Ok((frame, meta)), n)
}

/// smoltcp's device over the ring: frames taken through the gate, at most `budget` per
/// turn; frames sent are copied into TX slots.
struct Phy<'a> {
    ring: RefCell<&'a mut Ring>,
    gate: &'a mut Gate,
    budget: &'a mut usize,
}

impl Phy<'_> {
    fn next_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(f) = self.gate.next_ready() {
                return Some(f);
            }
            if *self.budget == 0 {
                return None;
            }
            let ring = self.ring.get_mut();
            let (f, meta) = ring.pop_rx()?;
            *self.budget -= 1;
            let admit = self.gate.admit(&f, meta, longest(&meta), time::now_ns());
            for out in self.gate.take_outgoing() {
                ring.push_tx(&out); // ARP
            }
            if admit == Admit::Deliver {
                return Some(f);
            }
        }
    }
}

/// A received frame (a copy out of its slot).
struct RxTok(Vec<u8>);

/// A transmit slot: the frame is built, then copied into the TX ring.
struct TxTok<'b, 'a>(&'b RefCell<&'a mut Ring>);

impl phy::RxToken for RxTok {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for TxTok<'_, '_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0u8; len];
        let r = f(&mut frame);
        self.0.borrow_mut().push_tx(&frame);
        r
    }
}

impl<'a> phy::Device for Phy<'a> {
    type RxToken<'b>
        = RxTok
    where
        Self: 'b;
    type TxToken<'b>
        = TxTok<'b, 'a>
    where
        Self: 'b;

    fn receive(&mut self, _t: Instant) -> Option<(RxTok, TxTok<'_, 'a>)> {
        let f = self.next_frame()?;
        Some((RxTok(f), TxTok(&self.ring)))
    }

    fn transmit(&mut self, _t: Instant) -> Option<TxTok<'_, 'a>> {
        Some(TxTok(&self.ring))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        // Received checksums: the gate verified them, or the driver's device did (a slot's
        // checksum word). Frames are at most MAX_ETH_FRAME.
        gated_capabilities(SLOTS / 2, true)
    }
}

/// What the interface's task owns.
struct Task {
    id: IfaceId,
    iface: Interface,
    sockets: SocketSet<'static>,
    services: Services,
    gate: Gate,
    ring: Ring,
    /// Frames smoltcp may still take this turn.
    budget: usize,
    /// The task yielded to a process it woke in this turn (once a turn at most).
    yielded: bool,
}

/// The interface's task: runs for the rest of the boot, across drivers.
pub(super) fn run(id: IfaceId, mac: [u8; 6], wake: NotifyId) {
    let mut gate = Gate::new(mac);
    let mut ring = Ring {
        link: None,
        detached: false,
        parked: VecDeque::new(),
        rx_tail: 0,
        tx_head: 0,
        tx_added: false,
        room_freed: false,
        counted: Counters::default(),
    };
    let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    config.random_seed = iface::seed(mac);
    let iface = {
        let mut budget = 0;
        let mut phy = Phy {
            ring: RefCell::new(&mut ring),
            gate: &mut gate,
            budget: &mut budget,
        };
        Interface::new(config, &mut phy, now())
    };
    let mut sockets = SocketSet::new(Vec::new());
    let services = iface::services(&mut sockets);
    let mut t = Task {
        id,
        iface,
        sockets,
        services,
        gate,
        ring,
        budget: 0,
        yielded: false,
    };
    let mut echo_requests = 0;
    loop {
        t.gate.tick(time::now_ns());
        t.ring.follow(id);
        t.budget = BUDGET;
        t.yielded = false;
        t.poll();
        for _ in 0..POLLS_PER_TURN {
            serve(&mut t);
            if !t.poll() {
                break;
            }
        }
        let more = t.budget == 0 && t.ring.rx_waiting();
        t.ring.signal(if more {
            WakeOn::AnyCpu
        } else {
            WakeOn::ThisCpu
        });
        let mut counted = core::mem::take(&mut t.ring.counted);
        counted.echo_requests = t.gate.echo_requests - echo_requests;
        echo_requests = t.gate.echo_requests;
        with(id, |i| i.counters.add(&counted));
        if more {
            sched::yield_now(); // a flood never starves other threads
            continue;
        }
        let delay_ns = t
            .iface
            .poll_delay(now(), &t.sockets)
            .map_or(1_000_000_000, |d| d.total_micros().saturating_mul(1000))
            .min(1_000_000_000);
        let mut deadline = time::now_ns().saturating_add(delay_ns);
        if let Some(at) = t.gate.next_timeout() {
            deadline = deadline.min(at);
        }
        let _ = sched::notify_wait(wake, deadline);
    }
}

impl Task {
    /// One smoltcp poll; whether it changed any socket.
    fn poll(&mut self) -> bool {
        let mut phy = Phy {
            ring: RefCell::new(&mut self.ring),
            gate: &mut self.gate,
            budget: &mut self.budget,
        };
        let changed = self.iface.poll(now(), &mut phy, &mut self.sockets) != PollResult::None;
        iface::flush_egress(&mut self.iface, &mut phy, &mut self.sockets);
        changed
    }
}

/// The interface's own services, then the user sockets that use it.
fn serve(t: &mut Task) {
    let (id, iface, sockets) = (t.id, &mut t.iface, &mut t.sockets);
    match dhcp_poll(iface, sockets, t.services.dhcp, &mut t.gate) {
        Some(Lease::Got {
            address, router, ..
        }) => {
            with(id, |i| (i.address, i.gateway) = (Some(address), router));
            match router {
                Some(r) => log::info!("netif{id}: DHCP lease {address} via {r}"),
                None => log::info!("netif{id}: DHCP lease {address} (no router)"),
            }
        }
        Some(Lease::Lost) => {
            let had = with(id, |i| {
                i.gateway = None;
                i.address.take()
            });
            if had.flatten().is_some() {
                log::info!("netif{id}: DHCP lease lost");
            }
        }
        None => {}
    }
    udp_echo(sockets, t.services.echo);
    udp_discard(sockets, t.services.discard);
    // As on the kernel NIC (poll.rs): a process this news woke waits on this CPU; if nothing
    // else does, let it take the data now so its answer leaves in this turn.
    let woke = socket::serve(id, iface, sockets);
    if woke > 0 && !t.yielded && sched::queued_here() <= woke {
        t.yielded = true;
        sched::yield_now();
        socket::serve(id, iface, sockets);
    }
}
