//! virtio-net datapath over a `Transport` and caps `Vring`s (virtio 1.2 §5.1).
//!
//! The network card is the device most exposed to floods and to a buggy or
//! hostile backend, so its driver is kept free of interrupt plumbing and of
//! trust: every completion comes through the caps ring's validation (a bad
//! descriptor is counted and the buffer reused, never indexed), every
//! received header is parsed against the negotiated offloads before the frame
//! is handed on (`hdr`: flags, segmentation type, checksum position,
//! `num_buffers`), and every loop is bounded. The caller pulls packets one at a
//! time ([`VirtioNet::pop_rx`]) from a ring whose device interrupts are off (a NAPI
//! round's ring, or a `Vring<Polled>`), so a packet stays in the ring until the
//! stack takes it; a packet the device spread over several mergeable buffers is
//! gathered into one contiguous buffer. Interrupts are seen only through the caps
//! NAPI types: the ring and its line are one `caps::napi::NapiLine`, a round
//! (`Round`) ends in [`VirtioNet::rx_batch_done`] or [`VirtioNet::poll_rx`]'s
//! `PollOutcome`, so the kernel's net task runs wait → take → pull → batch done →
//! enable_and_recheck (which re-arms). RX buffers are recycled in place (no
//! allocation per packet); TX buffers come from a fixed free list and are
//! reclaimed without waiting. The checksum and TCP segmentation offloads are
//! taken when offered and fall back cleanly when not. See `docs/virtio.md`.

use abi::Error;
use caps::dma::{Cpu, DmaHal, DmaPool, DmaRegion};
use caps::irq::Armed;
use caps::vring::{RingMemory, RingState, UsedError, Vring, VringLayout};
use heapless::Vec;

use super::{DeviceStatus, QueueSetup, Transport, TransportError, feature as common};

/// Receive queue index (virtio 1.2 §5.1.2: receiveq1).
pub const RX_QUEUE: u16 = 0;
/// Transmit queue index (transmitq1).
pub const TX_QUEUE: u16 = 1;
/// Largest frame a buffer holds without mergeable buffers, and the largest frame the
/// driver transmits: Linux's `GOOD_PACKET_LEN` (1500-byte MTU, Ethernet header, one VLAN
/// tag: 1518) plus 8 bytes of slack.
pub const MAX_FRAME: usize = 1526;
/// Largest packet received with mergeable buffers: a 64 KiB IPv4 datagram (a TSO segment
/// or a jumbo frame) behind an Ethernet header with one VLAN tag.
pub const MAX_PACKET: usize = 65_535 + 18;
/// Receive buffer size with mergeable buffers: one page (the DMA allocator's unit anyway).
pub const RX_PAGE: usize = 4096;
/// Receive buffer size with large receive (`GUEST_TSO4`): 64 KiB, so a TCP segment of up
/// to 64 KiB lands in one buffer and goes to the stack where it lies, without being
/// gathered (only a segment within 26 bytes of the IPv4 maximum spills into a second).
pub const RX_BIG: usize = 64 * 1024;
/// Smallest frame delivered: an Ethernet header.
pub const MIN_FRAME: usize = 14;
/// `struct virtio_net_hdr_v1` (virtio 1.2 §5.1.6): used with VERSION_1 or MRG_RXBUF.
pub const HDR_LEN: usize = 12;
/// The legacy header without `num_buffers` (legacy device, no MRG_RXBUF).
pub const LEGACY_HDR_LEN: usize = 10;

