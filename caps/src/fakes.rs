//! Host fakes for the platform traits: GIC, CPU IRQ mask, DMA, a virtio device.
//!
//! The capability protocol is only worth testing against devices that misbehave, so these
//! fakes record every chip operation, latch edges like a real GIC, and include a virtqueue
//! device that can publish hostile used elements. Built for `cfg(test)` and the `fakes`
//! feature (used by `verification/`); they use `std`.

use std::boxed::Box;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use abi::Error;

use crate::dma::{DmaBuffer, DmaHal};
#[cfg(test)]
use crate::dma::{DmaDevice, DmaIdle};
use crate::irq::{ControlClaim, ControlToken, Dispatch, IrqChip, IrqControl, Trigger};
use crate::lock::IrqMaskOps;
use crate::vring::{Fence, RingMemory, VRING_AVAIL_F_NO_INTERRUPT, VringLayout, vring_need_event};

/// Leaks `v` to get the `&'static` the kernel would have from a `static`.
pub fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

/// A fresh fake GIC and its one `IrqControl` over `[base, base + N)`, both leaked.
pub fn fake_control<const N: usize>(base: u32) -> (&'static FakeGic, &'static IrqControl<N>) {
    let gic = leak(FakeGic::new());
    let token = ControlToken::take(gic).expect("a fresh chip's token");
    (gic, leak(IrqControl::new(token, base)))
}

/// One recorded chip operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GicEvent {
    /// `mask(intid)`.
    Mask(u32),
    /// `unmask(intid)`.
    Unmask(u32),
    /// `configure(intid, trigger)`.
    Configure(u32, Trigger),
    /// `eoi(intid)`.
    Eoi(u32),
}

#[derive(Default)]
struct GicState {
    events: Vec<GicEvent>,
    enabled: BTreeMap<u32, bool>,
    pending: BTreeMap<u32, bool>,
}

/// A GIC that records operations and latches raised interrupts until they are unmasked.
#[derive(Default)]
pub struct FakeGic {
    state: Mutex<GicState>,
    claim: ControlClaim,
}

impl FakeGic {
    /// A GIC with every INTID masked and nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every operation so far.
    pub fn events(&self) -> Vec<GicEvent> {
        self.state.lock().unwrap().events.clone()
    }

    /// Whether `intid` is masked (never unmasked counts as masked).
    pub fn is_masked(&self, intid: u32) -> bool {
        !self
            .state
            .lock()
            .unwrap()
            .enabled
            .get(&intid)
            .copied()
            .unwrap_or(false)
    }

    /// EOIs signalled for `intid`.
    pub fn eoi_count(&self, intid: u32) -> usize {
        self.events()
            .iter()
            .filter(|e| **e == GicEvent::Eoi(intid))
            .count()
    }

    /// The device signals `intid`: it becomes pending (an edge latches).
    pub fn raise(&self, intid: u32) {
        self.state.lock().unwrap().pending.insert(intid, true);
    }

    /// Whether `intid` is pending.
    pub fn is_pending(&self, intid: u32) -> bool {
        self.state
            .lock()
            .unwrap()
            .pending
            .get(&intid)
            .copied()
            .unwrap_or(false)
    }

    /// Delivers every pending, unmasked interrupt to `ctl.handle_irq` (as the CPU would take
    /// them), returning the dispatches.
    pub fn deliver<const N: usize>(
        &self,
        ctl: &IrqControl<N>,
        cpu: usize,
        now: u64,
    ) -> Vec<Dispatch> {
        let ready: Vec<u32> = {
            let mut s = self.state.lock().unwrap();
            let ids: Vec<u32> = s
                .pending
                .iter()
                .filter(|(id, p)| **p && s.enabled.get(id).copied().unwrap_or(false))
                .map(|(id, _)| *id)
                .collect();
            for id in &ids {
                s.pending.insert(*id, false);
            }
            ids
        };
        // The CPU takes each interrupt with IRQs masked, as exception entry does.
        crate::lock::with_irqs_masked::<FakeCpu, _>(|masked| {
            ready
                .into_iter()
                .map(|id| ctl.handle_irq(id, cpu, now, masked))
                .collect()
        })
    }
}

