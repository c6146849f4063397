//! `vnet [--probe] [--no-event-idx]`: a virtio-net NIC driven from user space.
//!
//! The second NIC of issue 17: the process holds a modern virtio-net function as
//! capabilities (docs/user-drivers.md "The virtio-net driver") — its virtio structures
//! mapped with `mmio_map`, found through `dev_cfg_read`; its rings and buffers DMA regions
//! (`udrv::vring`); the receive queue's MSI-X entry an interrupt line bound to the receive
//! ring in a `udrv::vring::Napi`, so a round is suppress, drain with a budget, re-enable,
//! recheck, re-arm, and nothing else re-arms it. The transmit ring is bound to a second
//! MSI-X line the same way, but kept masked (a `Round`) and reclaimed before each send; it
//! is finished — its interrupt armed — only while every transmit buffer is in flight and
//! frames wait, so room comes back by interrupt, never by a timed re-check. Every value the device writes (used ring)
//! and the kernel writes (frame area) is checked before it is used.
//!
//! - `--probe`: bring the device up, print its MAC and link, send one ARP request for
//!   10.0.2.2 from 10.0.2.15 and wait, by interrupt and with a deadline, for the reply
//!   (QEMU's user-network gateway answers); `vnet probe: ok tx=N rx=N irqs=N`, exit 0.
//! - default: open the kernel's interface for the NIC (`netif_open`) and move frames both
//!   ways between the device's queues and the interface's frame rings until killed.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use abi::CapType;
use abi::dev::IRQ_MSIX;
use capstan_programs::tool::Tool;
use capstan_rt::dev::{Device, Kernel};
use capstan_rt::{Startup, entry, println, process, time};
use udrv::DmaDir;
use udrv::netif::{self, AfterKick, NetIf, RxCsum, RxMeta};
use udrv::pool::{self, Slice};
use udrv::virtio::net::{self as vnet_hdr, RxOffloads};
use udrv::virtio::{self, ModernTransport, QueueSetup, StructWindow, Transport, feature};
use udrv::vring::{BufDir, Completion, Napi, NotFinished, Rejected, Round, Vring, ring_bytes};

entry!(main);

const TOOL: Tool = Tool {
    name: "vnet",
    usage: "usage: vnet [--probe] [--no-event-idx] [--no-large-receive]\n  Drives the virtio-net function granted to this process from user space.\n  --probe         bring it up, ARP for 10.0.2.2 from 10.0.2.15, print what came back\n  --no-event-idx  do not negotiate VIRTIO_F_EVENT_IDX (flag-based suppression)\n  --no-large-receive  do not negotiate MRG_RXBUF and GUEST_TSO4 (frames of 1514 bytes at most)\n  Without --probe: open the kernel's interface for the NIC and move its frames.",
};

/// virtio-net feature bits (virtio 1.2 §5.1.3): the device has a MAC / a link status.
const NET_F_MAC: u64 = 1 << 5;
const NET_F_STATUS: u64 = 1 << 16;
/// `struct virtio_net_hdr` with VERSION_1 (12 bytes, `num_buffers` included; §5.1.6).
const NET_HDR: usize = 12;
/// Link up in the configuration's `status` (§5.1.4).
const NET_S_LINK_UP: u16 = 1;

/// Most entries per queue: 256 (QEMU's size), or the device's largest if smaller (a
/// driver may shrink a queue, §4.1.4.3.2). Every entry has a buffer: RX all posted.
const RXQ: usize = 256;
const TXQ: usize = 256;
/// One buffer: the header and a 1514-byte frame fit. Each direction's buffers are slices
/// of one DMA region (`udrv::pool`): 4 regions in all with the two rings, of the 32 a
/// device may have, and 512 KiB per pool (`dma_alloc` allows 1 MiB). With mergeable
/// buffers a TCP segment the device coalesced (up to 64 KiB) spans up to
/// [`MAX_BUFFERS`] of them.
const BUF: usize = 2048;
/// Most buffers one received packet spans: its header and the longest packet.
const MAX_BUFFERS: usize = (NET_HDR + netif::MAX_PACKET).div_ceil(BUF);
/// The receive queue's MSI-X table entry, and its notification bit.
const RX_VECTOR: u16 = 1;
const RX_BIT: u8 = 0;
/// The transmit queue's MSI-X table entry, and its notification bit.
const TX_VECTOR: u16 = 2;
const TX_BIT: u8 = 2;
/// The interface's notification bit (frames to send).
const NETIF_BIT: u8 = 1;
/// virtio-net queue numbers (§5.1.2).
const RX_QUEUE: u16 = 0;
const TX_QUEUE: u16 = 1;
/// Used elements handled per NAPI poll before other work gets a turn.
const BUDGET: usize = 32;
/// The counters are printed at most this often (at the start of an interrupt's round,
/// if anything moved; the first round prints), and when the driver gives up.
const REPORT_NS: u64 = 1_000_000_000;
/// `--probe`'s wait for the gateway's reply.
const PROBE_NS: u64 = 5_000_000_000;