/// virtio-net feature bits (virtio 1.2 §5.1.3).
pub mod feature {
    /// Device completes partial checksums on TX (`NEEDS_CSUM` in our header).
    pub const CSUM: u64 = 1 << 0;
    /// Driver accepts partial or device-checked checksums on RX.
    pub const GUEST_CSUM: u64 = 1 << 1;
    /// Device has a MAC address in its configuration.
    pub const MAC: u64 = 1 << 5;
    /// Driver accepts TCP/IPv4 segments larger than the MTU (large receive).
    pub const GUEST_TSO4: u64 = 1 << 7;
    /// Device segments large TCP/IPv4 frames on TX (not taken: smoltcp never builds a
    /// segment larger than the peer's MSS).
    pub const HOST_TSO4: u64 = 1 << 11;
    /// RX packets may span several buffers (`num_buffers`).
    pub const MRG_RXBUF: u64 = 1 << 15;
    /// Configuration `status` field (link up) is valid.
    pub const STATUS: u64 = 1 << 16;
    /// Control virtqueue (not taken).
    pub const CTRL_VQ: u64 = 1 << 17;
}

/// Everything the driver asks for; [`choose_features`] drops what depends on a feature
/// the device does not offer.
pub const WANTED: u64 = common::VERSION_1
    | common::EVENT_IDX
    | common::ACCESS_PLATFORM
    | feature::MAC
    | feature::STATUS
    | feature::MRG_RXBUF
    | feature::CSUM
    | feature::GUEST_CSUM
    | feature::GUEST_TSO4;

/// The features to take from `offered`, given what the caller `wanted`: `GUEST_TSO4`
/// needs `GUEST_CSUM` (virtio 1.2 §5.1.3.1) and, here, `MRG_RXBUF` (a 64 KiB segment
/// would otherwise need 64 KiB buffers for every packet).
pub fn choose_features(offered: u64, wanted: u64) -> u64 {
    let mut f = offered & wanted & WANTED;
    if f & feature::GUEST_CSUM == 0 || f & feature::MRG_RXBUF == 0 {
        f &= !feature::GUEST_TSO4;
    }
    f
}

/// Feature bits by their spec names (`CSUM MAC … VERSION_1`), for the log; bits this
/// driver has no name for print as `bit N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureNames(pub u64);

impl core::fmt::Display for FeatureNames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NAMES: [(u64, &str); 13] = [
            (feature::CSUM, "CSUM"),
            (feature::GUEST_CSUM, "GUEST_CSUM"),
            (feature::MAC, "MAC"),
            (feature::GUEST_TSO4, "GUEST_TSO4"),
            (feature::HOST_TSO4, "HOST_TSO4"),
            (feature::MRG_RXBUF, "MRG_RXBUF"),
            (feature::STATUS, "STATUS"),
            (feature::CTRL_VQ, "CTRL_VQ"),
            (common::INDIRECT_DESC, "INDIRECT_DESC"),
            (common::EVENT_IDX, "EVENT_IDX"),
            (common::VERSION_1, "VERSION_1"),
            (common::ACCESS_PLATFORM, "ACCESS_PLATFORM"),
            (common::RING_PACKED, "RING_PACKED"),
        ];
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut sep = "";
        for bit in (0..64).map(|b| 1u64 << b).filter(|b| self.0 & b != 0) {
            match NAMES.iter().find(|(v, _)| *v == bit) {
                Some((_, name)) => write!(f, "{sep}{name}")?,
                None => write!(f, "{sep}bit {}", bit.trailing_zeros())?,
            }
            sep = " ";
        }
        Ok(())
    }
}

/// Device configuration offsets (virtio 1.2 §5.1.4).
mod cfg {
    /// `mac[6]`.
    pub const MAC: usize = 0;
    /// `status` (le16), valid with STATUS.
    pub const STATUS: usize = 6;
    /// `status` bit 0.
    pub const LINK_UP: u16 = 1;
}