// SAFETY: a host model of a GIC: `mask` takes effect at once (under its lock), `unmask`
// keeps a latched edge pending (`deliver` then takes it), and the claim is a field.
#[allow(unsafe_code, reason = "the host fake implements the unsafe trait")]
unsafe impl IrqChip for FakeGic {
    fn control_claim(&self) -> &ControlClaim {
        &self.claim
    }
    fn mask(&self, intid: u32) {
        let mut s = self.state.lock().unwrap();
        s.events.push(GicEvent::Mask(intid));
        s.enabled.insert(intid, false);
    }
    fn unmask(&self, intid: u32) {
        let mut s = self.state.lock().unwrap();
        s.events.push(GicEvent::Unmask(intid));
        s.enabled.insert(intid, true);
    }
    fn configure(&self, intid: u32, trigger: Trigger) {
        self.state
            .lock()
            .unwrap()
            .events
            .push(GicEvent::Configure(intid, trigger));
    }
    fn eoi(&self, intid: u32) {
        self.state.lock().unwrap().events.push(GicEvent::Eoi(intid));
    }
}

/// A line on a fresh fake GIC that has fired and been taken: `Draining`, for tests of a
/// device's quiet check (`caps::quiet::quiesce`).
pub fn fired_line(
    intid: u32,
    trigger: Trigger,
) -> (&'static FakeGic, crate::irq::IrqLine<crate::irq::Draining>) {
    let (gic, ctl) = fake_control::<1>(intid);
    let line = ctl
        .mint(intid, trigger, crate::irq::Owner(1))
        .expect("fresh control")
        .arm();
    gic.raise(intid);
    let _ = gic.deliver(ctl, 0, 0);
    (gic, line.try_take().expect("delivered"))
}

std::thread_local! {
    static IRQS_ENABLED: Cell<bool> = const { Cell::new(true) };
    static ON_RESTORE: Cell<Option<fn()>> = const { Cell::new(None) };
}

/// A CPU whose DAIF.I bit is a thread-local flag (each test thread is its own CPU).
#[derive(Debug)]
pub struct FakeCpu;

impl FakeCpu {
    /// Whether IRQs are unmasked on this (fake) CPU.
    pub fn irqs_enabled() -> bool {
        IRQS_ENABLED.with(Cell::get)
    }
    /// Sets the IRQ mask directly.
    pub fn set_irqs_enabled(on: bool) {
        IRQS_ENABLED.with(|c| c.set(on));
    }
    /// Runs `f` at the start of every `restore` (to observe ordering).
    pub fn on_restore(f: fn()) {
        ON_RESTORE.with(|c| c.set(Some(f)));
    }
    /// Removes the `on_restore` hook.
    pub fn clear_on_restore() {
        ON_RESTORE.with(|c| c.set(None));
    }
}

// SAFETY: the fake CPU's IRQ mask is the thread-local flag: `save_and_mask` clears it (IRQs
// masked) and returns the old value, `restore` puts it back. Each test thread is one CPU.
#[allow(unsafe_code, reason = "the host fake implements the unsafe trait")]
unsafe impl IrqMaskOps for FakeCpu {
    type Saved = bool;
    fn save_and_mask() -> bool {
        IRQS_ENABLED.with(|c| c.replace(false))
    }
    fn restore(saved: bool) {
        if let Some(f) = ON_RESTORE.with(Cell::get) {
            f();
        }
        IRQS_ENABLED.with(|c| c.set(saved));
    }
}

/// A `Vec`-backed DMA buffer with a made-up bus address.
#[derive(Debug)]
pub struct FakeBuffer {
    paddr: u64,
    data: Vec<u8>,
}

