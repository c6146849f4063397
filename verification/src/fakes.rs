//! Minimal no-std fakes for `IrqChip`, `RingMemory`, `DmaHal` and a device.
//!
//! caps' own fakes use `std` (`Arc<Mutex<Vec<u8>>>`, `BTreeMap`), which makes Kani's formulas
//! large and hides the ring memory from loom's scheduler. These fakes keep every shared value
//! in a `caps::sync` atomic, so the same code is a plain sequential model under Kani and
//! proptest, and a loom-instrumented one under `--cfg loom` (each ring access and each GIC
//! operation is then a point where loom may switch threads). They model one INTID and one
//! split virtqueue of `Q` entries without `VIRTIO_F_EVENT_IDX` unless asked.

use alloc::boxed::Box;
use core::cell::Cell;

use caps::dma::{DmaBuffer, DmaHal};
use caps::irq::{ControlClaim, ControlToken, Dispatch, IrqChip, IrqControl, Trigger};
use caps::sync::{AtomicU8, AtomicU32, AtomicU64, Ordering, fence};
use caps::vring::{
    Fence, RingMemory, VRING_AVAIL_F_NO_INTERRUPT, VringLayout, ring_slot, vring_need_event,
};

/// Queue size used by every model (small so Kani terminates).
pub const Q: usize = 4;
/// The one INTID the models use.
pub const INTID: u32 = 32;
/// Largest buffer the fake HAL hands out.
pub const MAX_BUF: usize = 8;

/// `expect` without formatting the error (formatting makes Kani's formulas much larger).
pub trait Must<T> {
    /// The value, or a panic with `msg`.
    fn must(self, msg: &'static str) -> T;
}

impl<T> Must<T> for Option<T> {
    fn must(self, msg: &'static str) -> T {
        match self {
            Some(v) => v,
            None => panic!("{}", msg),
        }
    }
}

impl<T, E> Must<T> for Result<T, E> {
    fn must(self, msg: &'static str) -> T {
        match self {
            Ok(v) => v,
            Err(_) => panic!("{}", msg),
        }
    }
}

/// Leaks `v` to get the `&'static` the kernel would have from a `static`.
pub fn leak<T>(v: T) -> &'static T {
    Box::leak(Box::new(v))
}

const EN: u8 = 1;
const PEND: u8 = 2;

/// A GIC with one INTID: an enable bit and a latched pending bit in one atomic, so raising,
/// unmasking and claiming are single read-modify-writes (totally ordered, as in hardware).
pub struct ModelGic {
    state: AtomicU8,
    eois: AtomicU32,
    claim: ControlClaim,
}

impl Default for ModelGic {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelGic {
    /// Masked, nothing pending.
    pub fn new() -> Self {
        ModelGic {
            state: AtomicU8::new(0),
            eois: AtomicU32::new(0),
            claim: ControlClaim::new(),
        }
    }

    /// The device signals: the edge latches as pending.
    pub fn raise(&self) {
        self.state.fetch_or(PEND, Ordering::SeqCst);
    }

