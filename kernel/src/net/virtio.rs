//! virtio-net on the PCI bus: bring-up with the best interrupt the platform offers, and the
//! NAPI receive loop.
//!
//! The driver logic lives in `drivers::virtio::net`; this module claims the PCI function,
//! picks its transport (modern capabilities, or the legacy BAR0 block of a legacy-only
//! device), gives it interrupts, ring memory from the DMA module, and runs the
//! interrupt-driven datapath over the capability types: the RX ring and its line are one
//! `NapiLine`; the line's notification wakes the owner, which takes the pair (line
//! `Draining`, ring `Suppressed`: a `Round`), pulls frames up to a budget, and re-arms only
//! through `enable_and_recheck`, which reads the used ring back empty. See docs/net.md.
//!
//! Interrupts, best first ([`IrqMode`]): MSI-X with RX and configuration changes on vectors
//! of their own; MSI-X with one shared vector when the table has a single entry; the
//! function's INTx line when there is no MSI-X (no MSI controller, `pci=nomsi`, GICv3
//! without an ITS). virtio defines no plain-MSI mode (virtio 1.2 §4.1.5.1.2 has MSI-X
//! vectors or INTx with the ISR), so there is no MSI step. TX never gets a vector: the
//! sender reclaims completions before each send.

use alloc::boxed::Box;
use alloc::vec::Vec;

use caps::dma::DmaPool;
use caps::irq::{AnyIrqLine, Armed, IrqLine, Masked};
use caps::napi::{self, NapiLine, PollOutcome, Round};
use caps::quiet::quiesce;
use caps::vring::{Polled, Vring};
use drivers::pci::msi::{InterruptKind, InterruptPlan, PlanRequest, enable_intx};
use drivers::virtio::net::{FeatureNames, NetDevice, NetError, NetOptions, RxPacket, VirtioNet};
use drivers::virtio::pci::{Region, find_caps};
use drivers::virtio::{AnyTransport, LegacyTransport, MmioWindow, ModernTransport, Transport};

use crate::arch::devices;
use crate::arch::dma::{DmaRing, HAL, KernelDma};
use crate::irq as kirq;
use crate::pci::irq::setup_msix_lines;
use crate::pci::{self, Device, PciError};
use crate::platform::Mmio;
use crate::sched::{self, NotifyId, TimedOut};

/// Queue size the kernel asks for (the device may offer less; virtio-net-pci has 256).
pub const QUEUE: usize = 256;
/// Frames per NAPI poll before yielding (DESIGN.md "Budgets").
pub const BUDGET: usize = napi::DEFAULT_BUDGET;

type Net = VirtioNet<AnyTransport<MmioWindow>, KernelDma, QUEUE>;
type Ring<S> = Vring<S, DmaRing, KernelDma, QUEUE>;
type RxPair = NapiLine<DmaRing, KernelDma, QUEUE>;
type RxRound = Round<DmaRing, KernelDma, QUEUE>;

/// The offloads a device negotiated, for the log and the tests' reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offloads {
    /// Received checksums vouched for by the device (`GUEST_CSUM`).
    pub rx_csum: bool,
    /// TCP segments up to 64 KiB received whole (`GUEST_TSO4`).
    pub rx_tso4: bool,
    /// Packets may span several receive buffers (`MRG_RXBUF`).
    pub mergeable: bool,
    /// TCP checksums completed by the device (`CSUM`).
    pub tx_csum: bool,
}

impl Offloads {
    /// What `net` negotiated.
    pub fn of(net: &Net) -> Self {
        let rx = net.rx_offloads();
        Offloads {
            rx_csum: rx.csum,
            rx_tso4: rx.tso4,
            mergeable: rx.mergeable,
            tx_csum: net.tx_csum(),
        }
    }
}

impl core::fmt::Display for Offloads {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(
            f,
            "rx-csum {} tso4 {} mergeable {} tx-csum {}",
            on(self.rx_csum),
            on(self.rx_tso4),
            on(self.mergeable),
            on(self.tx_csum)
        )
    }
}

/// Why the NIC did not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// Claiming, mapping or interrupt setup.
    Pci(PciError),
    /// Neither modern capabilities nor a usable legacy BAR0.
    Transport,
    /// The driver refused (handshake, rings, DMA).
    Net(NetError),
    /// Ring memory.
    Dma(abi::Error),
    /// The function can interrupt neither by MSI-X nor by a routable INTx pin.
    NoInterrupt,
}