/// Per-queue counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Interrupts the kernel reported with [`VirtioNet::note_interrupt`].
    pub interrupts: u64,
    /// Frames delivered (RX) or queued (TX).
    pub packets: u64,
    /// Frame bytes, headers excluded.
    pub bytes: u64,
    /// Polls that ended with the budget spent and work left.
    pub budget_exhausted: u64,
    /// `enable_and_recheck` found work that raced the re-enable.
    pub rearm_races: u64,
    /// Used elements the ring rejected (`caps::Rejected`).
    pub bad_descriptors: u64,
    /// RX frames dropped as malformed (short, runt, a header field the device was not
    /// allowed to write, bad `num_buffers`, a merged packet that lost a buffer).
    pub malformed: u64,
    /// RX packets that spanned several buffers and could not be gathered (too long, or
    /// no gathering buffer).
    pub multi_buffer_dropped: u64,
    /// RX packets gathered from several mergeable buffers.
    pub merged: u64,
    /// RX: large TCP segments (`GSO_TCPV4`). TX: unused.
    pub gso: u64,
    /// RX: packets whose checksum the device vouched for (`DATA_VALID`, `NEEDS_CSUM`).
    /// TX: frames whose checksum the device completes.
    pub csum_offloaded: u64,
    /// RX buffers that could not be allocated to refill the ring.
    pub refill_failures: u64,
    /// Notifications (doorbells) sent to the device.
    pub notifications: u64,
    /// TX refused because no buffer or ring slot was free.
    pub full: u64,
}

impl QueueStats {
    /// All zero.
    pub const ZERO: QueueStats = QueueStats {
        interrupts: 0,
        packets: 0,
        bytes: 0,
        budget_exhausted: 0,
        rearm_races: 0,
        bad_descriptors: 0,
        malformed: 0,
        multi_buffer_dropped: 0,
        merged: 0,
        gso: 0,
        csum_offloaded: 0,
        refill_failures: 0,
        notifications: 0,
        full: 0,
    };

    /// Field-wise sum: one queue's counters across device resets.
    pub fn plus(&self, o: &QueueStats) -> QueueStats {
        QueueStats {
            interrupts: self.interrupts + o.interrupts,
            packets: self.packets + o.packets,
            bytes: self.bytes + o.bytes,
            budget_exhausted: self.budget_exhausted + o.budget_exhausted,
            rearm_races: self.rearm_races + o.rearm_races,
            bad_descriptors: self.bad_descriptors + o.bad_descriptors,
            malformed: self.malformed + o.malformed,
            multi_buffer_dropped: self.multi_buffer_dropped + o.multi_buffer_dropped,
            merged: self.merged + o.merged,
            gso: self.gso + o.gso,
            csum_offloaded: self.csum_offloaded + o.csum_offloaded,
            refill_failures: self.refill_failures + o.refill_failures,
            notifications: self.notifications + o.notifications,
            full: self.full + o.full,
        }
    }
}

/// How to bring the device up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetOptions {
    /// RX buffers to keep posted (clamped to the queue size; ≥ 256 when it allows).
    pub rx_buffers: usize,
    /// TX buffers in the free list (clamped to the queue size).
    pub tx_buffers: usize,
    /// MSI-X entry for the RX queue, TX queue and configuration changes (`None`: no
    /// vector — INTx, MSI, or polling; entries may be shared).
    pub vectors: [Option<u16>; 3],
    /// MAC to use if the device has none (no `MAC` feature).
    pub fallback_mac: [u8; 6],
    /// Features to ask for (intersected with [`WANTED`]).
    pub features: u64,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            rx_buffers: 256,
            tx_buffers: 256,
            vectors: [None; 3],
            fallback_mac: [0x02, 0, 0, 0, 0, 1],
            features: WANTED,
        }
    }
}

/// Why bring-up failed (the device is left FAILED; reset it before retrying).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The transport or handshake refused.
    Transport(TransportError),
    /// Queue memory or layout unusable (`caps` error).
    Ring(Error),
    /// Not a single RX buffer could be allocated.
    Dma(Error),
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetError::Transport(e) => write!(f, "{e}"),
            NetError::Ring(e) => write!(f, "ring setup failed: {e}"),
            NetError::Dma(e) => write!(f, "no memory for receive buffers: {e}"),
        }
    }
}

impl From<TransportError> for NetError {
    fn from(e: TransportError) -> Self {
        NetError::Transport(e)
    }
}

