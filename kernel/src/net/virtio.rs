//! virtio-net on the PCI bus: bring-up with MSI-X and the NAPI receive loop.
//!
//! The driver logic lives in `drivers::virtio::net`; this module claims the PCI
//! function, maps its virtio structures, gives it MSI-X vectors (RX, TX, config;
//! one shared vector if the table is smaller), ring memory from the DMA module,
//! and runs the interrupt-driven datapath over the capability types: the RX line's
//! notification wakes the owner, which takes the line (`IrqLine<Draining>`) and
//! suppresses the ring (`Vring<Suppressed>`), polls up to a budget, and re-arms only
//! through `enable_and_recheck` → `rearm(Quiesced)`. See docs/net.md.

use alloc::vec::Vec;

use caps::dma::DmaPool;
use caps::irq::{AnyIrqLine, Armed, IrqLine};
use caps::napi::{self, PollOutcome};
use caps::vring::Vring;
use drivers::pci::msi::{InterruptKind, InterruptPlan, PlanRequest};
use drivers::virtio::net::{NetDevice, NetError, NetOptions, VirtioNet};
use drivers::virtio::pci::{Region, find_caps};
use drivers::virtio::{MmioWindow, ModernTransport};

use crate::arch::devices;
use crate::arch::dma::{DmaRing, HAL, KernelDma};
use crate::pci::irq::{MsixLine, setup_msix_lines};
use crate::pci::{self, Device, PciError};
use crate::platform::Mmio;
use crate::sched::{self, NotifyId, TimedOut};

/// Queue size the kernel asks for (the device may offer less; virtio-net-pci has 256).
pub const QUEUE: usize = 256;
/// Frames per NAPI poll before yielding (DESIGN.md "Budgets").
#[allow(dead_code, reason = "used by the RX path the net task drives next")]
pub const BUDGET: usize = napi::DEFAULT_BUDGET;

type Transport = ModernTransport<MmioWindow>;
type Net = VirtioNet<Transport, KernelDma, QUEUE>;
type Ring<S> = Vring<S, DmaRing, KernelDma, QUEUE>;

/// Why the NIC did not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    /// Claiming, mapping or interrupt setup.
    Pci(PciError),
    /// Not a modern virtio device, or its structures are unusable.
    Transport,
    /// The driver refused (handshake, rings, DMA).
    Net(NetError),
    /// Ring memory.
    Dma(abi::Error),
    /// No MSI-X (INTx/MSI fallback for virtio-net is not implemented yet).
    NoMsix,
}

/// A line and the notification its interrupts post to.
#[allow(dead_code, reason = "the RX path the net task drives next reads these")]
pub struct Vector {
    /// The line: armed while idle, taken during a NAPI round; the TX-only vector stays
    /// masked (TX completions are reclaimed by the sender).
    line: Option<AnyIrqLine>,
    /// Its notification.
    pub notify: NotifyId,
    /// MSI-X table entry index.
    pub entry: u16,
}

/// A running virtio-net interface: the driver, its rings and its vectors.
pub struct VirtioNic {
    /// Driver state and counters.
    pub net: Net,
    /// Receive ring (armed while idle).
    pub rx: Option<Ring<Armed>>,
    /// Receive ring in polling mode (suppressed, its line masked for good).
    pub rx_polled: Option<Ring<caps::vring::Suppressed>>,
    /// Transmit ring: kept suppressed; completions are reclaimed before each send and
    /// on TX interrupts.
    pub tx: Ring<caps::vring::Suppressed>,
    /// One vector per RX, TX and config (the same one when the table is small).
    pub vectors: Vec<Vector>,
    /// Which `vectors` entry serves RX, TX, config.
    pub route: [usize; 3],
    _dev: Device,
}

fn window(r: Region) -> Result<MmioWindow, AttachError> {
    devices::virtio_window(Mmio {
        base: r.cpu_addr as usize,
        len: r.len,
    })
    .map_err(|_| AttachError::Pci(PciError::Map))
}

/// Claims the first virtio-net function and brings it up with MSI-X.
pub fn attach() -> Result<alloc::boxed::Box<VirtioNic>, AttachError> {
    let dev = pci::claim(0x1af4, 0x1000)
        .or_else(|_| pci::claim(0x1af4, 0x1041))
        .map_err(AttachError::Pci)?;
    let bus = pci::bus().ok_or(AttachError::Pci(PciError::NotFound))?;
    let caps = find_caps(&bus.ecam, dev.bdf()).map_err(|_| AttachError::Transport)?;
    let regions = caps
        .locate(&dev.func.bars)
        .map_err(|_| AttachError::Transport)?;
    let device_cfg = regions.device.map(window).transpose()?;
    let transport = ModernTransport::new(
        window(regions.common)?,
        window(regions.notify)?,
        window(regions.isr)?,
        device_cfg,
        regions.notify_off_multiplier,
    )
    .map_err(|_| AttachError::Transport)?;
    let (lines, route) = msix_vectors(&dev)?;
    let layout = Net::ring_layout(&transport).map_err(AttachError::Net)?;
    let rx_mem = DmaRing::new(layout.total, u64::MAX).map_err(AttachError::Dma)?;
    let tx_mem = DmaRing::new(layout.total, u64::MAX).map_err(AttachError::Dma)?;
    // The TX queue gets no vector: its completions are reclaimed by the sender, so the
    // device never needs to signal them (its ring is suppressed with the TX line masked).
    let opts = NetOptions {
        vectors: [
            Some(lines[route[0]].entry),
            None,
            Some(lines[route[2]].entry),
        ],
        ..NetOptions::default()
    };
    let pool = DmaPool::new(&HAL, u64::MAX);
    let NetDevice { net, rx, tx } =
        Net::init(transport, pool, rx_mem, tx_mem, &opts).map_err(AttachError::Net)?;
    // TX completions are reclaimed by the sender: the TX ring is suppressed with its line
    // masked. A vector shared with RX is armed for RX's sake.
    let tx = tx.suppress_polled(&lines[route[1]].line);
    let vectors = lines
        .into_iter()
        .enumerate()
        .map(|(i, m): (usize, MsixLine)| {
            let line = if i == route[1] && i != route[0] {
                AnyIrqLine::Masked(m.line)
            } else {
                AnyIrqLine::Armed(m.line.arm())
            };
            Vector {
                line: Some(line),
                notify: m.notify,
                entry: m.entry,
            }
        })
        .collect();
    Ok(alloc::boxed::Box::new(VirtioNic {
        net,
        rx: Some(rx),
        rx_polled: None,
        tx,
        vectors,
        route,
        _dev: dev,
    }))
}