const OUR_IP: [u8; 4] = [10, 0, 2, 15];
const GATEWAY_IP: [u8; 4] = [10, 0, 2, 2];

type Fail = String;
type Buf = Slice<Kernel>;
type Rx = Napi<Kernel, RXQ, Buf>;
type RxRound = Round<Kernel, RXQ, Buf>;
type Tx = Napi<Kernel, TXQ, Buf>;
type TxRound = Round<Kernel, TXQ, Buf>;

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (mut probe, mut event_idx, mut large) = (false, true, true);
    for arg in args {
        match arg {
            "--probe" => probe = true,
            "--no-event-idx" => event_idx = false,
            "--no-large-receive" => large = false,
            other => return TOOL.bad_usage(&format!("unknown argument {other}")),
        }
    }
    let result = run(startup, probe, event_idx, large);
    match result {
        Ok(()) => 0,
        Err(why) if probe => {
            println!("vnet probe: FAILED: {why}");
            1
        }
        Err(why) => {
            println!("vnet: {why}");
            1
        }
    }
}

fn run(startup: &Startup, probe: bool, event_idx: bool, large: bool) -> Result<(), Fail> {
    let grant = startup
        .grants()
        .find(|g| g.cap_type == Some(CapType::Device))
        .ok_or("no Device capability was granted (init grants one by driver=vnet@BDF)")?;
    let device = Device::new(Kernel, grant.handle);
    let (mut nic, rx) = Nic::bring_up(&device, event_idx, large)?;
    let link = match nic.link_up() {
        Some(true) => "up",
        Some(false) => "down",
        None => "unknown",
    };
    if probe {
        println!(
            "vnet probe: mac {} link {link} event_idx {}",
            mac_str(nic.mac),
            nic.event_idx
        );
        let r = nic.probe(rx);
        // Stop the device before exiting either way (the kernel's teardown would too).
        let _ = nic.transport.reset();
        return r;
    }
    let mut netif = NetIf::open(&device, NETIF_BIT, nic.mac)
        .map_err(|e| format!("netif_open: {e} (is the kernel's interface there?)"))?;
    println!(
        "vnet: up mac={} link={link} queues={}/{} event_idx={} large_receive={}",
        mac_str(nic.mac),
        rx.ring().size(),
        nic.tx_size,
        nic.event_idx,
        nic.rx_offloads().tso4
    );
    nic.forward(rx, &mut netif)
}

/// The device and everything but the receive pair (which moves through rounds).
struct Nic {
    transport: ModernTransport<StructWindow>,
    tx: Option<TxState>,
    tx_size: usize,
    tx_free: Vec<Buf>,
    /// Entries in the receive queue (a packet spans at most as many buffers).
    rx_size: usize,
    /// Received buffers between the drain and the refill of one poll.
    rx_refill: Vec<Buf>,
    /// The packet being gathered from mergeable buffers: its header's metadata and
    /// `num_buffers`, and the buffers in so far (the first with the header).
    gathering: Option<(RxMeta, usize)>,
    gathered: Vec<Completion<Buf>>,
    mac: [u8; 6],
    features: u64,
    event_idx: bool,
    stats: Stats,
}

/// What went through, and what was refused.
#[derive(Default, Debug)]
struct Stats {
    /// Frames handed to the device to send.
    tx: u64,
    /// Frames the device received.
    rx: u64,
    /// Of those, packets that spanned several buffers (mergeable buffers).
    rx_merged: u64,
    /// Rounds started by an interrupt.
    irqs: u64,
    /// Transmit interrupts (each after a wait for room).
    tx_irqs: u64,
    /// Times every transmit buffer was in flight with frames waiting.
    tx_full: u64,
    /// Rounds deferred: the interface's RX ring was full.
    rx_deferred: u64,
    /// Received frames whose checksum the device vouched for (verified or partial).
    rx_csum: u64,
    /// Received packets refused: a header the features do not allow, no Ethernet header,
    /// a merged packet too long or with a buffer the ring refused.
    runts: u64,
    /// Frames to send with a length the kernel should not have written (skipped).
    tx_bad: u64,
    /// When the counters were last printed, and the frame count then.
    reported_at: u64,
    reported_frames: u64,
}