/// Why a frame was not queued for transmission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxError {
    /// Length 0 or above [`MAX_FRAME`].
    BadLength,
    /// No free TX buffer or ring slot: reclaim completions, then retry.
    Full,
    /// The ring is broken (hostile used index); reset the device.
    Broken,
    /// A checksum offload the device did not negotiate, or placed outside the frame.
    BadOffload,
}

pub use hdr::{HdrError, RxCsum, RxMeta, RxOffloads, TxCsum};

/// Parses the first buffer of a received packet (virtio 1.2 §5.1.6.4): the header of
/// `hdr_len` bytes (validated against `offloads`), then the start of the frame. Returns
/// the metadata, `num_buffers` (how many buffers the packet spans, 1 without
/// `MRG_RXBUF`) and the frame bytes in this buffer. A single-buffer frame must hold an
/// Ethernet header.
pub fn parse_rx(
    data: &[u8],
    hdr_len: usize,
    offloads: RxOffloads,
    qsize: usize,
) -> Result<(RxMeta, u16, &[u8]), HdrError> {
    let (meta, n) = hdr::parse_rx_header(data, hdr_len, offloads, qsize)?;
    let frame = &data[hdr_len..];
    if n == 1 {
        check_packet(&meta, frame.len())?;
    }
    Ok((meta, n, frame))
}

/// Checks a whole packet's length against its header: at least an Ethernet header, at
/// most [`MAX_PACKET`], and the checksum and segment fields inside it
/// ([`RxMeta::check_len`]). For a packet in one buffer at once, for a merged one when its
/// last buffer is in.
pub fn check_packet(meta: &RxMeta, len: usize) -> Result<(), HdrError> {
    if len < MIN_FRAME {
        return Err(HdrError::Short);
    }
    if len > MAX_PACKET {
        return Err(HdrError::Long);
    }
    meta.check_len(len)
}

/// A device just brought up: the driver and its two armed rings.
pub struct NetDevice<T: Transport, M: RingMemory, H: DmaHal + 'static, const Q: usize> {
    /// The driver state.
    pub net: VirtioNet<T, H, Q>,
    /// The receive ring, filled and notified.
    pub rx: Vring<Armed, M, H, Q>,
    /// The transmit ring, empty.
    pub tx: Vring<Armed, M, H, Q>,
}

/// The virtio-net driver state (rings are held by the caller, see module docs).
pub struct VirtioNet<T: Transport, H: DmaHal + 'static, const Q: usize> {
    transport: T,
    pool: DmaPool<H>,
    features: u64,
    hdr_len: usize,
    mac: [u8; 6],
    offloads: RxOffloads,
    rx_target: usize,
    rx_spares: Vec<DmaRegion<H, Cpu>, Q>,
    /// Continuation buffers of a dropped multi-buffer packet still to skip.
    rx_skip: u16,
    /// The packet being gathered from mergeable buffers, if one is.
    rx_merge: Option<rx::Merge>,
    /// Where merged packets are gathered (allocated on the first one; out in an
    /// [`RxPacket`] while the caller holds it).
    rx_gather: Option<DmaRegion<H, Cpu>>,
    tx_free: Vec<DmaRegion<H, Cpu>, Q>,
    broken: bool,
    rx: QueueStats,
    tx: QueueStats,
}