    /// The CPU takes the interrupt if it is pending and enabled: clears pending, returns true.
    ///
    /// One compare-exchange, no retry loop (which Kani would unwind to its bound): from
    /// `EN | PEND` the only changes another thread can make are clearing `EN` (mask) or `PEND`
    /// (another claim), after which the interrupt is not deliverable, so a failed exchange
    /// means "not taken" exactly as if it had run after that change.
    pub fn claim(&self) -> bool {
        let s = self.state.load(Ordering::SeqCst);
        s & (EN | PEND) == EN | PEND
            && self
                .state
                .compare_exchange(s, s & !PEND, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    /// Whether forwarding is disabled.
    pub fn is_masked(&self) -> bool {
        self.state.load(Ordering::SeqCst) & EN == 0
    }

    /// Whether an edge is latched.
    pub fn is_pending(&self) -> bool {
        self.state.load(Ordering::SeqCst) & PEND != 0
    }

    /// EOIs signalled.
    pub fn eois(&self) -> u32 {
        self.eois.load(Ordering::SeqCst)
    }
}

// SAFETY: a model GIC: `mask` clears the enable bit in one atomic step (nothing is forwarded
// after it), `unmask` sets it and leaves a latched edge pending, and the claim is a field.
unsafe impl IrqChip for ModelGic {
    fn control_claim(&self) -> &ControlClaim {
        &self.claim
    }
    fn mask(&self, intid: u32) {
        debug_assert_eq!(intid, INTID);
        self.state.fetch_and(!EN, Ordering::SeqCst);
    }
    fn unmask(&self, intid: u32) {
        debug_assert_eq!(intid, INTID);
        self.state.fetch_or(EN, Ordering::SeqCst);
    }
    fn configure(&self, _: u32, _: Trigger) {}
    fn eoi(&self, _: u32) {
        self.eois.fetch_add(1, Ordering::SeqCst);
    }
}

/// The one `IrqControl` of `gic`, over `[base, base + N)`, leaked.
pub fn control<const N: usize>(gic: &'static ModelGic, base: u32) -> &'static IrqControl<N> {
    let token = ControlToken::take(gic).must("a fresh chip's token");
    leak(IrqControl::new(token, base))
}

/// The model CPU's IRQ mask (PSTATE.I): one flag, since the sequential models (Kani,
/// proptest) run one CPU. A `core` atomic, not a `caps::sync` one: loom atomics cannot live
/// in a `static`, and no loom model reads the flag.
static IRQS_ON: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// The model CPU, for `IrqSafe` and `IrqsMasked` in the models.
#[derive(Debug)]
pub struct ModelCpu;

impl ModelCpu {
    /// Whether IRQs are unmasked.
    pub fn irqs_on() -> bool {
        IRQS_ON.load(core::sync::atomic::Ordering::SeqCst)
    }
    /// Sets the mask directly (a harness's starting state).
    pub fn set_irqs_on(on: bool) {
        IRQS_ON.store(on, core::sync::atomic::Ordering::SeqCst);
    }
}

// SAFETY: the model's IRQ mask is `IRQS_ON`: `save_and_mask` clears it and returns the old
// value, `restore` writes back a value it returned. Interrupts reach the model only through
// `deliver`, which runs with the flag cleared.
unsafe impl caps::lock::IrqMaskOps for ModelCpu {
    type Saved = bool;
    fn save_and_mask() -> bool {
        IRQS_ON.swap(false, core::sync::atomic::Ordering::SeqCst)
    }
    fn restore(saved: bool) {
        IRQS_ON.store(saved, core::sync::atomic::Ordering::SeqCst);
    }
}

/// What the CPU does when an interrupt is pending and enabled: run the real ISR path
/// (`IrqControl::handle_irq`: mask, `Armed -> Fired`, count, EOI) with IRQs masked, as
/// exception entry does. `None` if nothing fired.
pub fn deliver<const N: usize>(
    gic: &ModelGic,
    ctl: &IrqControl<N>,
    cpu: usize,
) -> Option<Dispatch> {
    gic.claim()
        .then(|| caps::lock::with_irqs_masked::<ModelCpu, _>(|m| ctl.handle_irq(INTID, cpu, 0, m)))
}

/// Cells in `ModelRingMem`: one per 2-byte offset of a `Q`-entry ring.
pub const CELLS: usize = match VringLayout::new(Q) {
    Ok(l) => l.total.div_ceil(2),
    Err(_) => panic!("Q is a valid queue size"),
};

/// Ring memory with one atomic cell per naturally aligned offset, room for one ring of up to
/// `Q` entries. Every access to one offset has one width in a split ring (`u64` address,
/// `u32` len/id, `u16` flags/idx), so a cell per offset is exact and each access is one
/// atomic operation.
pub struct ModelRingMem {
    cells: [AtomicU64; CELLS],
}

impl Default for ModelRingMem {
    fn default() -> Self {
        Self::new()
    }
}

impl ModelRingMem {
    /// Zeroed memory.
    #[cfg(not(loom))]
    pub fn new() -> Self {
        ModelRingMem {
            cells: [const { AtomicU64::new(0) }; CELLS],
        }
    }

    /// Zeroed memory (loom atomics are not `const`).
    #[cfg(loom)]
    pub fn new() -> Self {
        ModelRingMem {
            cells: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn load(&self, off: usize) -> u64 {
        self.cells[off / 2].load(Ordering::SeqCst)
    }

    fn store(&self, off: usize, v: u64) {
        self.cells[off / 2].store(v, Ordering::SeqCst);
    }
}

impl RingMemory for &'static ModelRingMem {
    fn paddr(&self) -> u64 {
        0x9000_0000
    }
    fn len(&self) -> usize {
        CELLS * 2
    }
    fn read_u16(&self, off: usize) -> u16 {
        self.load(off) as u16
    }
    fn read_u32(&self, off: usize) -> u32 {
        self.load(off) as u32
    }
    fn write_u16(&self, off: usize, v: u16) {
        self.store(off, v.into());
    }
    fn write_u32(&self, off: usize, v: u32) {
        self.store(off, v.into());
    }
    fn write_u64(&self, off: usize, v: u64) {
        self.store(off, v);
    }
    fn fence(&self, _: Fence) {
        fence(Ordering::SeqCst);
    }
}

/// `u16` cells a `PlainRingMem` needs for a `q`-entry ring.
pub const fn plain_cells(q: usize) -> usize {
    match VringLayout::new(q) {
        Ok(l) => l.total.div_ceil(2),
        Err(_) => panic!("a valid queue size"),
    }
}

/// Ring memory as `N` little-endian `u16` cells, for the sequential models only (Kani and
/// proptest; not loom, where a `u32` access must stay one atomic operation). A symbolic
/// offset costs Kani a choice among `N` cells per access, so the cells are as narrow and as
/// few as a ring of the model's size allows (`plain_cells`).
pub struct PlainRingMem<const N: usize> {
    cells: [Cell<u16>; N],
}

impl<const N: usize> Default for PlainRingMem<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> PlainRingMem<N> {
    /// Zeroed memory.
    pub fn new() -> Self {
        PlainRingMem {
            cells: [const { Cell::new(0) }; N],
        }
    }

    fn cell(&self, off: usize) -> &Cell<u16> {
        &self.cells[off / 2]
    }
}

impl<const N: usize> RingMemory for &'static PlainRingMem<N> {
    fn paddr(&self) -> u64 {
        0x9000_0000
    }
    fn len(&self) -> usize {
        N * 2
    }
    fn read_u16(&self, off: usize) -> u16 {
        self.cell(off).get()
    }
    fn read_u32(&self, off: usize) -> u32 {
        u32::from(self.cell(off).get()) | u32::from(self.cell(off + 2).get()) << 16
    }
    fn write_u16(&self, off: usize, v: u16) {
        self.cell(off).set(v);
    }
    fn write_u32(&self, off: usize, v: u32) {
        self.cell(off).set(v as u16);
        self.cell(off + 2).set((v >> 16) as u16);
    }
    fn write_u64(&self, off: usize, v: u64) {
        self.write_u32(off, v as u32);
        self.write_u32(off + 4, (v >> 32) as u32);
    }
    fn fence(&self, _: Fence) {}
}

/// A DMA buffer of at most `B` bytes, inline (no heap).
#[derive(Debug)]
pub struct ModelBuffer<const B: usize = MAX_BUF> {
    paddr: u64,
    len: usize,
    data: [u8; B],
}

impl<const B: usize> DmaBuffer for ModelBuffer<B> {
    fn paddr(&self) -> u64 {
        self.paddr
    }
    fn len(&self) -> usize {
        self.len
    }
    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }
}

/// A HAL handing out `B`-byte slots (`MAX_BUF` by default) at increasing bus addresses.
pub struct ModelDmaHal<const B: usize = MAX_BUF> {
    next: AtomicU64,
}

impl<const B: usize> core::fmt::Debug for ModelDmaHal<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ModelDmaHal")
    }
}

impl<const B: usize> Default for ModelDmaHal<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize> ModelDmaHal<B> {
    /// First buffer at `0x4000_0000`.
    pub fn new() -> Self {
        ModelDmaHal {
            next: AtomicU64::new(0x4000_0000),
        }
    }
}

// SAFETY: a model: each buffer is an inline array owned by its value, with a made-up address;
// no device reads it except the model device, through the ring, sequentially or under loom.
unsafe impl<const B: usize> DmaHal for ModelDmaHal<B> {
    type Buffer = ModelBuffer<B>;
    fn allocate(
        &self,
        len: usize,
        _align: usize,
        _mask: u64,
    ) -> Result<ModelBuffer<B>, abi::Error> {
        if len > B {
            return Err(abi::Error::ENOMEM);
        }
        let paddr = self.next.fetch_add(B as u64, Ordering::Relaxed);
        Ok(ModelBuffer {
            paddr,
            len,
            data: [0; B],
        })
    }
    fn sync_for_device(&self, _: &ModelBuffer<B>) {}
    fn sync_for_cpu(&self, _: &ModelBuffer<B>) {}
    fn quarantine(&self, _: ModelBuffer<B>) {}
}

/// The device side of a split virtqueue in ring memory `M` (`ModelRingMem` by default).
pub struct ModelDevice<M: RingMemory = &'static ModelRingMem> {
    mem: M,
    layout: VringLayout,
    event_idx: bool,
    last_avail: u16,
    used_idx: u16,
}