impl Stats {
    /// Counts a packet taken from the device.
    fn note_frame(&mut self, meta: RxMeta) {
        self.rx += 1;
        if meta.csum != RxCsum::Unchecked {
            self.rx_csum += 1;
        }
    }
}

impl Nic {
    /// virtio 1.2 §3.1.1 for a network device: transport, features, rings, buffers, line.
    fn bring_up(device: &Device, event_idx: bool, large: bool) -> Result<(Nic, Rx), Fail> {
        let info = device.info().map_err(|e| format!("dev_info: {e}"))?;
        if info.vendor != virtio::VENDOR_ID || !matches!(info.device, 0x1041 | 0x1000) {
            return Err(format!(
                "the device is {:04x}:{:04x}, not virtio-net (1af4:1041)",
                info.vendor, info.device
            ));
        }
        if info.irq_modes & IRQ_MSIX == 0 || info.msix_entries <= TX_VECTOR {
            return Err(format!(
                "the function offers no MSI-X entries {RX_VECTOR} and {TX_VECTOR} here (no MSI \
                 controller?)"
            ));
        }
        let mut transport =
            virtio::probe_mapped(device).map_err(|e| format!("virtio transport: {e}"))?;
        // GUEST_CSUM: the device may say a received frame's checksum was verified
        // (DATA_VALID) or is a partial sum (NEEDS_CSUM, from the host's own stack), which
        // the slot's checksum word passes on: the kernel need not verify (or completes) it.
        // MRG_RXBUF and GUEST_TSO4 (large receive): the device may coalesce a TCP stream's
        // segments into one of up to 64 KiB over several buffers, which crosses to the
        // kernel in several slots (`NetIf::rx_push_frame`): one frame for the stack where
        // there were up to 44.
        let mut wanted = NET_F_MAC | NET_F_STATUS | vnet_hdr::feature::GUEST_CSUM;
        if event_idx {
            wanted |= feature::EVENT_IDX;
        }
        if large {
            wanted |= vnet_hdr::feature::MRG_RXBUF | vnet_hdr::feature::GUEST_TSO4;
        }
        let features = transport
            .negotiate_with(|offered| vnet_hdr::choose_features(offered, wanted))
            .map_err(|e| format!("features: {e}"))?;
        if features & NET_F_MAC == 0 {
            let _ = transport.fail(virtio::TransportError::FeaturesRejected);
            return Err("the device has no MAC address (VIRTIO_NET_F_MAC)".into());
        }
        let event_idx = features & feature::EVENT_IDX != 0;
        let mac = transport
            .read_config_stable(|t| core::array::from_fn(|i| t.config_read8(i)))
            .map_err(|e| format!("MAC: {e}"))?;
        let rx_size = queue_size(&mut transport, RX_QUEUE, RXQ)?;
        let tx_size = queue_size(&mut transport, TX_QUEUE, TXQ)?;
        let rx_ring = ring::<RXQ>(device, event_idx, rx_size)?;
        let tx_ring = ring::<TXQ>(device, event_idx, tx_size)?;
        let line = device
            .irq(RX_VECTOR, RX_BIT)
            .map_err(|e| format!("dev_irq (MSI-X entry {RX_VECTOR}): {e}"))?;
        let tx_line = device
            .irq(TX_VECTOR, TX_BIT)
            .map_err(|e| format!("dev_irq (MSI-X entry {TX_VECTOR}): {e}"))?;
        let setup = |ring: (u64, u64, u64), size: usize, vector| QueueSetup {
            size: size as u16,
            desc: ring.0,
            driver: ring.1,
            device: ring.2,
            vector,
        };
        let queues = [
            (
                RX_QUEUE,
                setup(rx_ring.addresses(), rx_size, Some(RX_VECTOR)),
            ),
            (
                TX_QUEUE,
                setup(tx_ring.addresses(), tx_size, Some(TX_VECTOR)),
            ),
        ];
        for (q, s) in queues {
            transport
                .setup_queue(q, &s)
                .map_err(|e| format!("queue {q}: {e}"))?;
        }
        transport
            .set_config_vector(None)
            .map_err(|e| format!("config vector: {e}"))?;
        let mut rx = Napi::new(line, rx_ring).map_err(|(_, _, e)| format!("irq_arm: {e}"))?;
        let tx = Napi::new(tx_line, tx_ring)
            .map_err(|(_, _, e)| format!("irq_arm (TX): {e}"))?
            .mask()
            .map_err(|(_, e)| format!("irq_mask (TX): {e}"))?;
        for buf in buffers(device, rx_size, DmaDir::FromDevice)? {
            rx.post(buf, BUF, BufDir::DeviceWrites)
                .map_err(|(_, e)| format!("posting an RX buffer: {e}"))?;
        }
        let tx_free = buffers(device, tx_size, DmaDir::ToDevice)?;
        device
            .bus_master(true)
            .map_err(|e| format!("bus mastering on: {e}"))?;
        transport
            .driver_ok()
            .map_err(|e| format!("DRIVER_OK: {e}"))?;
        if rx.kick_needed() {
            transport.notify(RX_QUEUE);
        }
        let nic = Nic {
            transport,
            tx: Some(TxState::Reaping(tx)),
            tx_size,
            tx_free,
            rx_size,
            rx_refill: Vec::with_capacity(BUDGET),
            gathering: None,
            gathered: Vec::with_capacity(MAX_BUFFERS),
            mac,
            features,
            event_idx,
            stats: Stats::default(),
        };
        Ok((nic, rx))
    }