impl FakeBuffer {
    /// `len` zeroed bytes at bus address `paddr`.
    pub fn new(paddr: u64, len: usize) -> Self {
        FakeBuffer {
            paddr,
            data: std::vec![0; len],
        }
    }
}

impl DmaBuffer for FakeBuffer {
    fn paddr(&self) -> u64 {
        self.paddr
    }
    fn len(&self) -> usize {
        self.data.len()
    }
    fn bytes(&self) -> &[u8] {
        &self.data
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

/// A DMA HAL handing out buffers at increasing bus addresses from `base`, counting fences
/// and quarantines.
#[derive(Debug)]
pub struct FakeDmaHal {
    next: Mutex<u64>,
    ignore_mask: Mutex<bool>,
    truncate: Mutex<Option<usize>>,
    to_device: Mutex<usize>,
    from_device: Mutex<usize>,
    quarantined: Mutex<Vec<FakeBuffer>>,
}

impl FakeDmaHal {
    /// A HAL whose first buffer is at bus address `base`.
    pub fn new(base: u64) -> Self {
        FakeDmaHal {
            next: Mutex::new(base),
            ignore_mask: Mutex::new(false),
            truncate: Mutex::new(None),
            to_device: Mutex::new(0),
            from_device: Mutex::new(0),
            quarantined: Mutex::new(Vec::new()),
        }
    }
    /// Makes the HAL ignore the DMA mask (a buggy platform), to test that pools catch it.
    pub fn set_ignore_mask(&self, on: bool) {
        *self.ignore_mask.lock().unwrap() = on;
    }
    /// Makes the HAL return buffers of at most `len` bytes (a buggy platform; 0 included).
    pub fn set_truncate(&self, len: Option<usize>) {
        *self.truncate.lock().unwrap() = len;
    }
    /// `to_device` calls so far.
    pub fn to_device_count(&self) -> usize {
        *self.to_device.lock().unwrap()
    }
    /// `from_device` calls so far.
    pub fn from_device_count(&self) -> usize {
        *self.from_device.lock().unwrap()
    }
    /// Buffers quarantined so far.
    pub fn quarantined(&self) -> usize {
        self.quarantined.lock().unwrap().len()
    }
}

// SAFETY: host memory: each buffer is its own `Vec`, its made-up bus address unique (bumped),
// and nothing here has a cache to maintain or a device that could still write.
#[allow(unsafe_code, reason = "the host fake implements the unsafe trait")]
unsafe impl DmaHal for FakeDmaHal {
    type Buffer = FakeBuffer;
    fn allocate(&self, len: usize, align: usize, mask: u64) -> Result<FakeBuffer, Error> {
        let mut next = self.next.lock().unwrap();
        let paddr = next.next_multiple_of(align as u64);
        let last = paddr.checked_add(len as u64 - 1).ok_or(Error::ENOMEM)?;
        if last > mask && !*self.ignore_mask.lock().unwrap() {
            return Err(Error::ERANGE);
        }
        *next = last + 1;
        let len = self.truncate.lock().unwrap().map_or(len, |t| t.min(len));
        Ok(FakeBuffer::new(paddr, len))
    }
    fn sync_for_device(&self, _: &FakeBuffer) {
        *self.to_device.lock().unwrap() += 1;
    }
    fn sync_for_cpu(&self, _: &FakeBuffer) {
        *self.from_device.lock().unwrap() += 1;
    }
    fn quarantine(&self, buf: FakeBuffer) {
        self.quarantined.lock().unwrap().push(buf);
    }
}

/// A device that does DMA: a busy flag its driver's `DmaIdle` check reads, counting reads.
/// Unit tests only (not the `fakes` feature): the compile-fail tests' expected errors list
/// the implementations of `DmaIdle` in scope, which must not depend on features.
#[cfg(test)]
#[derive(Debug)]
pub struct FakeDmaEngine {
    device: DmaDevice,
    busy: Cell<bool>,
    reads: Cell<usize>,
}

#[cfg(test)]
impl FakeDmaEngine {
    /// An idle engine with a fresh identity.
    pub fn new() -> Self {
        FakeDmaEngine {
            device: DmaDevice::new(),
            busy: Cell::new(false),
            reads: Cell::new(0),
        }
    }
    /// Its identity (what rings and lent regions record).
    pub fn device(&self) -> &DmaDevice {
        &self.device
    }
    /// Starts or ends "DMA in progress".
    pub fn set_busy(&self, busy: bool) {
        self.busy.set(busy);
    }
    /// `dma_idle` reads so far.
    pub fn reads(&self) -> usize {
        self.reads.get()
    }
}

#[cfg(test)]
impl Default for FakeDmaEngine {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: a fake device: `dma_idle` reads its busy flag, the whole of its DMA state.
#[cfg(test)]
#[allow(unsafe_code, reason = "the host fake implements the unsafe trait")]
unsafe impl DmaIdle for FakeDmaEngine {
    fn dma_device(&self) -> &DmaDevice {
        &self.device
    }
    fn dma_idle(&self, _: &crate::quiet::Seal) -> bool {
        self.reads.set(self.reads.get() + 1);
        !self.busy.get()
    }
}

/// Ring memory shared between a `Vring` and a `FakeVirtqueueDevice` (clone to share).
#[derive(Clone, Debug)]
pub struct FakeRingMem {
    paddr: u64,
    bytes: Arc<Mutex<Vec<u8>>>,
    fences: Arc<Mutex<usize>>,
    stopped: Arc<Mutex<bool>>,
}

impl FakeRingMem {
    /// `len` zeroed bytes at bus address `paddr`.
    pub fn new(len: usize, paddr: u64) -> Self {
        FakeRingMem {
            paddr,
            bytes: Arc::new(Mutex::new(std::vec![0; len])),
            fences: Arc::new(Mutex::new(0)),
            stopped: Arc::new(Mutex::new(false)),
        }
    }
    /// Fences issued so far.
    pub fn fences(&self) -> usize {
        *self.fences.lock().unwrap()
    }
    /// Whether `RingMemory::device_stopped` was called (by `Vring::release`).
    pub fn device_stopped_seen(&self) -> bool {
        *self.stopped.lock().unwrap()
    }
    fn read<const W: usize>(&self, off: usize) -> [u8; W] {
        self.bytes.lock().unwrap()[off..off + W].try_into().unwrap()
    }
    fn write(&self, off: usize, v: &[u8]) {
        self.bytes.lock().unwrap()[off..off + v.len()].copy_from_slice(v);
    }
}

impl RingMemory for FakeRingMem {
    fn device_stopped(&mut self, _done: &crate::dma::TransferDone) {
        *self.stopped.lock().unwrap() = true;
    }
    fn paddr(&self) -> u64 {
        self.paddr
    }
    fn len(&self) -> usize {
        self.bytes.lock().unwrap().len()
    }
    fn read_u16(&self, off: usize) -> u16 {
        u16::from_le_bytes(self.read(off))
    }
    fn read_u32(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.read(off))
    }
    fn write_u16(&self, off: usize, v: u16) {
        self.write(off, &v.to_le_bytes());
    }
    fn write_u32(&self, off: usize, v: u32) {
        self.write(off, &v.to_le_bytes());
    }
    fn write_u64(&self, off: usize, v: u64) {
        self.write(off, &v.to_le_bytes());
    }
    fn fence(&self, _: Fence) {
        *self.fences.lock().unwrap() += 1;
    }
}

/// The device side of a split virtqueue: consumes avail entries, publishes used elements
/// (honest or hostile) and decides whether it would interrupt.
#[derive(Debug)]
pub struct FakeVirtqueueDevice {
    mem: FakeRingMem,
    layout: VringLayout,
    event_idx: bool,
    last_avail: u16,
    used_idx: u16,
    /// Used index at the last interrupt decision (for event-index suppression).
    signalled_at: u16,
    taken: Vec<(u16, u32)>,
}

impl FakeVirtqueueDevice {
    /// A device over `mem` with `layout`; `event_idx` as negotiated.
    pub fn new(mem: FakeRingMem, layout: VringLayout, event_idx: bool) -> Self {
        FakeVirtqueueDevice {
            mem,
            layout,
            event_idx,
            last_avail: 0,
            used_idx: 0,
            signalled_at: 0,
            taken: Vec::new(),
        }
    }

    /// Takes the next available buffer: `(id, addr, len, flags)` from its descriptor.
    pub fn consume(&mut self) -> Option<(u16, u64, u32, u16)> {
        let (m, l) = (&self.mem, &self.layout);
        if m.read_u16(l.avail + 2) == self.last_avail {
            return None;
        }
        let id = m.read_u16(l.avail_ring(crate::vring::ring_slot(self.last_avail, l.size)));
        self.last_avail = self.last_avail.wrapping_add(1);
        let d = l.desc + 16 * usize::from(id);
        let addr = u64::from_le_bytes(m.read(d));
        let (len, flags) = (m.read_u32(d + 8), m.read_u16(d + 12));
        self.taken.push((id, len));
        Some((id, addr, len, flags))
    }

    /// Publishes a used element `{id, len}` and bumps the used index (any values: hostile
    /// ones included).
    pub fn publish_raw(&mut self, id: u32, len: u32) {
        let e = self
            .layout
            .used_ring(crate::vring::ring_slot(self.used_idx, self.layout.size));
        self.mem.write_u32(e, id);
        self.mem.write_u32(e + 4, len);
        self.used_idx = self.used_idx.wrapping_add(1);
        self.mem.write_u16(self.layout.used + 2, self.used_idx);
    }

    /// Completes a buffer honestly.
    pub fn complete(&mut self, id: u32, len: u32) {
        self.taken.retain(|(t, _)| u32::from(*t) != id);
        self.publish_raw(id, len);
    }

    /// Consumes one available buffer and completes it with `min(len, posted)`; false if none.
    pub fn service_one(&mut self, len: u32) -> bool {
        match self.consume() {
            Some((id, _, posted, _)) => {
                self.complete(u32::from(id), len.min(posted));
                true
            }
            None => false,
        }
    }

    /// Services every available buffer; returns how many.
    pub fn service_all(&mut self, len: u32) -> usize {
        core::iter::from_fn(|| self.service_one(len).then_some(())).count()
    }

    /// Moves the used index by `n` without writing elements (hostile).
    pub fn bump_used_idx(&mut self, n: u16) {
        self.used_idx = self.used_idx.wrapping_add(n);
        self.mem.write_u16(self.layout.used + 2, self.used_idx);
    }

    /// Whether the device would interrupt now for the completions published since its last
    /// interrupt (virtio 1.2 §2.7.7 / §2.7.10). Records the decision point.
    pub fn wants_interrupt(&mut self) -> bool {
        let (old, new) = (self.signalled_at, self.used_idx);
        let want = if self.event_idx {
            let ev = self.mem.read_u16(self.layout.used_event());
            old == new || vring_need_event(ev, new, old)
        } else {
            self.mem.read_u16(self.layout.avail) & VRING_AVAIL_F_NO_INTERRUPT == 0
        };
        if want {
            self.signalled_at = new;
        }
        want
    }

    /// The driver's `used_event` field.
    pub fn used_event(&self) -> u16 {
        self.mem.read_u16(self.layout.used_event())
    }

    /// Sets the device's `avail_event` field.
    pub fn set_avail_event(&mut self, v: u16) {
        self.mem.write_u16(self.layout.avail_event(), v);
    }

    /// Sets or clears `VRING_USED_F_NO_NOTIFY`.
    pub fn set_no_notify(&mut self, on: bool) {
        self.mem.write_u16(self.layout.used, u16::from(on));
    }

    /// Buffers consumed and not yet completed: `(id, posted len)`.
    pub fn outstanding(&self) -> &[(u16, u32)] {
        &self.taken
    }
}