/// Three MSI-X vectors (RX, TX, config), or fewer shared when the table is smaller.
fn msix_vectors(dev: &Device) -> Result<(Vec<MsixLine>, [usize; 3]), AttachError> {
    let bus = pci::bus().ok_or(AttachError::Pci(PciError::NotFound))?;
    let msi_ok = pci::msi_vectors().is_some() && !bus.no_msi;
    let req = PlanRequest {
        wanted: 3,
        allow_msix: msi_ok,
        allow_msi: false,
    };
    let plan = InterruptPlan::choose(&bus.ecam, dev.func, req);
    let InterruptKind::MsiX(cap) = plan.kind else {
        return Err(AttachError::NoMsix);
    };
    let lines = setup_msix_lines(dev, cap, plan.vectors, "virtio-net").map_err(AttachError::Pci)?;
    let route = [0u16, 1, 2].map(|s| usize::from(plan.vector_for(s).unwrap_or(0)));
    Ok((lines, route))
}

#[allow(dead_code, reason = "used by the RX path the net task drives next")]
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

    /// The MSI-X table entry this vector uses.
    pub fn entry(&self) -> u16 {
        self.entry
    }

    /// The INTID its interrupts arrive on.
    pub fn intid(&self) -> Option<u32> {
        self.line.as_ref().map(AnyIrqLine::intid)
    }
}

#[allow(dead_code, reason = "`receive` is driven by the net task, next step")]
impl VirtioNic {
    /// The notification the RX interrupt posts to (also used to wake the net task).
    pub fn rx_notify(&self) -> NotifyId {
        self.vectors[self.route[0]].notify
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
    /// line is masked for good and the ring suppressed; `poll_rx` then drains it on a timer.
    pub fn enter_polling_mode(&mut self) {
        let v = self.route[0];
        let (Some(rx), Some(line)) = (self.rx.take(), self.vectors[v].line.take()) else {
            return;
        };
        let masked = line.mask();
        self.rx_polled = Some(rx.suppress_polled(&masked));
        self.vectors[v].line = Some(AnyIrqLine::Masked(masked));
    }

    /// Polling mode: drains up to one budget of frames without waiting.
    pub fn poll_rx(&mut self, deliver: impl FnMut(&[u8])) -> usize {
        match self.rx_polled.as_mut() {
            Some(vq) => self.net.receive(vq, BUDGET, deliver),
            None => 0,
        }
    }

    /// Waits for an RX interrupt and drains the ring with the NAPI protocol, handing each
    /// frame to `deliver`. Returns the frames delivered.
    pub fn receive(
        &mut self,
        deadline_ns: u64,
        mut deliver: impl FnMut(&[u8]),
    ) -> Result<usize, TimedOut> {
        let v = self.route[0];
        sched::notify_wait(self.vectors[v].notify, deadline_ns)?;
        Ok(self.napi_round(&mut deliver))
    }

    /// One NAPI round: take the fired line with the ring, poll within budgets (yielding
    /// between them), re-enable with the recheck, rearm. No-op if the line has not fired.
    fn napi_round(&mut self, deliver: &mut impl FnMut(&[u8])) -> usize {
        let v = self.route[0];
        let Some(rx) = self.rx.take() else { return 0 };
        let Some(line) = self.vectors[v].take_armed() else {
            self.rx = Some(rx);
            return 0;
        };
        let (mut line, mut vq) = match napi::take(line, rx) {
            Ok(pair) => pair,
            Err((line, rx)) => {
                self.vectors[v].put(line);
                self.rx = Some(rx);
                return 0;
            }
        };
        self.net.note_interrupt(drivers::virtio::net::RX_QUEUE);
        let mut delivered = 0;
        let mut count = |f: &[u8]| {
            delivered += 1;
            deliver(f);
        };
        loop {
            match self.net.poll_rx(line, vq, BUDGET, &mut count) {
                PollOutcome::BudgetSpent(l, q) => {
                    (line, vq) = (l, q);
                    sched::yield_now(); // a flood never starves other threads
                }
                PollOutcome::Drained(quiesce) => match self.net.rx_enable_and_recheck(quiesce) {
                    Ok((quiet, armed_vq, draining)) => {
                        self.vectors[v].put(draining.rearm(quiet));
                        self.rx = Some(armed_vq);
                        return delivered;
                    }
                    Err(napi::Raced(l, q)) => (line, vq) = (l, q),
                },
            }
        }
    }
}