    /// What a received header may say: what was negotiated.
    fn rx_offloads(&self) -> RxOffloads {
        RxOffloads {
            csum: self.features & vnet_hdr::feature::GUEST_CSUM != 0,
            tso4: self.features & vnet_hdr::feature::GUEST_TSO4 != 0,
            mergeable: self.features & vnet_hdr::feature::MRG_RXBUF != 0,
        }
    }

    /// The interface's free slots a round needs before it takes a packet from the device:
    /// room for the longest it may be.
    fn rx_room_needed(&self) -> usize {
        if self.rx_offloads().mergeable {
            netif::MAX_CHAIN
        } else {
            1
        }
    }

    /// The link, if the device reports it (`VIRTIO_NET_F_STATUS`).
    fn link_up(&self) -> Option<bool> {
        (self.features & NET_F_STATUS != 0)
            .then(|| self.transport.config_read16(6) & NET_S_LINK_UP != 0)
    }

    /// Reclaims the transmit buffers the device finished with (none while waiting for
    /// the transmit interrupt: that ring is armed, and only its round drains).
    fn reclaim_tx(&mut self) {
        let Some(TxState::Reaping(round)) = &mut self.tx else {
            return;
        };
        while let Some(done) = round.pop_used() {
            match done {
                Ok(c) => self.tx_free.push(c.buf),
                Err(Rejected {
                    reclaimed: Some(buf),
                    ..
                }) => self.tx_free.push(buf),
                Err(_) => {}
            }
        }
    }

    /// A free transmit buffer, reclaiming first. With none, the transmit ring's interrupt
    /// is armed (the round finished: re-enable, recheck, re-arm) and `None` says "wait for
    /// [`TX_BIT`]"; completions that raced the recheck are reclaimed instead.
    fn tx_buffer(&mut self) -> Result<Option<Buf>, Fail> {
        loop {
            if let Some(buf) = self.tx_free.pop() {
                return Ok(Some(buf));
            }
            self.reclaim_tx();
            if let Some(buf) = self.tx_free.pop() {
                return Ok(Some(buf));
            }
            match self.tx.take() {
                Some(TxState::Reaping(round)) => match round.finish() {
                    Ok(tx) => {
                        self.stats.tx_full += 1;
                        self.tx = Some(TxState::Waiting(tx));
                        return Ok(None);
                    }
                    Err((round, NotFinished::Raced)) => {
                        self.tx = Some(TxState::Reaping(round));
                    }
                    Err((_, NotFinished::Refused(e))) => {
                        return Err(format!("irq_rearm (TX): {e}"));
                    }
                },
                waiting => {
                    self.tx = waiting;
                    return Ok(None);
                }
            }
        }
    }

    /// The transmit line's bit came: if its interrupt was armed, take the round (masked
    /// again, ring suppressed) so the next send reclaims.
    fn tx_interrupt(&mut self) {
        if let Some(TxState::Waiting(tx)) = self.tx.take() {
            self.tx = Some(match tx.wait(0) {
                Ok((round, _)) => {
                    self.stats.tx_irqs += 1;
                    TxState::Reaping(round)
                }
                Err((tx, _)) => TxState::Waiting(tx),
            });
        }
    }