impl ModelDevice {
    /// A device over a `Q`-entry ring in `mem`; `event_idx` as negotiated.
    pub fn new(mem: &'static ModelRingMem, event_idx: bool) -> Self {
        Self::with_size(mem, Q, event_idx)
    }
}

impl<M: RingMemory> ModelDevice<M> {
    /// A device over a `size`-entry ring in `mem` (`size` a power of two that fits `mem`).
    pub fn with_size(mem: M, size: usize, event_idx: bool) -> Self {
        let layout = VringLayout::new(size).must("a valid queue size");
        assert!(layout.total <= mem.len(), "the ring fits the memory");
        ModelDevice {
            mem,
            layout,
            event_idx,
            last_avail: 0,
            used_idx: 0,
        }
    }

    /// Takes the next available buffer: `(id, posted len)`.
    pub fn consume(&mut self) -> Option<(u16, u32)> {
        let (m, l) = (&self.mem, self.layout);
        if m.read_u16(l.avail + 2) == self.last_avail {
            return None;
        }
        let id = m.read_u16(l.avail_ring(ring_slot(self.last_avail, l.size)));
        self.last_avail = self.last_avail.wrapping_add(1);
        let len = m.read_u32(l.desc + 16 * usize::from(id) + 8);
        Some((id, len))
    }