impl<T: Transport, H: DmaHal + 'static, const Q: usize> VirtioNet<T, H, Q> {
    /// The ring layout `transport` needs for a queue of `Q` entries: allocate at least
    /// `total` bytes of DMA memory (4096-aligned for a legacy transport) per ring.
    pub fn ring_layout(transport: &T) -> Result<VringLayout, NetError> {
        VringLayout::with_used_align(Q, transport.used_align()).map_err(NetError::Ring)
    }

    /// Brings the device up (virtio 1.2 §3.1.1, §5.1.5): negotiate, read the MAC, set up
    /// RX and TX queues in `rx_mem` / `tx_mem`, fill the RX ring, DRIVER_OK, notify.
    pub fn init<M: RingMemory>(
        mut transport: T,
        pool: DmaPool<H>,
        rx_mem: M,
        tx_mem: M,
        opts: &NetOptions,
    ) -> Result<NetDevice<T, M, H, Q>, NetError> {
        let features =
            transport.negotiate_with(|offered| choose_features(offered, opts.features))?;
        let modern_hdr = features & (common::VERSION_1 | feature::MRG_RXBUF) != 0;
        let offloads = RxOffloads {
            csum: features & feature::GUEST_CSUM != 0,
            tso4: features & feature::GUEST_TSO4 != 0,
            mergeable: features & feature::MRG_RXBUF != 0,
        };
        let mut net = VirtioNet {
            transport,
            pool,
            features,
            hdr_len: if modern_hdr { HDR_LEN } else { LEGACY_HDR_LEN },
            mac: opts.fallback_mac,
            offloads,
            rx_target: opts.rx_buffers.clamp(1, Q),
            rx_spares: Vec::new(),
            rx_skip: 0,
            rx_merge: None,
            rx_gather: None,
            tx_free: Vec::new(),
            broken: false,
            rx: QueueStats::default(),
            tx: QueueStats::default(),
        };
        match net.bring_up(rx_mem, tx_mem, opts) {
            Ok((rx, tx)) => Ok(NetDevice { net, rx, tx }),
            Err(e) => {
                net.transport.add_status(DeviceStatus::FAILED);
                Err(e)
            }
        }
    }

    #[allow(clippy::type_complexity, reason = "the two rings, by value")]
    fn bring_up<M: RingMemory>(
        &mut self,
        rx_mem: M,
        tx_mem: M,
        opts: &NetOptions,
    ) -> Result<(Vring<Armed, M, H, Q>, Vring<Armed, M, H, Q>), NetError> {
        if self.has(feature::MAC) {
            self.mac = self
                .transport
                .read_config_stable(|t| core::array::from_fn(|i| t.config_read8(cfg::MAC + i)))?;
        }
        let mut rx = self.make_queue(RX_QUEUE, rx_mem, opts.vectors[0])?;
        let tx = self.make_queue(TX_QUEUE, tx_mem, opts.vectors[1])?;
        self.transport.set_config_vector(opts.vectors[2])?;
        for _ in 0..opts.tx_buffers.min(Q) {
            match self.pool.alloc(self.hdr_len + MAX_FRAME, 8) {
                Ok(r) => self
                    .tx_free
                    .push(r)
                    .map_err(|_| NetError::Dma(Error::ENOSPC))?,
                Err(_) => break,
            }
        }
        self.fill_rx(&mut rx);
        if rx.in_flight() == 0 {
            return Err(NetError::Dma(Error::ENOMEM));
        }
        self.transport.driver_ok()?;
        // No notification before DRIVER_OK (virtio 1.2 §3.1.1).
        self.kick(RX_QUEUE, &mut rx);
        Ok((rx, tx))
    }

    fn make_queue<M: RingMemory>(
        &mut self,
        queue: u16,
        mem: M,
        vector: Option<u16>,
    ) -> Result<Vring<Armed, M, H, Q>, NetError> {
        let layout = Self::ring_layout(&self.transport)?;
        let event_idx = self.has(common::EVENT_IDX);
        let ring = Vring::with_layout(mem, layout, event_idx, self.transport.dma_device())
            .map_err(NetError::Ring)?;
        let (desc, driver, device) = ring.addresses();
        let size = u16::try_from(Q).map_err(|_| NetError::Ring(Error::EINVAL))?;
        let setup = QueueSetup {
            size,
            desc,
            driver,
            device,
            vector,
        };
        self.transport.setup_queue(queue, &setup)?;
        Ok(ring)
    }

    fn has(&self, bit: u64) -> bool {
        self.features & bit != 0
    }

    /// Negotiated features.
    pub fn features(&self) -> u64 {
        self.features
    }
    /// The MAC address (the device's, or the fallback).
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }
    /// Bytes of virtio-net header in front of every frame.
    pub fn header_len(&self) -> usize {
        self.hdr_len
    }
    /// The receive offloads in effect (what received headers may say).
    pub fn rx_offloads(&self) -> RxOffloads {
        self.offloads
    }
    /// Whether the device completes TCP/UDP checksums on transmit (`CSUM`).
    pub fn tx_csum(&self) -> bool {
        self.has(feature::CSUM)
    }
    /// The longest frame (Ethernet header on, no virtio header) the device may deliver:
    /// [`MAX_PACKET`] with mergeable buffers, else what one buffer holds.
    pub fn max_rx_frame(&self) -> usize {
        if self.offloads.mergeable {
            MAX_PACKET
        } else {
            MAX_FRAME
        }
    }
    /// RX counters.
    pub fn rx_stats(&self) -> QueueStats {
        self.rx
    }
    /// TX counters.
    pub fn tx_stats(&self) -> QueueStats {
        self.tx
    }
    /// Free TX buffers (a `TxToken` is available when this is non-zero).
    pub fn tx_free(&self) -> usize {
        self.tx_free.len()
    }
    /// The transport (for ISR reads under INTx, or a reset).
    pub fn transport(&self) -> &T {
        &self.transport
    }
    /// The transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Counts an interrupt the kernel took for `queue` (its NAPI round's wake-up).
    pub fn note_interrupt(&mut self, queue: u16) {
        self.stats(queue).interrupts += 1;
    }

    fn stats(&mut self, queue: u16) -> &mut QueueStats {
        if queue == RX_QUEUE {
            &mut self.rx
        } else {
            &mut self.tx
        }
    }

    /// Whether a ring saw a hostile used index (the device must be reset).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Whether the device must be reset: a ring saw a hostile used index, or the device
    /// set `DEVICE_NEEDS_RESET`.
    pub fn needs_reset(&self) -> bool {
        self.broken || self.transport.check_health().is_err()
    }

    /// Link state from the configuration (`STATUS` feature; up if not negotiated).
    pub fn link_up(&self) -> Result<bool, NetError> {
        if !self.has(feature::STATUS) {
            return Ok(true);
        }
        let s = self
            .transport
            .read_config_stable(|t| t.config_read16(cfg::STATUS))?;
        Ok(s & cfg::LINK_UP != 0)
    }

    /// The configuration-change interrupt: checks `DEVICE_NEEDS_RESET`, then re-reads the
    /// link state.
    pub fn config_changed(&mut self) -> Result<bool, NetError> {
        self.transport.check_health()?;
        self.link_up()
    }

    fn kick<S: RingState, M: RingMemory>(&mut self, queue: u16, vq: &mut Vring<S, M, H, Q>) {
        if vq.kick_needed() {
            self.transport.notify(queue);
            self.stats(queue).notifications += 1;
        }
    }

    fn count_rejected(&mut self, queue: u16, error: &UsedError) {
        self.stats(queue).bad_descriptors += 1;
        if matches!(error, UsedError::IdxTooFarAhead { .. }) {
            self.broken = true;
        }
    }
}