    /// Sends one frame that `fill` writes after the header (`fill` returns its length, or
    /// `None` to send nothing). `Ok(false)`: no free buffer (the transmit interrupt is
    /// armed; [`TX_BIT`] comes when there is room).
    fn send(&mut self, fill: impl FnOnce(&mut [u8]) -> Option<usize>) -> Result<bool, Fail> {
        let Some(mut buf) = self.tx_buffer()? else {
            return Ok(false);
        };
        let bytes = buf.bytes_mut();
        bytes[..NET_HDR].fill(0);
        let Some(len) = fill(&mut bytes[NET_HDR..]) else {
            self.tx_free.push(buf);
            self.stats.tx_bad += 1;
            return Ok(true);
        };
        let Some(TxState::Reaping(round)) = &mut self.tx else {
            self.tx_free.push(buf);
            return Ok(false);
        };
        match round.post(buf, NET_HDR + len, BufDir::DeviceReads) {
            Ok(_) => {
                self.stats.tx += 1;
                Ok(true)
            }
            Err((buf, e)) => {
                self.tx_free.push(buf);
                Err(format!("posting a TX buffer: {e}"))
            }
        }
    }

    fn kick_tx(&mut self) {
        let needed = match &mut self.tx {
            Some(TxState::Reaping(round)) => round.kick_needed(),
            Some(TxState::Waiting(tx)) => tx.kick_needed(),
            None => false,
        };
        if needed {
            self.transport.notify(TX_QUEUE);
        }
    }