    /// Publishes a used element `{id, len}` (any values, hostile included) as a device does:
    /// element, write barrier, used index, full barrier, then reads the driver's suppression
    /// state. Returns whether the device interrupts for it.
    pub fn publish(&mut self, id: u32, len: u32) -> bool {
        let (m, l) = (&self.mem, self.layout);
        let old = self.used_idx;
        let e = l.used_ring(ring_slot(old, l.size));
        m.write_u32(e, id);
        m.write_u32(e + 4, len);
        m.fence(Fence::Write);
        self.used_idx = old.wrapping_add(1);
        m.write_u16(l.used + 2, self.used_idx);
        m.fence(Fence::Full);
        if self.event_idx {
            vring_need_event(m.read_u16(l.used_event()), self.used_idx, old)
        } else {
            m.read_u16(l.avail) & VRING_AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// Moves the used index by `n` without writing elements (hostile).
    pub fn bump_used_idx(&mut self, n: u16) {
        self.used_idx = self.used_idx.wrapping_add(n);
        self.mem.write_u16(self.layout.used + 2, self.used_idx);
    }

    /// The device's used index.
    pub fn used_idx(&self) -> u16 {
        self.used_idx
    }

    /// Whether the driver has `VRING_AVAIL_F_NO_INTERRUPT` set.
    pub fn suppressed_flag(&self) -> bool {
        self.mem.read_u16(self.layout.avail) & VRING_AVAIL_F_NO_INTERRUPT != 0
    }

    /// Sets or clears `VRING_AVAIL_F_NO_INTERRUPT` by hand: what a buggy driver that bypasses
    /// `Quiesce::enable_and_recheck` does (used only by the deliberately broken models).
    pub fn driver_writes_flag(&self, suppress: bool) {
        let v = if suppress {
            VRING_AVAIL_F_NO_INTERRUPT
        } else {
            0
        };
        self.mem.write_u16(self.layout.avail, v);
        self.mem.fence(Fence::Full);
    }
}

/// One interrupt controller, one line's worth of control, ring memory and a DMA pool: the
/// platform a model runs on, all leaked to `'static` as the kernel's statics would be.
pub struct Rig {
    /// The chip.
    pub gic: &'static ModelGic,
    /// The real `IrqControl` over `INTID`.
    pub ctl: &'static IrqControl<1>,
    /// Shared ring memory.
    pub mem: &'static ModelRingMem,
    /// The real `DmaPool` over the fake HAL.
    pub pool: caps::dma::DmaPool<ModelDmaHal>,
}

impl Rig {
    /// A fresh platform.
    pub fn new() -> Self {
        let gic = leak(ModelGic::new());
        Rig {
            gic,
            ctl: control(gic, INTID),
            mem: leak(ModelRingMem::new()),
            pool: caps::dma::DmaPool::new(leak(ModelDmaHal::new()), u64::MAX),
        }
    }
}

impl Default for Rig {
    fn default() -> Self {
        Self::new()
    }
}