impl core::fmt::Display for AttachError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AttachError::Pci(PciError::NotFound) => write!(f, "no virtio-net device"),
            AttachError::Pci(e) => write!(f, "virtio-net: {e}"),
            AttachError::Transport => write!(
                f,
                "virtio-net offers neither modern capabilities nor a usable legacy BAR"
            ),
            AttachError::Net(e) => write!(f, "virtio-net: {e}"),
            AttachError::Dma(e) => write!(f, "no memory for virtio-net's rings: {e}"),
            AttachError::NoInterrupt => write!(
                f,
                "virtio-net can interrupt neither by MSI-X nor by a routable INTx pin"
            ),
        }
    }
}

/// How the NIC interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IrqMode {
    /// MSI-X: RX and configuration changes on vectors of their own.
    MsixPerQueue,
    /// MSI-X with a single table entry shared by RX and configuration changes.
    MsixShared,
    /// The level-triggered INTx line, acknowledged by reading the ISR status.
    Intx,
}

/// `s` unless `n` is 1.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// How the log says it.
impl core::fmt::Display for IrqMode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            IrqMode::MsixPerQueue => "MSI-X, RX and configuration changes on vectors of their own",
            IrqMode::MsixShared => "MSI-X, one vector for RX and configuration changes",
            IrqMode::Intx => "INTx",
        })
    }
}

/// One interrupt line of the NIC.
pub struct Vector {
    /// The configuration vector's line: armed while idle, taken while handled. (The RX
    /// line lives in its `NapiLine` with the ring, or masked for good in polling mode.)
    line: Option<AnyIrqLine>,
    /// MSI-X table entry (`None` for INTx).
    pub entry: Option<u16>,
    intid: u32,
}

/// A running virtio-net interface: the driver, its rings and its lines.
pub struct VirtioNic {
    /// Driver state and counters.
    pub net: Net,
    /// Receive ring and its line (armed while idle; in `rx_draining` during a round).
    pub rx: Option<RxPair>,
    /// Receive ring in polling mode (interrupts off for good, its line masked for good).
    pub rx_polled: Option<Ring<Polled>>,
    /// The RX pair during a NAPI round (line taken, ring suppressed).
    rx_draining: Option<RxRound>,
    /// Transmit ring: polled, with no vector; completions are reclaimed before each send.
    pub tx: Ring<Polled>,
    /// How the NIC interrupts.
    pub mode: IrqMode,
    /// The NIC's lines: RX first, then (MSI-X per queue only) configuration changes.
    pub vectors: Vec<Vector>,
    /// Every line posts here; also the net task's wake-up. Destroyed after the lines.
    wake: sched::OwnedNotify,
    /// Link state as of the last configuration interrupt (or bring-up).
    pub link_up: bool,
    /// Configuration-change interrupts handled.
    pub config_events: u64,
    /// Times the link went down.
    pub link_downs: u64,
    /// The device set `DEVICE_NEEDS_RESET` (seen on a configuration interrupt).
    reset_needed: bool,
    /// Frames pulled in the current NAPI round (for the trace).
    round_frames: usize,
    _dev: Device,
}

const RX: usize = 0;
const CONFIG: usize = 1;

fn window(r: Mmio) -> Result<MmioWindow, AttachError> {
    devices::virtio_window(r).map_err(|_| AttachError::Pci(PciError::Map))
}

fn region(r: Region) -> Mmio {
    Mmio {
        base: r.cpu_addr as usize,
        len: r.len,
    }
}

/// Whether a function is a virtio-net NIC (transitional or modern-only device ID).
pub fn is_virtio_net(vendor: u16, device: u16) -> bool {
    vendor == 0x1af4 && matches!(device, 0x1000 | 0x1041)
}

/// Claims the first virtio-net function and brings it up. Other virtio-net functions
/// are named in the log and left for whoever claims them (a test, a user-mode driver).
pub fn attach() -> Result<Box<VirtioNic>, AttachError> {
    let dev = pci::claim(0x1af4, 0x1000)
        .or_else(|_| pci::claim(0x1af4, 0x1041))
        .map_err(AttachError::Pci)?;
    if let Some(bus) = pci::bus() {
        for other in bus
            .functions
            .iter()
            .filter(|f| is_virtio_net(f.vendor, f.device) && f.bdf != dev.bdf())
        {
            log::info!(
                "virtio-net: {} is not used by the kernel's stack (it takes the first NIC, {})",
                other.bdf,
                dev.bdf()
            );
        }
    }
    bring_up(dev)
}