    /// Drains at most `budget` received buffers, then reposts them; whether the used ring
    /// read empty or the budget (or `room`, the interface's free slots) ran out first. Each
    /// packet goes to `deliver` as the pieces of its frame (one per buffer) and what the
    /// header said of it; a packet is started only with room for the longest it may be,
    /// and one spanning buffers is gathered across calls.
    fn poll_rx(
        &mut self,
        round: &mut RxRound,
        budget: usize,
        mut room: usize,
        mut deliver: impl FnMut(&[&[u8]], RxMeta),
    ) -> Polled {
        let mut n = 0;
        let mut drained = false;
        let mut refill = core::mem::take(&mut self.rx_refill);
        let offloads = self.rx_offloads();
        let needed = self.rx_room_needed();
        while n < budget && (self.gathering.is_some() || room >= needed) {
            let Some(done) = round.pop_used() else {
                drained = true;
                break;
            };
            n += 1;
            let c = match done {
                Ok(c) => c,
                Err(Rejected {
                    reclaimed: Some(buf),
                    ..
                }) => {
                    // A buffer of the packet being gathered is lost: so is the packet.
                    self.drop_gathered(&mut refill);
                    refill.push(buf);
                    continue;
                }
                Err(_) => {
                    self.drop_gathered(&mut refill);
                    continue;
                }
            };
            if let Some((meta, want)) = self.gathering {
                self.gathered.push(c);
                if self.gathered.len() == want {
                    self.gathering = None;
                    let pieces: Vec<&[u8]> = self
                        .gathered
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            if i == 0 {
                                c.data().get(NET_HDR..).unwrap_or_default()
                            } else {
                                c.data()
                            }
                        })
                        .collect();
                    let len: usize = pieces.iter().map(|p| p.len()).sum();
                    if vnet_hdr::check_packet(&meta, len).is_ok() {
                        self.stats.note_frame(meta);
                        self.stats.rx_merged += 1;
                        room = room.saturating_sub(netif::slots_for(len));
                        deliver(&pieces, meta);
                    } else {
                        self.stats.runts += 1;
                    }
                    drop(pieces);
                    refill.extend(self.gathered.drain(..).map(|c| c.buf));
                }
                continue;
            }
            match vnet_hdr::parse_rx(c.data(), NET_HDR, offloads, self.rx_size) {
                Ok((meta, 1, frame)) => {
                    self.stats.note_frame(meta);
                    room = room.saturating_sub(netif::slots_for(frame.len()));
                    deliver(&[frame], meta);
                    refill.push(c.buf);
                }
                Ok((meta, want, _)) if usize::from(want) <= MAX_BUFFERS => {
                    self.gathering = Some((meta, usize::from(want)));
                    self.gathered.push(c);
                }
                Ok(_) | Err(_) => {
                    self.stats.runts += 1;
                    refill.push(c.buf);
                }
            }
        }
        // The refill, as a batch after the drain, and one doorbell for it (if the device
        // asked: event index). Each buffer came back from this ring, so it fits again; a
        // refusal (a broken ring) drops it, and the broken ring is noticed by the caller.
        for buf in refill.drain(..) {
            let _ = round.post(buf, BUF, BufDir::DeviceWrites);
        }
        self.rx_refill = refill;
        if round.kick_needed() {
            self.transport.notify(RX_QUEUE);
        }
        if drained && self.gathering.is_none() {
            Polled::Drained
        } else {
            Polled::More
        }
    }

    /// Gives up the packet being gathered (counted), its buffers back to `refill`.
    fn drop_gathered(&mut self, refill: &mut Vec<Buf>) {
        if self.gathering.take().is_some() {
            self.stats.runts += 1;
            refill.extend(self.gathered.drain(..).map(|c| c.buf));
        }
    }

    /// `--probe`: one ARP request, and the gateway's reply, by interrupt.
    fn probe(&mut self, mut rx: Rx) -> Result<(), Fail> {
        let request = arp_request(self.mac, OUR_IP, GATEWAY_IP);
        if !self.send(|b| copy_frame(b, &request))? {
            return Err("no free transmit buffer".into());
        }
        self.kick_tx();
        let deadline = time::now().saturating_add(PROBE_NS);
        let mut gateway = None;
        while gateway.is_none() {
            let (mut round, _) = match rx.wait(deadline) {
                Ok(r) => r,
                Err((_, abi::Error::ETIMEDOUT)) => {
                    return Err(format!(
                        "no ARP reply from 10.0.2.2 within 5 s (tx={} rx={} irqs={})",
                        self.stats.tx, self.stats.rx, self.stats.irqs
                    ));
                }
                Err((_, e)) => return Err(format!("irq_wait: {e}")),
            };
            self.stats.irqs += 1;
            rx = loop {
                let mac = self.mac;
                if self.poll_rx(&mut round, BUDGET, usize::MAX, |f, _| {
                    let f = f.first().copied().unwrap_or_default();
                    gateway = gateway.or_else(|| arp_reply_from(f, mac, GATEWAY_IP, OUR_IP));
                }) == Polled::More
                {
                    continue;
                }
                match round.finish() {
                    Ok(rx) => break rx,
                    Err((r, NotFinished::Raced)) => round = r,
                    Err((_, NotFinished::Refused(e))) => return Err(format!("irq_rearm: {e}")),
                }
            };
            check_ring(rx.ring().is_broken(), rx.ring().rejected())?;
        }
        self.reclaim_tx();
        let gw = gateway.unwrap_or_default();
        println!("vnet probe: 10.0.2.2 is at {}", mac_str(gw));
        println!(
            "vnet probe: ok tx={} rx={} irqs={} rejected={}",
            self.stats.tx,
            self.stats.rx,
            self.stats.irqs,
            rx.ring().rejected() + self.tx_rejected()
        );
        Ok(())
    }

    /// Default mode: frames between the device and the kernel's interface, until killed.
    /// If it gives up (a broken ring, a refused call), the counters are printed first.
    fn forward(&mut self, rx: Rx, netif: &mut NetIf<Kernel>) -> Result<(), Fail> {
        let mut rx_rejected = 0;
        let r = self.forward_until_error(rx, netif, &mut rx_rejected);
        self.report(rx_rejected, netif, 0);
        r
    }

    fn forward_until_error(
        &mut self,
        rx: Rx,
        netif: &mut NetIf<Kernel>,
        rx_rejected: &mut u64,
    ) -> Result<(), Fail> {
        let mask = 1u64 << RX_BIT | 1u64 << NETIF_BIT | 1u64 << TX_BIT;
        let mut state = RxState::Armed(rx);
        let mut kicked = false;
        loop {
            // Blocks until an interrupt or the kernel's bit; a round still polling (budget
            // spent) only looks at the bits in passing. A kick says what comes next: with
            // work left the round polls on and the kernel runs the interface's task on
            // another CPU meanwhile; a round that ends kicks it onto this CPU, which it
            // gives up to wait, unless a re-arm race keeps it polling: then it yields
            // first, or the frames it published would wait for it.
            let deadline = match &state {
                RxState::Polling(_) => {
                    if core::mem::take(&mut kicked) {
                        process::yield_now();
                    }
                    0
                }
                RxState::Armed(_) | RxState::Deferred(_) => u64::MAX,
            };
            let bits = match time::notify_wait(mask, deadline) {
                Ok(b) => b,
                Err(abi::Error::ETIMEDOUT) => 0,
                Err(e) => return Err(format!("notify_wait: {e}")),
            };
            if bits & 1 << TX_BIT != 0 {
                self.tx_interrupt();
            }
            state = match state {
                RxState::Armed(rx) if bits & 1 << RX_BIT != 0 => match rx.wait(0) {
                    Ok((round, fired)) => {
                        self.stats.irqs += 1;
                        self.report_now_and_then(*rx_rejected, netif, fired.at_ns);
                        RxState::Polling(round)
                    }
                    Err((rx, _)) => RxState::Armed(rx),
                },
                // Frames were left in the device's ring for want of room: an interrupt (a
                // new frame) or room again (the kernel took frames: it signals us when it
                // queues the replies and ACKs they cause) resumes the round.
                RxState::Deferred(rx) if bits & 1 << RX_BIT != 0 => match rx.wait(0) {
                    Ok((round, _)) => {
                        self.stats.irqs += 1;
                        RxState::Polling(round)
                    }
                    Err((rx, _)) => RxState::Deferred(rx),
                },
                RxState::Deferred(rx) if netif.rx_room() >= self.rx_room_needed() => {
                    match rx.mask() {
                        Ok(round) => RxState::Polling(round),
                        Err((_, e)) => return Err(format!("irq_mask: {e}")),
                    }
                }
                other => other,
            };
            if let RxState::Polling(mut round) = state {
                // No more than the interface's RX ring has room for: a frame left in the
                // device's ring waits, one popped without room would be dropped. With no
                // room at all (the kernel not yet at it, after the yield above), the round
                // is deferred: the frames stay in the device's ring, which stops taking
                // more when it fills (flow control instead of loss).
                let room = netif.rx_room();
                if room < self.rx_room_needed() {
                    self.stats.rx_deferred += 1;
                    state = match round.defer() {
                        Ok(rx) => RxState::Deferred(rx),
                        Err((round, NotFinished::Raced)) => RxState::Polling(round),
                        Err((_, NotFinished::Refused(e))) => {
                            return Err(format!("irq_rearm: {e}"));
                        }
                    };
                    self.forward_tx(netif)?;
                    continue;
                }
                let polled = self.poll_rx(&mut round, BUDGET, room, |pieces, meta| {
                    let _ = netif.rx_push_frame(pieces, meta);
                });
                let next = match polled {
                    Polled::More => AfterKick::Polls,
                    Polled::Drained => AfterKick::Waits,
                };
                if netif.rx_publish() {
                    netif.kick(next).map_err(|e| format!("netif_kick: {e}"))?;
                    kicked = next == AfterKick::Waits;
                }
                *rx_rejected = round.ring().rejected();
                check_ring(round.ring().is_broken(), round.ring().rejected())?;
                state = if polled == Polled::More {
                    RxState::Polling(round)
                } else {
                    match round.finish() {
                        Ok(rx) => RxState::Armed(rx),
                        Err((round, NotFinished::Raced)) => RxState::Polling(round),
                        Err((_, NotFinished::Refused(e))) => {
                            return Err(format!("irq_rearm: {e}"));
                        }
                    }
                };
            }
            self.forward_tx(netif)?;
        }
    }

    /// Frames the kernel queued, into free transmit buffers. Frames left (no room) wait for
    /// the transmit interrupt, which `send` armed.
    fn forward_tx(&mut self, netif: &mut NetIf<Kernel>) -> Result<(), Fail> {
        let mut sent = false;
        if netif.tx_pending() > 0 {
            // Reclaim once per batch (and again only if the free list runs dry).
            self.reclaim_tx();
        }
        while netif.tx_pending() > 0 {
            let more = self.send(|b| match netif.tx_take(b) {
                Some(Ok(n)) => Some(n),
                _ => None,
            })?;
            if !more {
                break;
            }
            sent = true;
        }
        if sent {
            self.kick_tx();
        }
        Ok(())
    }

    /// `vnet: rx=.. tx=.. irqs=.. ...`: frames each way, interrupts (RX rounds and TX
    /// waits), used elements refused (both rings), frames dropped on the way to the kernel
    /// (its RX ring full or refused) and frames from it skipped.
    fn report(&mut self, rx_rejected: u64, netif: &NetIf<Kernel>, now: u64) {
        let n = netif.stats();
        let st = &self.stats;
        println!(
            "vnet: rx={} tx={} irqs={} tx_irqs={} tx_full={} rx_deferred={} rx_csum={} \
             rejected={} runts={} rx_dropped={} tx_skipped={} rx_merged={}",
            st.rx,
            st.tx,
            st.irqs,
            st.tx_irqs,
            st.tx_full,
            st.rx_deferred,
            st.rx_csum,
            rx_rejected + self.tx_rejected(),
            st.runts,
            n.rx_full + n.rx_too_long + n.bad_rx_tail,
            st.tx_bad + n.tx_bad_len + n.bad_tx_head,
            st.rx_merged,
        );
        self.stats.reported_at = now;
        self.stats.reported_frames = self.stats.rx + self.stats.tx;
    }

    /// [`Nic::report`] if frames moved and the last one is [`REPORT_NS`] old (`now`: the
    /// interrupt's time, so no clock read).
    fn report_now_and_then(&mut self, rx_rejected: u64, netif: &NetIf<Kernel>, now: u64) {
        let moved = self.stats.rx + self.stats.tx != self.stats.reported_frames;
        let due =
            self.stats.reported_at == 0 || now.saturating_sub(self.stats.reported_at) >= REPORT_NS;
        if moved && due {
            self.report(rx_rejected, netif, now);
        }
    }

    fn tx_rejected(&self) -> u64 {
        match &self.tx {
            Some(TxState::Reaping(round)) => round.ring().rejected(),
            Some(TxState::Waiting(tx)) => tx.ring().rejected(),
            None => 0,
        }
    }
}