mod hdr;
mod rx;
mod tx;

pub use rx::RxPacket;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::virtio::ModernTransport;
    use crate::virtio::fake::{self, FakeWin, NetWorld, SharedHal};
    use crate::virtio::feature::{EVENT_IDX, VERSION_1};
    use caps::fakes::FakeRingMem;
    use std::vec::Vec;

    pub(crate) type Dev<T, const Q: usize> = NetDevice<T, FakeRingMem, SharedHal, Q>;
    pub(crate) const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    pub(crate) const CONFIG: [u8; 8] = [0x52, 0x54, 0, 0x12, 0x34, 0x56, 1, 0];
    pub(crate) const QEMU: u64 = VERSION_1
        | EVENT_IDX
        | feature::MAC
        | feature::STATUS
        | feature::MRG_RXBUF
        | feature::CSUM
        | feature::GUEST_CSUM
        | feature::CTRL_VQ;

    pub(crate) fn bring_up<T: Transport, const Q: usize>(
        dev: fake::Dev,
        t: T,
        opts: &NetOptions,
    ) -> (NetWorld, Result<Dev<T, Q>, NetError>) {
        let layout = VirtioNet::<T, SharedHal, Q>::ring_layout(&t).unwrap();
        let event_idx = dev.borrow().offered & EVENT_IDX != 0;
        let (w, rx_mem, tx_mem) = NetWorld::new(dev, layout, event_idx);
        let d = VirtioNet::init(t, DmaPool::new(w.hal, u64::MAX), rx_mem, tx_mem, opts);
        (w, d)
    }

    pub(crate) fn modern<const Q: usize>(
        opts: &NetOptions,
    ) -> (NetWorld, Dev<ModernTransport<FakeWin>, Q>) {
        let dev = fake::device(QEMU, &[1024, 1024, 64], &CONFIG);
        let t = fake::modern(&dev);
        let (w, d) = bring_up(dev, t, opts);
        (w, d.unwrap())
    }

    pub(crate) fn frame(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|j| seed.wrapping_add(j as u8)).collect()
    }

    #[test]
    fn parse_rx_checks_header_and_num_buffers() {
        let mrg = RxOffloads {
            mergeable: true,
            ..RxOffloads::default()
        };
        let mut b = [0u8; 12 + 60];
        b[10] = 1;
        let frame_len =
            |r: Result<(RxMeta, u16, &[u8]), HdrError>| r.map(|(m, n, f)| (m, n, f.len()));
        assert_eq!(
            frame_len(parse_rx(&b, 12, mrg, 256)),
            Ok((RxMeta::PLAIN, 1, 60))
        );
        assert_eq!(
            frame_len(parse_rx(&b[..11], 12, mrg, 256)),
            Err(HdrError::Short)
        );
        assert_eq!(
            frame_len(parse_rx(&b[..12 + 13], 12, mrg, 256)),
            Err(HdrError::Short)
        );
        b[10] = 0;
        assert_eq!(
            frame_len(parse_rx(&b, 12, mrg, 256)),
            Err(HdrError::NumBuffers(0))
        );
        assert!(
            parse_rx(&b, 12, RxOffloads::default(), 256).is_ok(),
            "num_buffers unused without MRG"
        );
        b[10..12].copy_from_slice(&257u16.to_le_bytes());
        assert_eq!(
            frame_len(parse_rx(&b, 12, mrg, 256)),
            Err(HdrError::NumBuffers(257))
        );
        // A whole packet: an Ethernet header to the largest IPv4 datagram.
        assert_eq!(check_packet(&RxMeta::PLAIN, MIN_FRAME), Ok(()));
        assert_eq!(
            check_packet(&RxMeta::PLAIN, MIN_FRAME - 1),
            Err(HdrError::Short)
        );
        assert_eq!(check_packet(&RxMeta::PLAIN, MAX_PACKET), Ok(()));
        assert_eq!(
            check_packet(&RxMeta::PLAIN, MAX_PACKET + 1),
            Err(HdrError::Long)
        );
        // The first of two buffers may hold less than an Ethernet header.
        b[10..12].copy_from_slice(&2u16.to_le_bytes());
        assert_eq!(
            frame_len(parse_rx(&b[..20], 12, mrg, 256)),
            Ok((RxMeta::PLAIN, 2, 8))
        );
        assert_eq!(
            frame_len(parse_rx(&b[..24], 10, RxOffloads::default(), 256)),
            Ok((RxMeta::PLAIN, 1, 14))
        );
    }

    #[test]
    fn offloads_depend_on_each_other() {
        use feature::*;
        let all = QEMU | GUEST_TSO4 | HOST_TSO4;
        let got = choose_features(all, WANTED);
        assert_eq!(
            got & (CSUM | GUEST_CSUM | GUEST_TSO4 | MRG_RXBUF),
            CSUM | GUEST_CSUM | GUEST_TSO4 | MRG_RXBUF
        );
        assert_eq!(got & (HOST_TSO4 | CTRL_VQ), 0, "never asked for");
        assert_eq!(choose_features(all & !GUEST_CSUM, WANTED) & GUEST_TSO4, 0);
        assert_eq!(choose_features(all & !MRG_RXBUF, WANTED) & GUEST_TSO4, 0);
        assert_eq!(choose_features(all, WANTED & !GUEST_CSUM) & GUEST_TSO4, 0);
        assert_eq!(choose_features(all, WANTED & !CSUM) & CSUM, 0);
    }

    #[test]
    fn feature_names_for_the_log() {
        use std::string::ToString;
        let f = FeatureNames(feature::CSUM | feature::MAC | VERSION_1 | 1 << 40);
        assert_eq!(f.to_string(), "CSUM MAC VERSION_1 bit 40");
        assert_eq!(FeatureNames(0).to_string(), "none");
    }

    #[test]
    fn negotiation_and_bring_up() {
        let (w, mut d) = modern::<256>(&NetOptions::default());
        let want = VERSION_1
            | EVENT_IDX
            | feature::MAC
            | feature::STATUS
            | feature::MRG_RXBUF
            | feature::CSUM
            | feature::GUEST_CSUM;
        assert_eq!(
            d.net.features(),
            want,
            "offloads offered are taken; no CTRL_VQ"
        );
        assert!(d.net.tx_csum());
        assert_eq!(d.net.max_rx_frame(), MAX_PACKET);
        assert_eq!((d.net.mac(), d.net.header_len()), (MAC, HDR_LEN));
        assert_eq!(d.rx.in_flight(), 256, "RX fully populated");
        assert_eq!((d.tx.in_flight(), d.net.tx_free()), (0, 256));
        {
            let dev = w.dev.borrow();
            assert_eq!(dev.status, 15, "DRIVER_OK");
            assert_eq!((dev.queues[0].size, dev.queues[1].size), (256, 256));
            assert_eq!(
                dev.notifications,
                [(0, RX_QUEUE)],
                "RX kicked once, after DRIVER_OK"
            );
        }
        assert_eq!(d.net.link_up(), Ok(true));
        w.dev.borrow_mut().config[6] = 0;
        assert_eq!(d.net.config_changed(), Ok(false));
        w.dev.borrow_mut().status |= 64;
        let e = NetError::Transport(TransportError::NeedsReset);
        assert_eq!(d.net.config_changed(), Err(e));
        assert!(d.net.needs_reset());
    }

    #[test]
    fn bring_up_failures_leave_the_device_failed() {
        let dev = fake::device(QEMU, &[1024, 1024], &CONFIG);
        let t = fake::modern(&dev);
        let opts = NetOptions {
            vectors: [Some(1), Some(9), Some(0)],
            ..NetOptions::default()
        };
        let (_w, d) = bring_up::<_, 16>(dev.clone(), t, &opts);
        let e = TransportError::VectorRefused {
            queue: Some(1),
            vector: 9,
        };
        assert_eq!(d.err(), Some(NetError::Transport(e)));
        assert_eq!(dev.borrow().status & 128, 128, "FAILED set");
        // A legacy device whose fixed queue size is not the driver's.
        let dev = fake::device(feature::MAC, &[256, 256], &CONFIG);
        let t = fake::legacy(&dev, false);
        let (_w, d) = bring_up::<_, 16>(dev.clone(), t, &NetOptions::default());
        let e = TransportError::QueueSize {
            queue: 0,
            max: 256,
            wanted: 16,
        };
        assert_eq!(d.err(), Some(NetError::Transport(e)));
    }
}