/// Claims the virtio-net function at `bdf` and brings it up.
pub fn attach_at(bdf: drivers::pci::Bdf) -> Result<Box<VirtioNic>, AttachError> {
    let dev = pci::claim_at(bdf).map_err(AttachError::Pci)?;
    if !is_virtio_net(dev.func.vendor, dev.func.device) {
        return Err(AttachError::Pci(PciError::NotFound));
    }
    bring_up(dev)
}

fn bring_up(dev: Device) -> Result<Box<VirtioNic>, AttachError> {
    let wake = sched::OwnedNotify::new().map_err(|_| AttachError::Dma(abi::Error::ENOMEM))?;
    let (mode, lines) = interrupts(&dev, wake.id())?;
    // The legacy header moves the device configuration when MSI-X is on: pick the
    // transport after the interrupts.
    let transport = transport(&dev, mode != IrqMode::Intx)?;
    let layout = Net::ring_layout(&transport).map_err(AttachError::Net)?;
    let rx_mem = DmaRing::new(layout.total, u64::MAX).map_err(AttachError::Dma)?;
    let tx_mem = DmaRing::new(layout.total, u64::MAX).map_err(AttachError::Dma)?;
    let entry = |i: usize| {
        lines
            .get(i)
            .and_then(|v: &(IrqLine<Masked>, Option<u16>)| v.1)
    };
    let opts = NetOptions {
        vectors: [entry(RX), None, entry(CONFIG).or(entry(RX))],
        ..NetOptions::default()
    };
    let pool = DmaPool::new(&HAL, u64::MAX);
    let NetDevice { net, rx, tx } =
        Net::init(transport, pool, rx_mem, tx_mem, &opts).map_err(AttachError::Net)?;
    // TX has no vector: nobody waits for its interrupt, so its ring is polled for good.
    let tx = tx.into_polled();
    let link_up = net.link_up().unwrap_or(false);
    log::debug!(
        "virtio-net: {}: {} transport, features {}",
        dev.bdf(),
        match net.transport().kind() {
            drivers::virtio::TransportKind::Modern => "modern",
            drivers::virtio::TransportKind::Legacy => "legacy",
        },
        FeatureNames(net.features())
    );
    log::debug!(
        "virtio-net: RX and TX queues of {QUEUE} entries, {} RX buffers posted, \
         {}-byte header, frames up to {} bytes",
        rx.in_flight(),
        net.header_len(),
        net.max_rx_frame()
    );
    log::info!("virtio-net: offloads: {}", Offloads::of(&net));
    let mut lines = lines.into_iter();
    let (rx_line, rx_entry) = lines.next().ok_or(AttachError::NoInterrupt)?;
    let mut vectors = alloc::vec![Vector {
        intid: rx_line.intid(),
        line: None,
        entry: rx_entry,
    }];
    // The RX queue signals on its line (`NetOptions::vectors[RX]`): bound for good.
    let rx = NapiLine::new(rx_line, rx)
        .map_err(|_| AttachError::Net(NetError::Ring(abi::Error::EBUSY)))?;
    vectors.extend(lines.map(|(line, entry)| Vector {
        intid: line.intid(),
        line: Some(AnyIrqLine::Armed(line.arm())),
        entry,
    }));
    log::debug!(
        "virtio-net: interrupts by {mode}: RX line INTID {} bound to the RX ring and armed{}",
        vectors[RX].intid,
        vectors
            .get(CONFIG)
            .map(|v| alloc::format!(", configuration line INTID {} armed", v.intid))
            .unwrap_or_default()
    );
    Ok(Box::new(VirtioNic {
        net,
        rx: Some(rx),
        rx_polled: None,
        rx_draining: None,
        tx,
        mode,
        vectors,
        wake,
        link_up,
        config_events: 0,
        link_downs: 0,
        reset_needed: false,
        round_frames: 0,
        _dev: dev,
    }))
}