/// The transmit pair: masked and reclaimed before each send, or armed while every buffer
/// is in flight and frames wait.
enum TxState {
    Reaping(TxRound),
    Waiting(Tx),
}

/// Whether an RX poll emptied the used ring, or stopped at its budget.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Polled {
    Drained,
    More,
}

/// The receive pair between rounds, or in one.
enum RxState {
    Armed(Rx),
    /// Armed, with frames left in the device's ring (the interface had no room).
    Deferred(Rx),
    Polling(RxRound),
}

/// The size of queue `q`: `most`, or the device's largest power of two if smaller.
fn queue_size(
    transport: &mut ModernTransport<StructWindow>,
    q: u16,
    most: usize,
) -> Result<usize, Fail> {
    let max = usize::from(transport.queue_max_size(q));
    if max == 0 {
        return Err(format!("the device has no queue {q}"));
    }
    Ok(most.min(1 << max.ilog2()))
}

/// A fresh ring of `size` entries (at most `Q`) in its own DMA region.
fn ring<const Q: usize>(
    device: &Device,
    event_idx: bool,
    size: usize,
) -> Result<Vring<udrv::Armed, Kernel, Q, Buf>, Fail> {
    let len = ring_bytes(size).ok_or_else(|| format!("ring: no queue of {size}"))?;
    let mem = device
        .dma_alloc(len, DmaDir::Bidirectional, 64)
        .map_err(|e| format!("dma_alloc (ring): {e}"))?;
    Vring::with_size(mem, event_idx, size).map_err(|(_, e)| format!("ring: {e}"))
}