/// The modern transport when the function has virtio capabilities, else the legacy block
/// in BAR0 (`msix`: whether MSI-X is enabled, which moves the legacy configuration).
fn transport(dev: &Device, msix: bool) -> Result<AnyTransport<MmioWindow>, AttachError> {
    let bus = pci::bus().ok_or(AttachError::Pci(PciError::NotFound))?;
    let caps = find_caps(&bus.ecam, dev.bdf()).map_err(|_| AttachError::Transport)?;
    if caps.common.is_some() {
        let regions = caps
            .locate(&dev.func.bars)
            .map_err(|_| AttachError::Transport)?;
        let device_cfg = regions.device.map(|r| window(region(r))).transpose()?;
        let t = ModernTransport::new(
            window(region(regions.common))?,
            window(region(regions.notify))?,
            window(region(regions.isr))?,
            device_cfg,
            regions.notify_off_multiplier,
        )
        .map_err(|_| AttachError::Transport)?;
        return Ok(AnyTransport::Modern(t));
    }
    // No modern capabilities: only a transitional device (ID 0x1000) has the legacy block.
    if dev.func.device != 0x1000 {
        return Err(AttachError::Transport);
    }
    let bar0 = dev.bar(0).map_err(AttachError::Pci)?;
    let t = LegacyTransport::new(window(bar0)?, msix).map_err(|_| AttachError::Transport)?;
    log::info!("virtio-net: legacy interface (BAR0 at {:#x})", bar0.base);
    Ok(AnyTransport::Legacy(t))
}

/// The NIC's lines, all posting to `wake`: MSI-X vectors for RX and configuration (one
/// shared if the table is that small), else the INTx line. Each comes with its MSI-X entry.
#[allow(
    clippy::type_complexity,
    reason = "line and table entry, in source order"
)]
fn interrupts(
    dev: &Device,
    wake: NotifyId,
) -> Result<(IrqMode, Vec<(IrqLine<Masked>, Option<u16>)>), AttachError> {
    let bus = pci::bus().ok_or(AttachError::Pci(PciError::NotFound))?;
    let req = PlanRequest {
        wanted: 2,
        allow_msix: pci::msi_vectors().is_some() && !bus.no_msi,
        allow_msi: false,
    };
    let plan = InterruptPlan::choose(&bus.ecam, dev.func, req);
    match plan.kind {
        InterruptKind::MsiX(cap) => {
            let lines = setup_msix_lines(dev, cap, plan.vectors, "virtio-net", Some(wake))
                .map_err(AttachError::Pci)?;
            let mode = if lines.len() >= 2 {
                IrqMode::MsixPerQueue
            } else {
                IrqMode::MsixShared
            };
            Ok((
                mode,
                lines.into_iter().map(|m| (m.line, Some(m.entry))).collect(),
            ))
        }
        InterruptKind::Intx { .. } => {
            let (root, pin) = dev.func.intx_root.ok_or(AttachError::NoInterrupt)?;
            let (intid, trigger) = bus
                .host
                .intx
                .route(root, pin)
                .ok_or(AttachError::NoInterrupt)?;
            // The NAPI round needs the line itself, so virtio-net does not join the
            // shared-INTx dispatcher: minting fails (EBUSY) if another driver holds it.
            let line = kirq::mint(intid, trigger, kirq::owner_of(wake), "virtio-net")
                .map_err(|e| AttachError::Pci(PciError::Irq(e)))?;
            enable_intx(&bus.ecam, dev.bdf());
            Ok((IrqMode::Intx, alloc::vec![(line, None)]))
        }
        InterruptKind::Msi(_) | InterruptKind::None => Err(AttachError::NoInterrupt),
    }
}

impl Vector {
    fn take_armed(&mut self) -> Option<IrqLine<Armed>> {
        match self.line.take() {
            Some(AnyIrqLine::Armed(l)) => Some(l),
            other => {
                self.line = other;
                None
            }
        }
    }

    fn put(&mut self, line: IrqLine<Armed>) {
        self.line = Some(AnyIrqLine::Armed(line));
    }
}

impl VirtioNic {
    /// Whether the device can no longer be trusted and must be reset and brought up again:
    /// it set `DEVICE_NEEDS_RESET`, or wrote a used index too far ahead.
    pub fn needs_reinit(&self) -> bool {
        self.reset_needed || self.net.is_broken()
    }

    /// Stops the device before it is dropped: a reset ends its DMA and interrupts (virtio
    /// 1.2 §2.4). Once the reset completed, the buffers the rings still hold are freed
    /// (`Vring::release`); if it did not, they stay quarantined. Then the lines are masked
    /// and freed and bus mastering is turned off. Returns how many buffers were freed.
    pub fn shut_down(self: Box<Self>) -> usize {
        let VirtioNic {
            mut net,
            rx,
            rx_polled,
            rx_draining,
            tx,
            ..
        } = *self;
        if let Err(e) = net.transport_mut().reset() {
            log::error!("virtio-net: reset did not complete ({e}); its buffers stay quarantined");
            return 0;
        }
        // Each release reads the status back (0: no DMA) from this function; a ring that
        // is refused is dropped, which quarantines what it holds.
        let stopped = net.transport().dma_stopped();
        let rx = rx.map_or(Ok(0), |r| r.release(&stopped).map_err(drop));
        let polled = rx_polled.map_or(Ok(0), |r| r.release(&stopped).map_err(drop));
        let draining = rx_draining.map_or(Ok(0), |r| r.release(&stopped).map_err(drop));
        let tx = tx.release(&stopped).map_err(drop);
        let released = [rx, polled, draining, tx];
        if released.iter().any(Result::is_err) {
            log::error!("virtio-net: status did not read 0; a ring's buffers stay quarantined");
        }
        released.into_iter().flatten().sum()
    }