/// `n` buffers of [`BUF`] bytes: slices of one DMA region.
fn buffers(device: &Device, n: usize, dir: DmaDir) -> Result<Vec<Buf>, Fail> {
    let region = device
        .dma_alloc(n * BUF, dir, 64)
        .map_err(|e| format!("dma_alloc ({n} buffers): {e}"))?;
    pool::split(region, BUF).map_err(|(_, e)| format!("buffer pool: {e}"))
}

/// A device that ran its used index too far ahead is broken: give up (init restarts the
/// driver, whose bring-up resets the device).
fn check_ring(broken: bool, rejected: u64) -> Result<(), Fail> {
    if broken {
        return Err(format!(
            "the device broke its receive ring ({rejected} used elements refused)"
        ));
    }
    Ok(())
}

fn copy_frame(dst: &mut [u8], frame: &[u8]) -> Option<usize> {
    dst.get_mut(..frame.len())?.copy_from_slice(frame);
    Some(frame.len())
}

/// A broadcast ARP request (RFC 826) from `mac`/`ip` for `target`, padded to 60 bytes.
fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].fill(0xff);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]);
    // Ethernet, IPv4, 6-byte and 4-byte addresses, request.
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip);
    f[38..42].copy_from_slice(&target);
    f
}

/// The sender's MAC if `f` is an ARP reply from `from` to `mac`/`to`.
fn arp_reply_from(f: &[u8], mac: [u8; 6], from: [u8; 4], to: [u8; 4]) -> Option<[u8; 6]> {
    let f = f.get(..42)?;
    let ok = f[12..14] == [0x08, 0x06]
        && f[14..22] == [0, 1, 0x08, 0, 6, 4, 0, 2]
        && f[28..32] == from
        && f[32..38] == mac
        && f[38..42] == to;
    ok.then(|| core::array::from_fn(|i| f[22 + i]))
}

fn mac_str(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}