    /// The notification every line of the NIC posts to (also the net task's wake-up).
    pub fn rx_notify(&self) -> NotifyId {
        self.wake.id()
    }

    /// The INTID RX interrupts arrive on.
    pub fn rx_intid(&self) -> u32 {
        self.vectors[RX].intid
    }

    /// Reclaims finished transmissions.
    pub fn reclaim(&mut self) {
        self.net.reclaim_tx(&mut self.tx, QUEUE);
    }

    /// Sends one frame, reclaiming finished transmissions first (never waits).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), drivers::virtio::net::TxError> {
        self.net.reclaim_tx(&mut self.tx, QUEUE);
        self.net.transmit(&mut self.tx, frame)
    }

    /// Switches RX to polling mode (the predecessor's design, kept for comparison): the RX
    /// line is masked for good and the ring's interrupts are off for good; `poll_rx` then
    /// drains it on a timer.
    pub fn enter_polling_mode(&mut self) {
        let Some(rx) = self.rx.take() else { return };
        let (masked, ring) = rx.into_polled();
        self.rx_polled = Some(ring);
        self.vectors[RX].line = Some(AnyIrqLine::Draining(masked));
        log::debug!(
            "virtio-net: polling mode: RX line INTID {} masked for good",
            self.vectors[RX].intid
        );
    }

    /// Sleeps until a line of the NIC fires, a request arrives, or `deadline_ns`.
    pub fn wait(&self, deadline_ns: u64) -> Result<u64, TimedOut> {
        sched::notify_wait(self.wake.id(), deadline_ns)
    }

    /// Starts a NAPI round if the RX line fired (and handles a configuration change): the
    /// pair is taken (`napi::take`: line `Draining`, ring suppressed) and stays so until
    /// [`VirtioNic::end_batch`] finds the ring drained. Returns whether frames may be
    /// pulled ([`VirtioNic::pop_rx`]): during a round, and always in polling mode.
    pub fn begin_round(&mut self) -> bool {
        if self.rx_polled.is_some() || self.rx_draining.is_some() {
            return true;
        }
        if self.mode == IrqMode::MsixPerQueue {
            self.config_vector();
        }
        let Some(rx) = self.rx.take() else {
            return false;
        };
        match napi::take(rx) {
            Ok(round) => {
                self.rx_draining = Some(round);
                self.round_frames = 0;
                crate::trace_limited!(
                    "virtio-net: NAPI round opens (INTID {} fired)",
                    self.vectors[RX].intid
                );
            }
            Err(rx) => {
                self.rx = Some(rx);
                return false;
            }
        }
        match self.mode {
            // Reading the ISR deasserts INTx. It happens here, with the ring suppressed and
            // before the drain, never after the recheck: a completion landing after the
            // recheck must find the line asserted when it is unmasked.
            IrqMode::Intx => self.deassert_intx(),
            IrqMode::MsixShared => {
                if self.net.link_up().is_ok_and(|up| up != self.link_up) {
                    self.config_changed();
                }
            }
            IrqMode::MsixPerQueue => {}
        }
        self.net.note_interrupt(drivers::virtio::net::RX_QUEUE);
        true
    }

    /// The next received packet (validated by the driver), if a round is open (or in
    /// polling mode) and the ring has one. Give it back with [`VirtioNic::recycle_rx`].
    pub fn pop_rx(&mut self) -> Option<RxPacket<KernelDma>> {
        match (self.rx_draining.as_mut(), self.rx_polled.as_mut()) {
            (Some(round), _) => {
                let p = self.net.pop_rx(round.ring_mut());
                self.round_frames += usize::from(p.is_some());
                p
            }
            (None, Some(vq)) => self.net.pop_rx(vq),
            (None, None) => None,
        }
    }

    /// Takes a packet's buffer back for reposting.
    pub fn recycle_rx(&mut self, p: RxPacket<KernelDma>) {
        self.net.recycle_rx(p);
    }

    /// Ends a batch of pulls: refills the ring and, in a NAPI round, decides — work left
    /// (budget spent, or a re-arm race): `true`, the round stays open (line masked, ring
    /// suppressed) and the caller yields before pulling again; ring drained: re-enable and
    /// recheck, which re-arms the line on the used ring read back empty, `false`.
    pub fn end_batch(&mut self) -> bool {
        if let Some(vq) = self.rx_polled.as_mut() {
            self.net.refill_rx(vq);
            return false;
        }
        let Some(round) = self.rx_draining.take() else {
            return false;
        };
        let frames = self.round_frames;
        match self.net.rx_batch_done(round) {
            PollOutcome::BudgetSpent(round) => {
                self.rx_draining = Some(round);
                crate::trace_limited!(
                    "virtio-net: budget spent ({frames} frame{} so far); the round stays open",
                    plural(frames)
                );
                true
            }
            PollOutcome::Drained(quiesce) => match self.net.rx_enable_and_recheck(quiesce) {
                Ok(rx) => {
                    self.rx = Some(rx);
                    crate::trace_limited!(
                        "virtio-net: NAPI round ends: {frames} frame{}, ring drained, line re-armed",
                        plural(frames)
                    );
                    false
                }
                Err(napi::Raced(round)) => {
                    self.rx_draining = Some(round);
                    // The racing frame may have asserted INTx after the round's ISR read;
                    // left asserted, it would fire at the re-arm for a ring already drained.
                    if self.mode == IrqMode::Intx {
                        self.deassert_intx();
                    }
                    crate::trace_limited!(
                        "virtio-net: a frame raced the re-enable ({frames} frame{} so far); \
                         the round stays open",
                        plural(frames)
                    );
                    true
                }
            },
        }
    }

    /// Waits for an interrupt (or `deadline_ns`) and drains the ring with the NAPI protocol,
    /// handing each frame to `deliver`: for code that needs frames without the stack
    /// (tests). Returns the frames delivered.
    pub fn receive(
        &mut self,
        deadline_ns: u64,
        mut deliver: impl FnMut(&[u8]),
    ) -> Result<usize, TimedOut> {
        self.wait(deadline_ns)?;
        let mut delivered = 0;
        if !self.begin_round() {
            return Ok(0);
        }
        loop {
            for _ in 0..BUDGET {
                let Some(p) = self.pop_rx() else { break };
                deliver(p.frame());
                self.recycle_rx(p);
                delivered += 1;
            }
            if !self.end_batch() {
                return Ok(delivered);
            }
            sched::yield_now(); // budget spent: never starve other threads
        }
    }

    /// The configuration vector (MSI-X per queue): if it fired, read the link state and
    /// re-arm once the configuration generation reads back what the read started from
    /// (`Transport::config_quiet`); a change after that sends a new message, latched while
    /// the line is masked.
    fn config_vector(&mut self) {
        let Some(line) = self.vectors[CONFIG].take_armed() else {
            return;
        };
        let mut draining = match line.try_take() {
            Ok(draining) => draining,
            Err(armed) => return self.vectors[CONFIG].put(armed),
        };
        for _ in 0..drivers::virtio::CONFIG_RETRIES {
            let mark = self.net.transport().config_mark();
            self.config_changed();
            match quiesce(draining, &self.net.transport().config_quiet(mark)) {
                Ok((quiet, line)) => return self.vectors[CONFIG].put(line.rearm(quiet)),
                Err(line) => draining = line,
            }
        }
        log::warn!("virtio-net: configuration keeps changing; its vector stays masked");
        self.vectors[CONFIG].line = Some(AnyIrqLine::Draining(draining));
    }

    /// INTx: reads (and so clears) the ISR, which deasserts the line; called only with the
    /// RX ring suppressed and before a drain, so any completion it clears is still drained.
    fn deassert_intx(&mut self) {
        if self.net.transport().read_isr().config() {
            self.config_changed();
        }
    }

    fn config_changed(&mut self) {
        self.config_events += 1;
        match self.net.config_changed() {
            Ok(up) if up != self.link_up => {
                self.link_up = up;
                self.link_downs += u64::from(!up);
                log::info!("virtio-net: link {}", if up { "up" } else { "down" });
            }
            Ok(_) => {}
            Err(e) => {
                log::error!("virtio-net: device needs a reset ({e})");
                self.reset_needed = true;
            }
        }
    }
}
