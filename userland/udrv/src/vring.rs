//! `Vring<S>` and `Napi`: a user driver's split virtqueue, and the ring bound to its line.
//!
//! A split virtqueue (virtio 1.2 §2.7) is memory the device reads and writes while the
//! driver does; everything the device writes is untrusted. The format — layout, the
//! wrap-around index arithmetic, the checks of a used index and a used element — is the
//! kernel's, reused from `caps::vring` (proved there with Kani); this file is the user-side
//! capability around it, the twin of `caps::Vring` over `udrv`'s types:
//!
//! - The ring memory is one [`DmaRegion`], lent to the device for the ring's life and
//!   reached only through volatile accesses ([`RingMem`]).
//! - A buffer is a `DmaRegion<Cpu>`; [`Vring::post`] lends it to the device and keeps it in
//!   the ring's in-flight table; it comes back as a `DmaRegion<Cpu>` only in a
//!   [`Completion`] whose used element passed every check, or in a [`Rejected`] whose `len`
//!   alone was wrong. A used index more than the queue size ahead marks the ring broken
//!   (reset the device); an id out of range or not in flight is counted and skipped.
//! - `S` says whether the device may interrupt: [`Armed`], [`Suppressed`] (inside a NAPI
//!   round) or [`Polled`] (for good: a TX ring reclaimed before each send). `pop_used`
//!   exists only on the last two.
//! - [`Napi`] owns an interrupt line and the ring that signals on it, armed, from bring-up
//!   on; [`Napi::wait`] takes both into a [`Round`] (line `Draining`, ring suppressed);
//!   [`Round::finish`] re-enables the ring's interrupts, fences and rechecks the used index
//!   through [`quiesce`] (Linux `virtqueue_enable_cb`), and re-arms the line only with the
//!   proof that read minted. The line and ring never come apart, so no ring is drained under
//!   another line and no proof from elsewhere re-arms this one.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::marker::PhantomData;

use abi::Error;
use caps::vring::{
    Fence, RingMemory, UsedError, VIRTQ_DESC_F_WRITE, VRING_AVAIL_F_NO_INTERRUPT,
    VRING_USED_F_NO_NOTIFY, VringLayout, check_used_elem, check_used_idx, ring_slot,
    vring_need_event,
};

use crate::dma::{Cpu, Device as Lent, DmaDir, DmaRegion};
use crate::irq::{Armed, Draining, Fired, IrqLine, Masked};
use crate::mmio::SharedMem;
use crate::pool::{LentSlice, Slice};
use crate::sealed::Sealed;
use crate::{DevSys, DeviceId, QuietCheck, Seal, quiesce};

/// Ring interrupt state. Sealed.
pub trait RingState: Sealed {}
/// Device interrupts suppressed for one NAPI round: exists only inside a [`Round`], beside
/// its `Draining` line.
#[derive(Debug)]
pub struct Suppressed;
/// Device interrupts off for good: the ring is drained by polling (a TX ring reclaimed
/// before each send). Never armed again.
#[derive(Debug)]
pub struct Polled;
impl Sealed for Suppressed {}
impl Sealed for Polled {}
impl RingState for Suppressed {}
impl RingState for Polled {}
/// Device interrupts on (the line's `Armed` marker).
impl RingState for Armed {}

/// The states whose used ring may be drained: device interrupts are off, so nothing
/// popped here races an interrupt the driver also handles. Sealed.
pub trait Drainable: RingState {}
impl Drainable for Suppressed {}
impl Drainable for Polled {}

/// Which way the device uses a posted buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufDir {
    /// The device reads it (TX).
    DeviceReads,
    /// The device writes it (RX).
    DeviceWrites,
}

/// A ring's memory: a DMA region lent to the device for good, reached through volatile
/// accesses (`caps::vring::RingMemory`, so the layout code is the kernel's).
pub struct RingMem<B: DevSys> {
    region: DmaRegion<Lent, B>,
    view: SharedMem,
}

impl<B: DevSys> RingMemory for RingMem<B> {
    fn paddr(&self) -> u64 {
        self.region.bus_addr()
    }
    fn len(&self) -> usize {
        self.view.len()
    }
    fn read_u16(&self, off: usize) -> u16 {
        self.view.read16(off)
    }
    fn read_u32(&self, off: usize) -> u32 {
        self.view.read32(off)
    }
    fn write_u16(&self, off: usize, v: u16) {
        self.view.write16(off, v)
    }
    fn write_u32(&self, off: usize, v: u32) {
        self.view.write32(off, v)
    }
    fn write_u64(&self, off: usize, v: u64) {
        self.view.write64(off, v)
    }
    /// Every kind is the backend's full barrier (`dsb sy`): the only one a user process
    /// has that orders against the device.
    fn fence(&self, _kind: Fence) {
        self.region.sys().fence();
    }
}

/// What a ring posts: a whole [`DmaRegion`] in CPU hands, or a pool [`Slice`]. Sealed:
/// the ring's side of the handover (lend, give back) is private to this crate.
pub trait Buffer: lend::Lendable {
    /// The buffer's bytes (it is in CPU hands).
    fn bytes(&self) -> &[u8];
}

mod lend {
    use crate::{DeviceId, DmaDir};

    /// A buffer's handover to a ring: what the descriptor needs, the byteless handle the
    /// ring keeps while the device owns it, and the way back, which only the ring takes
    /// (after a validated used element).
    pub trait Lendable: Sized {
        /// The buffer while the device holds it: no bytes.
        type Lent;
        fn bus_addr(&self) -> u64;
        fn buf_len(&self) -> usize;
        fn buf_dir(&self) -> DmaDir;
        fn buf_device(&self) -> DeviceId;
        fn lend_to_ring(self) -> Self::Lent;
        fn completed(lent: Self::Lent) -> Self;
    }
}

impl<B: DevSys> lend::Lendable for DmaRegion<Cpu, B> {
    type Lent = DmaRegion<Lent, B>;
    fn bus_addr(&self) -> u64 {
        DmaRegion::bus_addr(self)
    }
    fn buf_len(&self) -> usize {
        self.len()
    }
    fn buf_dir(&self) -> DmaDir {
        self.dir()
    }
    fn buf_device(&self) -> DeviceId {
        self.device()
    }
    /// `lend` fences: the buffer's bytes are in memory before the descriptor is published.
    fn lend_to_ring(self) -> Self::Lent {
        self.lend()
    }
    fn completed(lent: Self::Lent) -> Self {
        lent.completed()
    }
}

impl<B: DevSys> Buffer for DmaRegion<Cpu, B> {
    fn bytes(&self) -> &[u8] {
        DmaRegion::bytes(self)
    }
}

impl<B: DevSys> lend::Lendable for Slice<B> {
    type Lent = LentSlice<B>;
    fn bus_addr(&self) -> u64 {
        Slice::bus_addr(self)
    }
    fn buf_len(&self) -> usize {
        self.len()
    }
    fn buf_dir(&self) -> DmaDir {
        self.dir()
    }
    fn buf_device(&self) -> DeviceId {
        self.device()
    }
    /// No fence: `post` fences before it publishes the available index.
    fn lend_to_ring(self) -> Self::Lent {
        self.lend()
    }
    fn completed(lent: Self::Lent) -> Self {
        lent.completed()
    }
}

impl<B: DevSys> Buffer for Slice<B> {
    fn bytes(&self) -> &[u8] {
        Slice::bytes(self)
    }
}

struct InFlight<L> {
    len: u32,
    buf: L,
}

/// A buffer the device returned, validated: `len` is at most what was posted.
#[derive(Debug)]
pub struct Completion<T> {
    /// The buffer, back in CPU hands.
    pub buf: T,
    /// Bytes the device wrote (what it reported; 0 is usual for device-read buffers).
    pub len: u32,
}

impl<T: Buffer> Completion<T> {
    /// The bytes the device wrote.
    pub fn data(&self) -> &[u8] {
        let b = self.buf.bytes();
        &b[..(self.len as usize).min(b.len())]
    }
}

/// A used element that failed validation (already counted by the ring). If only its `len`
/// was wrong, the buffer is back, unread, in `reclaimed`.
#[derive(Debug)]
pub struct Rejected<T> {
    /// What was wrong.
    pub error: UsedError,
    /// The buffer, if the id named one in flight.
    pub reclaimed: Option<T>,
}

/// What [`Vring::pop_used`] hands back.
pub type Used<T> = Result<Completion<T>, Rejected<T>>;

/// The bytes a ring of `size` entries needs (descriptor table, avail and used rings with
/// their event words), or `None` if `size` is not a queue size.
pub fn ring_bytes(size: usize) -> Option<usize> {
    VringLayout::new(size).ok().map(|l| l.total)
}

/// One split virtqueue of at most `Q` entries in interrupt state `S`, over backend `B`,
/// whose buffers are `T`: whole regions (the default) or pool [`Slice`]s.
///
/// Single-descriptor buffers. Not `Clone`. Dropping it drops the ring memory and every
/// in-flight buffer (their capabilities: the kernel decides when the memory is free).
#[must_use = "dropping a ring drops its memory and in-flight buffers"]
pub struct Vring<S: RingState, B: DevSys, const Q: usize, T: Buffer = DmaRegion<Cpu, B>> {
    core: Core<B, Q, T>,
    _state: PhantomData<S>,
}

struct Core<B: DevSys, const Q: usize, T: Buffer> {
    mem: RingMem<B>,
    layout: VringLayout,
    event_idx: bool,
    avail_idx: u16,
    kicked_at: u16,
    last_used: u16,
    broken: bool,
    device: DeviceId,
    rejected: u64,
    in_flight: Box<[Option<InFlight<T::Lent>>]>,
    free: Box<[u16]>,
    nfree: usize,
}

impl<B: DevSys, const Q: usize, T: Buffer> Vring<Armed, B, Q, T> {
    /// An empty queue of `Q` entries in `mem` (a bidirectional region of at least the
    /// layout's size, 16-byte aligned on the bus), device interrupts on. `event_idx`:
    /// whether `VIRTIO_F_EVENT_IDX` was negotiated. `EINVAL` (and the region back) if `Q`
    /// is not a queue size or the region does not fit.
    pub fn new(
        mem: DmaRegion<Cpu, B>,
        event_idx: bool,
    ) -> Result<Self, (DmaRegion<Cpu, B>, Error)> {
        Self::with_size(mem, event_idx, Q)
    }

    /// As [`Vring::new`], for a queue of `size` entries, at most `Q` (a device whose queue
    /// is smaller than the driver's most). `EINVAL` if `size` is not a queue size or is
    /// over `Q`. The in-flight table is on the heap: moving the ring between states copies
    /// a few words, whatever its size.
    pub fn with_size(
        mut mem: DmaRegion<Cpu, B>,
        event_idx: bool,
        size: usize,
    ) -> Result<Self, (DmaRegion<Cpu, B>, Error)> {
        let layout = match VringLayout::new(size) {
            Ok(l) if size <= Q => l,
            _ => return Err((mem, Error::EINVAL)),
        };
        if mem.len() < layout.total
            || !mem.bus_addr().is_multiple_of(16)
            || mem.dir() != DmaDir::Bidirectional
        {
            return Err((mem, Error::EINVAL));
        }
        mem.bytes_mut().fill(0);
        let device = mem.device();
        let region = mem.lend();
        let view = region.shared();
        let core = Core {
            mem: RingMem { region, view },
            layout,
            event_idx,
            avail_idx: 0,
            kicked_at: 0,
            last_used: 0,
            broken: false,
            device,
            rejected: 0,
            in_flight: (0..size)
                .map(|_| None)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
            free: (0..size).rev().map(|i| i as u16).collect(),
            nfree: size,
        };
        Ok(Vring {
            core,
            _state: PhantomData,
        })
    }

    /// Device interrupts off for good: drained by polling only (`pop_used` on
    /// `Vring<Polled>`). For a ring no line waits on.
    pub fn into_polled(self) -> Vring<Polled, B, Q, T> {
        self.suppress().retype()
    }

    /// `Armed` -> `Suppressed`: `VRING_AVAIL_F_NO_INTERRUPT`, or with event index
    /// `used_event` parked one behind what the driver consumed (virtio 1.2 §2.7.10;
    /// `Core::park_used_event`).
    pub(crate) fn suppress(self) -> Vring<Suppressed, B, Q, T> {
        self.core.suppress();
        self.retype()
    }
}

impl<S: Drainable, B: DevSys, const Q: usize, T: Buffer> Vring<S, B, Q, T> {
    /// Pops one used element: `None` when nothing is pending (or the ring is broken),
    /// otherwise a validated completion or a rejection (counted in [`Vring::rejected`]).
    pub fn pop_used(&mut self) -> Option<Used<T>> {
        let popped = self.core.pop_used();
        if popped.is_some() && self.core.event_idx {
            self.core.park_used_event();
        }
        popped
    }
}

impl<S: RingState, B: DevSys, const Q: usize, T: Buffer> Vring<S, B, Q, T> {
    fn retype<N: RingState>(self) -> Vring<N, B, Q, T> {
        Vring {
            core: self.core,
            _state: PhantomData,
        }
    }

    /// Posts the first `len` bytes of `buf` (the whole of an RX buffer, a frame's length
    /// of a TX one); the buffer goes to the device. Returns the descriptor id. Refused, with
    /// the buffer back untouched: `ENOSPC` queue full, `EBADSTATE` ring broken, `EINVAL`
    /// `len` 0 or past the buffer, a buffer of another device, or one whose direction does
    /// not allow `dir`.
    pub fn post(&mut self, buf: T, len: usize, dir: BufDir) -> Result<u16, (T, Error)> {
        self.core.post(buf, len, dir)
    }

    /// Linux `virtqueue_kick_prepare`: whether the device must be notified of the buffers
    /// posted since the last call.
    pub fn kick_needed(&mut self) -> bool {
        self.core.kick_needed()
    }

    /// Whether the device published completions not yet popped.
    pub fn has_pending(&self) -> bool {
        self.core.has_pending()
    }

    /// Descriptors posted and not yet completed.
    pub fn in_flight(&self) -> usize {
        usize::from(self.core.layout.size) - self.core.nfree
    }

    /// Used elements refused so far (hostile or broken device values).
    pub fn rejected(&self) -> u64 {
        self.core.rejected
    }

    /// Whether the device ran the used index too far ahead (reset the device).
    pub fn is_broken(&self) -> bool {
        self.core.broken
    }

    /// The device the ring's memory belongs to.
    pub fn device(&self) -> DeviceId {
        self.core.device
    }

    /// Bus addresses of (descriptor table, avail ring, used ring), for the transport.
    pub fn addresses(&self) -> (u64, u64, u64) {
        let (base, l) = (self.core.mem.paddr(), &self.core.layout);
        (
            base + l.desc as u64,
            base + l.avail as u64,
            base + l.used as u64,
        )
    }

    /// The queue size.
    pub fn size(&self) -> u16 {
        self.core.layout.size
    }
}

impl<B: DevSys, const Q: usize, T: Buffer> Core<B, Q, T> {
    fn suppress(&self) {
        if self.event_idx {
            self.park_used_event();
        } else {
            self.mem
                .write_u16(self.layout.avail, VRING_AVAIL_F_NO_INTERRUPT);
        }
        self.mem.fence(Fence::Write);
    }

    /// With event index, interrupts stay off only while `used_event` is outside the range
    /// of indices the device's next write covers (virtio 1.2 §2.7.10). One left where the
    /// last re-enable put it would be crossed again 65 536 completions later (or at once,
    /// on a ring never armed: it starts at 0), a stray interrupt each time; one behind
    /// `last_used` it never is (the device's index is at least `last_used` and at most a
    /// queue ahead). Kept there after every pop of a suppressed or polled ring, as
    /// `caps::vring` does for the kernel's rings.
    fn park_used_event(&self) {
        self.mem
            .write_u16(self.layout.used_event(), self.last_used.wrapping_sub(1));
    }

    /// Linux `virtqueue_enable_cb` without its recheck (the quiet check does that): an
    /// interrupt for the used element at index `mark` (the first not yet accounted for)
    /// and later ones.
    fn enable(&self, mark: u16) {
        if self.event_idx {
            self.mem.write_u16(self.layout.used_event(), mark);
        } else {
            self.mem.write_u16(self.layout.avail, 0);
        }
    }

    fn post(&mut self, buf: T, len: usize, dir: BufDir) -> Result<u16, (T, Error)> {
        if self.broken {
            return Err((buf, Error::EBADSTATE));
        }
        let allowed = match dir {
            BufDir::DeviceReads => buf.buf_dir().device_reads(),
            BufDir::DeviceWrites => buf.buf_dir().device_writes(),
        };
        if len == 0 || len > buf.buf_len() || buf.buf_device() != self.device || !allowed {
            return Err((buf, Error::EINVAL));
        }
        let Ok(len32) = u32::try_from(len) else {
            return Err((buf, Error::EINVAL));
        };
        if self.nfree == 0 {
            return Err((buf, Error::ENOSPC));
        }
        self.nfree -= 1;
        let id = self.free[self.nfree];
        let l = self.layout;
        let flags = match dir {
            BufDir::DeviceWrites => VIRTQ_DESC_F_WRITE,
            BufDir::DeviceReads => 0,
        };
        let d = l.desc + 16 * usize::from(id);
        self.mem.write_u64(d, buf.bus_addr());
        self.mem.write_u32(d + 8, len32);
        self.mem.write_u16(d + 12, flags);
        self.mem.write_u16(d + 14, 0);
        let buf = buf.lend_to_ring();
        self.in_flight[usize::from(id)] = Some(InFlight { len: len32, buf });
        self.mem
            .write_u16(l.avail_ring(ring_slot(self.avail_idx, l.size)), id);
        // virtio 1.2 §2.7.13.3: the ring entry (and the buffer's bytes, and its
        // descriptor) are visible before the index.
        self.mem.fence(Fence::Write);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem.write_u16(l.avail + 2, self.avail_idx);
        Ok(id)
    }

    fn kick_needed(&mut self) -> bool {
        let (old, new) = (self.kicked_at, self.avail_idx);
        self.kicked_at = new;
        if old == new {
            return false;
        }
        // The index is visible before the device's suppression state is read.
        self.mem.fence(Fence::Full);
        if self.event_idx {
            vring_need_event(self.mem.read_u16(self.layout.avail_event()), new, old)
        } else {
            self.mem.read_u16(self.layout.used) & VRING_USED_F_NO_NOTIFY == 0
        }
    }

    fn has_pending(&self) -> bool {
        !self.broken && self.mem.read_u16(self.layout.used + 2) != self.last_used
    }

    /// The device's used index if it is within a queue of what was consumed, else what
    /// was consumed (a bad index is for `pop_used` to find and refuse).
    fn used_mark(&self) -> u16 {
        let idx = self.mem.read_u16(self.layout.used + 2);
        match check_used_idx(idx, self.last_used, self.layout.size) {
            Ok(_) => idx,
            Err(_) => self.last_used,
        }
    }

    fn pop_used(&mut self) -> Option<Used<T>> {
        if self.broken {
            return None;
        }
        let used_idx = self.mem.read_u16(self.layout.used + 2);
        match check_used_idx(used_idx, self.last_used, self.layout.size) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(error) => {
                self.broken = true;
                self.rejected += 1;
                return Some(Err(Rejected {
                    error,
                    reclaimed: None,
                }));
            }
        }
        // The index is read before the element it covers, and the buffer after both
        // (virtio 1.2 §2.7.14).
        self.mem.fence(Fence::Read);
        let e = self
            .layout
            .used_ring(ring_slot(self.last_used, self.layout.size));
        let (id, len) = (self.mem.read_u32(e), self.mem.read_u32(e + 4));
        self.last_used = self.last_used.wrapping_add(1);
        let in_flight = &self.in_flight;
        let checked = check_used_elem(id, len, self.layout.size, |i| {
            in_flight
                .get(usize::from(i))
                .and_then(|f| f.as_ref())
                .map(|f| f.len)
        });
        Some(match checked {
            Ok(id) => match self.take(id) {
                Some(buf) => Ok(Completion { buf, len }),
                None => self.reject(UsedError::NotInFlight { id: u32::from(id) }, None),
            },
            Err(error @ UsedError::LenTooLong { id, .. }) => {
                let reclaimed = u16::try_from(id).ok().and_then(|id| self.take(id));
                self.reject(error, reclaimed)
            }
            Err(error) => self.reject(error, None),
        })
    }

    fn reject(&mut self, error: UsedError, reclaimed: Option<T>) -> Used<T> {
        self.rejected += 1;
        Err(Rejected { error, reclaimed })
    }

    /// Removes an in-flight id (returning it to the free stack) and its buffer.
    fn take(&mut self, id: u16) -> Option<T> {
        let f = self.in_flight.get_mut(usize::from(id))?.take()?;
        self.free[self.nfree] = id;
        self.nfree += 1;
        Some(T::completed(f.buf))
    }
}

/// The quiet check of a suppressed ring: re-enable its interrupts from used index `mark`
/// on, then (after the full fence `quiesce` issues) read the used index. `mark` is what
/// was consumed ([`Round::finish`]) or what the device had published when the driver chose
/// to leave it there ([`Round::defer`]). Private: only those two run it.
struct RingQuiet<'a, B: DevSys, const Q: usize, T: Buffer> {
    core: &'a Core<B, Q, T>,
    mark: u16,
}

#[allow(
    unsafe_code,
    reason = "the ring's quiet check implements the unsafe trait"
)]
// SAFETY: a virtio device interrupts for a used-ring update only while the ring's
// interrupts are enabled (flags 0, or `used_event` passed: virtio 1.2 §2.7.10). `enable`
// is that final re-enable, for every element from `mark` on; `is_quiet` reads the
// device-written used index after the fence and answers quiet only if it still equals
// `mark`, so every completion after it is published after the re-enable and raises a
// fresh interrupt. (Elements before `mark` that were not consumed are the driver's to
// drain at its next round: it chose to leave them, knowing they are there.)
unsafe impl<B: DevSys, const Q: usize, T: Buffer> QuietCheck for RingQuiet<'_, B, Q, T> {
    fn enable(&self, _: &Seal) {
        self.core.enable(self.mark);
    }
    fn is_quiet(&self, _: &Seal) -> bool {
        !self.core.broken && self.core.mem.read_u16(self.core.layout.used + 2) == self.mark
    }
}

/// An interrupt line and the ring that signals on it, between rounds: the line armed,
/// the ring's interrupts on. The driver programmed the ring's MSI-X vector to the line's
/// entry at bring-up; from here they move as one.
#[must_use = "dropping it drops the line and the ring"]
pub struct Napi<B: DevSys, const Q: usize, T: Buffer = DmaRegion<Cpu, B>> {
    line: IrqLine<Armed, B>,
    ring: Vring<Armed, B, Q, T>,
}

/// A NAPI round: the line `Draining` (masked in the kernel), the ring suppressed. Drain
/// it with [`Round::pop_used`], refill it, then [`Round::finish`].
#[must_use = "dropping it drops the line and the ring"]
pub struct Round<B: DevSys, const Q: usize, T: Buffer = DmaRegion<Cpu, B>> {
    line: IrqLine<Draining, B>,
    ring: Vring<Suppressed, B, Q, T>,
}

/// Why [`Round::finish`] did not re-arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFinished {
    /// Completions arrived between the drain and the re-enable: drain again (the ring is
    /// suppressed again, the line still masked).
    Raced,
    /// The kernel refused `irq_rearm` (its own check of the device's MSI delivery).
    Refused(Error),
}

impl<B: DevSys, const Q: usize, T: Buffer> Napi<B, Q, T> {
    /// Binds a fresh line to the fresh ring that signals on it and arms the line. A failed
    /// `irq_arm` hands both back with the error.
    #[allow(
        clippy::type_complexity,
        clippy::result_large_err,
        reason = "both capabilities come back unchanged, by value (no heap here)"
    )]
    pub fn new(
        line: IrqLine<Masked, B>,
        ring: Vring<Armed, B, Q, T>,
    ) -> Result<Self, (IrqLine<Masked, B>, Vring<Armed, B, Q, T>, Error)> {
        match line.arm() {
            Ok(line) => Ok(Napi { line, ring }),
            Err((line, e)) => Err((line, ring, e)),
        }
    }

    /// Waits until the line fires or `deadline` (0 polls): the line `Draining` and the
    /// ring suppressed together, with when it fired. On `ETIMEDOUT` (or any error) the pair
    /// comes back unchanged.
    #[allow(
        clippy::result_large_err,
        reason = "the pair comes back unchanged, by value (no heap here)"
    )]
    pub fn wait(self, deadline: u64) -> Result<(Round<B, Q, T>, Fired), (Self, Error)> {
        let Napi { line, ring } = self;
        match line.wait(deadline) {
            Ok((line, fired)) => Ok((
                Round {
                    line,
                    ring: ring.suppress(),
                },
                fired,
            )),
            Err((line, e)) => Err((Napi { line, ring }, e)),
        }
    }

    /// Posts a buffer between rounds (see [`Vring::post`]).
    pub fn post(&mut self, buf: T, len: usize, dir: BufDir) -> Result<u16, (T, Error)> {
        self.ring.post(buf, len, dir)
    }

    /// Whether the device must be notified (see [`Vring::kick_needed`]).
    pub fn kick_needed(&mut self) -> bool {
        self.ring.kick_needed()
    }

    /// The ring, to read its counters and addresses.
    pub fn ring(&self) -> &Vring<Armed, B, Q, T> {
        &self.ring
    }

    /// The line.
    pub fn line(&self) -> &IrqLine<Armed, B> {
        &self.line
    }

    /// A round without an interrupt: masks the line (`irq_mask`, `Armed` -> `Draining`)
    /// and suppresses the ring. For a ring that wants interrupts only now and then (a TX
    /// ring: while the driver waits for room), which lives as a `Round`, drained when the
    /// driver likes, and is finished — re-enabled, rechecked, re-armed — only to wait. An
    /// interrupt already pending is swallowed with the mask (the drain that follows sees
    /// its completions). A refused mask hands the pair back unchanged.
    #[allow(
        clippy::result_large_err,
        reason = "the pair comes back unchanged, by value (no heap here)"
    )]
    pub fn mask(self) -> Result<Round<B, Q, T>, (Self, Error)> {
        let Napi { line, ring } = self;
        match line.mask() {
            Ok(line) => Ok(Round {
                line,
                ring: ring.suppress(),
            }),
            Err((line, e)) => Err((Napi { line, ring }, e)),
        }
    }
}

impl<B: DevSys, const Q: usize, T: Buffer> Round<B, Q, T> {
    /// Pops one used element (see [`Vring::pop_used`]).
    pub fn pop_used(&mut self) -> Option<Used<T>> {
        self.ring.pop_used()
    }

    /// Posts a buffer (a refill) during the round.
    pub fn post(&mut self, buf: T, len: usize, dir: BufDir) -> Result<u16, (T, Error)> {
        self.ring.post(buf, len, dir)
    }

    /// Whether the device must be notified (see [`Vring::kick_needed`]).
    pub fn kick_needed(&mut self) -> bool {
        self.ring.kick_needed()
    }

    /// The ring, to read its counters.
    pub fn ring(&self) -> &Vring<Suppressed, B, Q, T> {
        &self.ring
    }

    /// The line, masked while the round runs.
    pub fn line(&self) -> &IrqLine<Draining, B> {
        &self.line
    }

    /// Ends the round: re-enables the ring's interrupts, a full fence, rechecks the used
    /// index ([`quiesce`] with the ring's own check), and re-arms the line with the proof
    /// that read minted. Work that arrived meanwhile, or a refused re-arm, hands the round
    /// back (ring suppressed again, line masked) to drain and try again.
    #[allow(
        clippy::result_large_err,
        reason = "the round comes back unchanged, by value (no heap here)"
    )]
    pub fn finish(self) -> Result<Napi<B, Q, T>, (Self, NotFinished)> {
        let mark = self.ring.core.last_used;
        self.end(mark)
    }

    /// Ends the round *leaving* the completions the device already published (the driver
    /// has nowhere to put them yet: its consumer is full): as [`Round::finish`], but the
    /// ring's interrupts are re-enabled for the first completion after those, and the
    /// recheck passes if no new one came. The next interrupt — a new completion — starts a
    /// round that drains them all; so can [`Napi::mask`], when the driver has room again
    /// and learns it otherwise. The device's ring fills meanwhile, and a NIC stops
    /// receiving (flow control) rather than dropping.
    #[allow(
        clippy::result_large_err,
        reason = "the round comes back unchanged, by value (no heap here)"
    )]
    pub fn defer(self) -> Result<Napi<B, Q, T>, (Self, NotFinished)> {
        let mark = self.ring.core.used_mark();
        self.end(mark)
    }

    #[allow(
        clippy::result_large_err,
        reason = "the round comes back unchanged, by value (no heap here)"
    )]
    fn end(self, mark: u16) -> Result<Napi<B, Q, T>, (Self, NotFinished)> {
        // Completions already published past `mark`: the round goes on, and the ring's
        // interrupts stay off. Re-enabling them only to find the work would have the device
        // raise an interrupt for it while the line is masked, to be delivered at the next
        // re-arm, coalesced with any other raised meanwhile.
        if self.ring.core.broken
            || self.ring.core.mem.read_u16(self.ring.core.layout.used + 2) != mark
        {
            return Err((self, NotFinished::Raced));
        }
        let Round { line, ring } = self;
        let quiet = quiesce(
            line,
            &RingQuiet {
                core: &ring.core,
                mark,
            },
        );
        match quiet {
            Ok((proof, line)) => match line.rearm(proof) {
                Ok(line) => Ok(Napi {
                    line,
                    ring: ring.retype(),
                }),
                Err((line, e)) => {
                    ring.core.suppress();
                    Err((Round { line, ring }, NotFinished::Refused(e)))
                }
            },
            Err(line) => {
                ring.core.suppress();
                Err((Round { line, ring }, NotFinished::Raced))
            }
        }
    }
}

impl<S: RingState, B: DevSys, const Q: usize, T: Buffer> core::fmt::Debug for Vring<S, B, Q, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vring")
            .field("size", &Q)
            .field("state", &core::any::type_name::<S>())
            .field("in_flight", &self.in_flight())
            .field("last_used", &self.core.last_used)
            .field("rejected", &self.core.rejected)
            .field("broken", &self.core.broken)
            .finish()
    }
}

impl<B: DevSys, const Q: usize, T: Buffer> core::fmt::Debug for Napi<B, Q, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Napi")
            .field("line", &self.line)
            .field("ring", &self.ring)
            .finish()
    }
}

impl<B: DevSys, const Q: usize, T: Buffer> core::fmt::Debug for Round<B, Q, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Round")
            .field("line", &self.line)
            .field("ring", &self.ring)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use super::*;
    use crate::fake::{FakeKernel, LineModel};
    use crate::{Device, DmaDir};

    type K = &'static FakeKernel;

    /// The device's side of one queue, through the fake kernel's bus.
    struct FakeQueue {
        k: K,
        layout: VringLayout,
        base: u64,
        next_avail: u16,
        used_idx: u16,
    }

    impl FakeQueue {
        fn new<S: RingState, T: Buffer>(k: K, ring: &Vring<S, K, 8, T>) -> Self {
            let (desc, _, _) = ring.addresses();
            FakeQueue {
                k,
                layout: VringLayout::new(usize::from(ring.size())).unwrap(),
                base: desc,
                next_avail: 0,
                used_idx: 0,
            }
        }
        fn r16(&self, off: usize) -> u16 {
            let b = self.k.bus_read(self.base + off as u64, 2);
            u16::from_le_bytes([b[0], b[1]])
        }
        fn w16(&self, off: usize, v: u16) {
            self.k.bus_write(self.base + off as u64, &v.to_le_bytes());
        }
        fn avail_flags(&self) -> u16 {
            self.r16(self.layout.avail)
        }
        fn used_event(&self) -> u16 {
            self.r16(self.layout.used_event())
        }
        /// The next buffer the driver made available: (id, bus address, len, flags).
        fn take(&mut self) -> Option<(u16, u64, u32, u16)> {
            if self.r16(self.layout.avail + 2) == self.next_avail {
                return None;
            }
            let slot = ring_slot(self.next_avail, self.layout.size);
            let id = self.r16(self.layout.avail_ring(slot));
            self.next_avail = self.next_avail.wrapping_add(1);
            let d = self.k.bus_read(self.base + 16 * u64::from(id), 16);
            let addr = u64::from_le_bytes(d[..8].try_into().unwrap());
            let len = u32::from_le_bytes(d[8..12].try_into().unwrap());
            let flags = u16::from_le_bytes([d[12], d[13]]);
            Some((id, addr, len, flags))
        }
        /// Takes the next available buffer and publishes it used with `len` bytes.
        fn complete_next(&mut self, len: u32) {
            let (id, ..) = self.take().expect("a posted buffer");
            self.complete(u32::from(id), len);
        }
        /// Publishes a used element, hostile or not.
        fn complete(&mut self, id: u32, len: u32) {
            let e = self
                .layout
                .used_ring(ring_slot(self.used_idx, self.layout.size));
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&id.to_le_bytes());
            b[4..].copy_from_slice(&len.to_le_bytes());
            self.k.bus_write(self.base + e as u64, &b);
            self.used_idx = self.used_idx.wrapping_add(1);
            self.w16(self.layout.used + 2, self.used_idx);
        }
        fn set_used_idx(&mut self, v: u16) {
            self.used_idx = v;
            self.w16(self.layout.used + 2, v);
        }
    }

    fn ring(device: &Device<K>, event_idx: bool) -> Vring<Armed, K, 8> {
        let mem = device.dma_alloc(4096, DmaDir::Bidirectional, 64).unwrap();
        Vring::new(mem, event_idx).unwrap()
    }

    fn buffers(device: &Device<K>, n: usize, dir: DmaDir) -> Vec<DmaRegion<Cpu, K>> {
        (0..n)
            .map(|_| device.dma_alloc(2048, dir, 64).unwrap())
            .collect()
    }

    type Region = DmaRegion<Cpu, K>;

    fn completion<T>(r: Option<Used<T>>) -> Completion<T> {
        match r {
            Some(Ok(c)) => c,
            Some(Err(rej)) => panic!("rejected: {:?}", rej.error),
            None => panic!("nothing pending"),
        }
    }

    fn rejection<T>(r: Option<Used<T>>) -> Rejected<T> {
        match r {
            Some(Err(rej)) => rej,
            Some(Ok(c)) => panic!("accepted: len {}", c.len),
            None => panic!("nothing pending"),
        }
    }

    #[test]
    fn buffers_come_back_through_validated_completions() {
        let (k, device) = FakeKernel::with_device();
        let mut ring = ring(&device, false).into_polled();
        let mut dev = FakeQueue::new(k, &ring);
        let bufs = buffers(&device, 3, DmaDir::FromDevice);
        let bus: Vec<u64> = bufs.iter().map(|b| b.bus_addr()).collect();
        for b in bufs {
            ring.post(b, 2048, BufDir::DeviceWrites).unwrap();
        }
        assert_eq!(ring.in_flight(), 3);
        assert!(ring.kick_needed());
        assert!(!ring.kick_needed(), "nothing new since");
        let (id, addr, len, flags) = dev.take().unwrap();
        assert_eq!((addr, len, flags), (bus[0], 2048, VIRTQ_DESC_F_WRITE));
        k.bus_write(addr, b"frame one");
        dev.complete(u32::from(id), 9);
        assert!(ring.has_pending());
        let c = completion(ring.pop_used());
        assert_eq!((c.data(), c.buf.bus_addr()), (&b"frame one"[..], bus[0]));
        assert!(ring.pop_used().is_none());
        // Out of order: the third before the second.
        let (id2, ..) = dev.take().unwrap();
        let (id3, addr3, ..) = dev.take().unwrap();
        k.bus_write(addr3, b"3");
        dev.complete(u32::from(id3), 1);
        dev.complete(u32::from(id2), 0);
        assert_eq!(completion(ring.pop_used()).data(), b"3");
        assert_eq!(completion(ring.pop_used()).len, 0);
        assert_eq!((ring.in_flight(), ring.rejected()), (0, 0));
        // A reposted buffer gets a descriptor again.
        ring.post(c.buf, 100, BufDir::DeviceWrites).unwrap();
        assert_eq!(dev.take().map(|t| (t.1, t.2)), Some((bus[0], 100)));
    }

    #[test]
    fn hostile_used_elements_are_counted_and_rejected() {
        let (k, device) = FakeKernel::with_device();
        let mut ring = ring(&device, false).into_polled();
        let mut dev = FakeQueue::new(k, &ring);
        for b in buffers(&device, 2, DmaDir::FromDevice) {
            ring.post(b, 1000, BufDir::DeviceWrites).unwrap();
        }
        let (a, ..) = dev.take().unwrap();
        let (b, ..) = dev.take().unwrap();
        let free_id = (0..8u16).find(|&i| i != a && i != b).unwrap();
        dev.complete(8, 10);
        dev.complete(u32::MAX, 10);
        dev.complete(u32::from(free_id), 10);
        dev.complete(u32::from(a), 1001);
        dev.complete(u32::from(a), 10);
        dev.complete(u32::from(b), 1000);
        let e = |r: Rejected<Region>| (r.error, r.reclaimed.is_some());
        assert_eq!(
            e(rejection(ring.pop_used())),
            (UsedError::IdOutOfRange { id: 8 }, false)
        );
        assert_eq!(
            e(rejection(ring.pop_used())),
            (UsedError::IdOutOfRange { id: u32::MAX }, false)
        );
        assert_eq!(
            e(rejection(ring.pop_used())),
            (
                UsedError::NotInFlight {
                    id: u32::from(free_id)
                },
                false
            )
        );
        let too_long = rejection(ring.pop_used());
        assert_eq!(
            too_long.error,
            UsedError::LenTooLong {
                id: u32::from(a),
                len: 1001,
                posted: 1000
            }
        );
        assert!(too_long.reclaimed.is_some(), "the buffer comes back unread");
        assert_eq!(
            e(rejection(ring.pop_used())),
            (UsedError::NotInFlight { id: u32::from(a) }, false),
            "a second completion of the same buffer"
        );
        assert_eq!(
            completion(ring.pop_used()).len,
            1000,
            "exactly the posted length"
        );
        assert_eq!((ring.rejected(), ring.in_flight()), (5, 0));
        assert!(!ring.is_broken());
    }

    #[test]
    fn a_used_index_too_far_ahead_breaks_the_ring_without_consuming() {
        let (k, device) = FakeKernel::with_device();
        let mut ring = ring(&device, false).into_polled();
        let mut dev = FakeQueue::new(k, &ring);
        let mut bufs = buffers(&device, 2, DmaDir::FromDevice);
        ring.post(bufs.pop().unwrap(), 64, BufDir::DeviceWrites)
            .unwrap();
        dev.set_used_idx(9);
        let r = rejection(ring.pop_used());
        assert_eq!(
            r.error,
            UsedError::IdxTooFarAhead {
                used_idx: 9,
                last_used: 0
            }
        );
        assert!(ring.is_broken() && !ring.has_pending());
        assert!(ring.pop_used().is_none(), "nothing more is consumed");
        let (back, e) = ring
            .post(bufs.pop().unwrap(), 64, BufDir::DeviceWrites)
            .unwrap_err();
        assert_eq!((e, back.len()), (Error::EBADSTATE, 2048));
        assert_eq!((ring.rejected(), ring.in_flight()), (1, 1));
        // Exactly the queue size ahead is fine on a healthy ring (every id posted).
        let mut ok = ring_with(&device, k, 8);
        ok.1.set_used_idx(8);
        assert!(
            ok.0.pop_used().is_some_and(|r| r.is_ok()),
            "element 0: id 0, len 0"
        );
        assert!(!ok.0.is_broken());
    }

    fn ring_with(device: &Device<K>, k: K, n: usize) -> (Vring<Polled, K, 8>, FakeQueue) {
        let mut ring = ring(device, false).into_polled();
        let dev = FakeQueue::new(k, &ring);
        for b in buffers(device, n, DmaDir::FromDevice) {
            ring.post(b, 64, BufDir::DeviceWrites).unwrap();
        }
        (ring, dev)
    }

    #[test]
    fn post_refuses_and_hands_the_region_back() {
        let (_, device) = FakeKernel::with_device();
        let (_, stranger) = FakeKernel::with_device();
        let mut ring = ring(&device, false);
        let mut bufs = buffers(&device, 9, DmaDir::ToDevice);
        let refused = |r: Result<u16, (Region, Error)>| r.unwrap_err().1;
        let b = bufs.pop().unwrap();
        let (b, e) = ring.post(b, 0, BufDir::DeviceReads).unwrap_err();
        assert_eq!(e, Error::EINVAL, "empty");
        let (b, e) = ring.post(b, 2049, BufDir::DeviceReads).unwrap_err();
        assert_eq!(e, Error::EINVAL, "past the region");
        let (b, e) = ring.post(b, 10, BufDir::DeviceWrites).unwrap_err();
        assert_eq!(
            e,
            Error::EINVAL,
            "a to-device region the device would write"
        );
        let other = stranger.dma_alloc(64, DmaDir::ToDevice, 64).unwrap();
        assert_eq!(
            refused(ring.post(other, 10, BufDir::DeviceReads)),
            Error::EINVAL,
            "another device's memory"
        );
        ring.post(b, 10, BufDir::DeviceReads).unwrap();
        for b in bufs.drain(..7) {
            ring.post(b, 10, BufDir::DeviceReads).unwrap();
        }
        assert_eq!(ring.in_flight(), 8);
        assert_eq!(
            refused(ring.post(bufs.pop().unwrap(), 10, BufDir::DeviceReads)),
            Error::ENOSPC
        );
        // The ring's own memory: bidirectional, large enough.
        let small = device.dma_alloc(64, DmaDir::Bidirectional, 64).unwrap();
        assert_eq!(
            Vring::<Armed, K, 8>::new(small, false).err().unwrap().1,
            Error::EINVAL
        );
        let one_way = device.dma_alloc(4096, DmaDir::FromDevice, 64).unwrap();
        assert!(Vring::<Armed, K, 8>::new(one_way, false).is_err());
        let mem = device.dma_alloc(4096, DmaDir::Bidirectional, 64).unwrap();
        assert!(
            Vring::<Armed, K, 6>::new(mem, false).is_err(),
            "not a power of two"
        );
    }

    fn napi(k: K, device: &Device<K>, event_idx: bool) -> (Napi<K, 8>, FakeQueue) {
        let mut ring = ring(device, event_idx);
        let dev = FakeQueue::new(k, &ring);
        for b in buffers(device, 4, DmaDir::FromDevice) {
            ring.post(b, 2048, BufDir::DeviceWrites).unwrap();
        }
        let line = device.irq(1, 2).unwrap();
        (Napi::new(line, ring).unwrap(), dev)
    }

    #[test]
    fn a_round_suppresses_drains_and_rearms_after_the_recheck() {
        let (k, device) = FakeKernel::with_device();
        let (pair, mut dev) = napi(k, &device, false);
        let h = pair.line().handle();
        assert_eq!((k.line(h), dev.avail_flags()), (LineModel::Armed, 0));
        let (pair, e) = pair.wait(0).unwrap_err();
        assert_eq!(e, Error::ETIMEDOUT, "not fired: the pair comes back");
        dev.complete_next(60);
        k.fire(h, 5);
        let (mut round, fired) = pair.wait(0).unwrap();
        assert_eq!(fired.fires, 1);
        assert_eq!(k.line(h), LineModel::Draining);
        assert_eq!(dev.avail_flags(), VRING_AVAIL_F_NO_INTERRUPT, "suppressed");
        let c = completion(round.pop_used());
        round.post(c.buf, 2048, BufDir::DeviceWrites).unwrap();
        assert!(round.pop_used().is_none());
        k.clear_log();
        let pair = round.finish().unwrap();
        assert_eq!(dev.avail_flags(), 0, "interrupts on again");
        assert_eq!(
            k.log(),
            ["fence", "irq_rearm"],
            "enable, fence, read, rearm"
        );
        assert_eq!(k.line(h), LineModel::Armed);
        assert_eq!(pair.ring().in_flight(), 4);
    }

    #[test]
    fn a_completion_before_the_recheck_keeps_the_line_masked() {
        let (k, device) = FakeKernel::with_device();
        let (pair, mut dev) = napi(k, &device, false);
        let h = pair.line().handle();
        k.fire(h, 1);
        let (mut round, _) = pair.wait(u64::MAX).unwrap();
        assert!(round.pop_used().is_none());
        // The device completes after the drain, while interrupts are still suppressed:
        // it raises nothing, so re-arming now would lose this buffer. Seen before the
        // ring's interrupts are re-enabled: they stay off (re-enabled, the device would
        // raise one for it into the masked line).
        dev.complete_next(42);
        k.clear_log();
        let (mut round, why) = round.finish().unwrap_err();
        assert_eq!(why, NotFinished::Raced);
        assert!(
            k.log().is_empty(),
            "no re-enable, no irq_rearm: {:?}",
            k.log()
        );
        assert_eq!(k.line(h), LineModel::Draining);
        assert_eq!(
            dev.avail_flags(),
            VRING_AVAIL_F_NO_INTERRUPT,
            "still suppressed"
        );
        assert_eq!(completion(round.pop_used()).len, 42);
        let _pair = round.finish().unwrap();
        assert_eq!(k.line(h), LineModel::Armed);
    }

    #[test]
    fn a_completion_between_the_re_enable_and_the_recheck_keeps_the_line_masked() {
        let (k, device) = FakeKernel::with_device();
        let (pair, dev) = napi(k, &device, true);
        let h = pair.line().handle();
        let dev = std::rc::Rc::new(core::cell::RefCell::new(dev));
        dev.borrow_mut().complete_next(10);
        k.fire(h, 1);
        let (mut round, _) = pair.wait(u64::MAX).unwrap();
        assert_eq!(completion(round.pop_used()).len, 10);
        assert_eq!(
            dev.borrow().used_event(),
            0,
            "parked one behind the one consumed"
        );
        // The device completes just after the ring's interrupts are re-enabled (at the
        // fence before the recheck): the recheck sees it and the line stays masked.
        let d = dev.clone();
        k.at_next_fence(Box::new(move || d.borrow_mut().complete_next(42)));
        k.clear_log();
        let (mut round, why) = round.finish().unwrap_err();
        assert_eq!(why, NotFinished::Raced);
        assert_eq!(
            k.log(),
            ["fence", "fence"],
            "re-enabled, suppressed again, no irq_rearm"
        );
        assert_eq!(k.line(h), LineModel::Draining);
        assert_eq!(
            dev.borrow().used_event(),
            0,
            "parked again while the round goes on"
        );
        assert_eq!(completion(round.pop_used()).len, 42);
        assert_eq!(dev.borrow().used_event(), 1);
        let _pair = round.finish().unwrap();
        assert_eq!(k.line(h), LineModel::Armed);
        assert_eq!(
            dev.borrow().used_event(),
            2,
            "the next completion interrupts"
        );
    }

    #[test]
    fn a_refused_rearm_hands_the_round_back() {
        let (k, device) = FakeKernel::with_device();
        let (pair, _dev) = napi(k, &device, false);
        let h = pair.line().handle();
        k.fire(h, 1);
        let (round, _) = pair.wait(0).unwrap();
        k.fail_next(Error::EBADSTATE);
        let (round, why) = round.finish().unwrap_err();
        assert_eq!(why, NotFinished::Refused(Error::EBADSTATE));
        assert_eq!(k.line(h), LineModel::Draining);
        let _pair = round.finish().unwrap();
        assert_eq!(k.line(h), LineModel::Armed);
    }

    #[test]
    fn with_event_index_the_used_event_and_avail_event_decide() {
        let (k, device) = FakeKernel::with_device();
        let (mut pair, mut dev) = napi(k, &device, true);
        assert!(pair.kick_needed(), "avail_event 0, passed by 0 -> 4");
        let h = pair.line().handle();
        for _ in 0..3 {
            dev.complete_next(1);
        }
        k.fire(h, 1);
        let (mut round, _) = pair.wait(0).unwrap();
        assert_eq!(dev.avail_flags(), 0, "event index: no flag");
        let mut back = Vec::new();
        while let Some(r) = round.pop_used() {
            back.push(completion(Some(r)).buf);
        }
        assert_eq!(back.len(), 3);
        let mut pair = round.finish().unwrap();
        assert_eq!(dev.used_event(), 3, "interrupt me after the third");
        // The device asked to be told at avail index 10: posting up to 7 needs no kick.
        dev.w16(dev.layout.avail_event(), 10);
        pair.post(back.pop().unwrap(), 64, BufDir::DeviceWrites)
            .unwrap();
        assert!(!pair.kick_needed());
        dev.w16(dev.layout.avail_event(), 5);
        pair.post(back.pop().unwrap(), 64, BufDir::DeviceWrites)
            .unwrap();
        assert!(pair.kick_needed(), "5 -> 6 passed 5");
    }

    #[test]
    fn no_notify_suppresses_kicks_without_event_index() {
        let (k, device) = FakeKernel::with_device();
        let (mut ring, dev) = ring_with(&device, k, 1);
        assert!(ring.kick_needed());
        dev.w16(dev.layout.used, VRING_USED_F_NO_NOTIFY);
        let mut b = buffers(&device, 1, DmaDir::FromDevice);
        ring.post(b.pop().unwrap(), 64, BufDir::DeviceWrites)
            .unwrap();
        assert!(!ring.kick_needed());
    }

    fn slice_ring(device: &Device<K>, size: usize) -> Vring<Polled, K, 8, Slice<K>> {
        let mem = device.dma_alloc(4096, DmaDir::Bidirectional, 64).unwrap();
        Vring::with_size(mem, false, size).unwrap().into_polled()
    }

    #[test]
    fn pool_slices_come_back_only_through_validated_completions() {
        let (k, device) = FakeKernel::with_device();
        let mut ring = slice_ring(&device, 8);
        let mut dev = FakeQueue::new(k, &ring);
        let pool = device.dma_alloc(8 * 256, DmaDir::FromDevice, 64).unwrap();
        let base = pool.bus_addr();
        let mut slices = crate::pool::split(pool, 256).unwrap();
        slices.truncate(3);
        for s in slices {
            ring.post(s, 256, BufDir::DeviceWrites).unwrap();
        }
        let (a, addr_a, len_a, _) = dev.take().unwrap();
        let (b, addr_b, ..) = dev.take().unwrap();
        let (c, ..) = dev.take().unwrap();
        assert_eq!(
            (addr_a, addr_b, len_a),
            (base, base + 256, 256),
            "each slice its own"
        );
        k.bus_write(addr_b, b"into b");
        let free_id = (0..8u16).find(|&i| ![a, b, c].contains(&i)).unwrap();
        dev.complete(8, 6);
        dev.complete(u32::from(free_id), 6);
        dev.complete(u32::from(a), 257);
        dev.complete(u32::from(b), 6);
        dev.complete(u32::from(b), 6);
        let r = rejection(ring.pop_used());
        assert_eq!(
            (r.error, r.reclaimed.is_none()),
            (UsedError::IdOutOfRange { id: 8 }, true)
        );
        let r = rejection(ring.pop_used());
        assert!(
            r.reclaimed.is_none(),
            "an id not in flight hands nothing out"
        );
        let r = rejection(ring.pop_used());
        let back_a = r
            .reclaimed
            .expect("a length too long: the slice back, unread");
        assert_eq!((back_a.index(), back_a.bus_addr()), (0, base));
        let got = completion(ring.pop_used());
        assert_eq!((got.data(), got.buf.index()), (&b"into b"[..], 1));
        let r = rejection(ring.pop_used());
        assert_eq!(
            (r.error, r.reclaimed.is_none()),
            (UsedError::NotInFlight { id: u32::from(b) }, true),
            "a second completion of a slice already handed back"
        );
        assert_eq!((ring.in_flight(), ring.rejected()), (1, 4));
        // Back in CPU hands: writable, and postable again.
        let mut again = got.buf;
        again.bytes_mut()[..3].copy_from_slice(b"new");
        ring.post(again, 3, BufDir::DeviceWrites).unwrap();
        assert_eq!(dev.take().map(|t| (t.1, t.2)), Some((base + 256, 3)));
    }

    #[test]
    fn a_slice_is_posted_only_where_its_pool_may_go() {
        let (_, device) = FakeKernel::with_device();
        let (_, stranger) = FakeKernel::with_device();
        let mut ring = slice_ring(&device, 4);
        assert_eq!(ring.size(), 4);
        let theirs = stranger.dma_alloc(1024, DmaDir::FromDevice, 64).unwrap();
        let theirs = crate::pool::split(theirs, 512).unwrap().pop().unwrap();
        let (_, e) = ring.post(theirs, 512, BufDir::DeviceWrites).unwrap_err();
        assert_eq!(e, Error::EINVAL, "another device's pool");
        let tx = device.dma_alloc(1024, DmaDir::ToDevice, 64).unwrap();
        let tx = crate::pool::split(tx, 512).unwrap().pop().unwrap();
        let (tx, e) = ring.post(tx, 64, BufDir::DeviceWrites).unwrap_err();
        assert_eq!(e, Error::EINVAL, "a to-device pool the device would write");
        let (_, e) = ring.post(tx, 513, BufDir::DeviceReads).unwrap_err();
        assert_eq!(e, Error::EINVAL, "past the slice, into its neighbour");
        // A ring of 4 in a table of 8: four posts, then full; ids stop at 3.
        let pool = device.dma_alloc(5 * 64, DmaDir::ToDevice, 64).unwrap();
        let mut slices = crate::pool::split(pool, 64).unwrap();
        let last = slices.pop().unwrap();
        let ids: Vec<u16> = slices
            .into_iter()
            .map(|s| ring.post(s, 64, BufDir::DeviceReads).unwrap())
            .collect();
        assert!(ids.iter().all(|&i| i < 4));
        let (_, e) = ring.post(last, 64, BufDir::DeviceReads).unwrap_err();
        assert_eq!((e, ring.in_flight()), (Error::ENOSPC, 4));
        let mem = device.dma_alloc(4096, DmaDir::Bidirectional, 64).unwrap();
        let (mem, e) = Vring::<Armed, K, 8, Slice<K>>::with_size(mem, false, 16).unwrap_err();
        assert_eq!(e, Error::EINVAL, "more than the table holds");
        assert!(Vring::<Armed, K, 8, Slice<K>>::with_size(mem, false, 3).is_err());
    }

    #[test]
    fn an_id_past_a_smaller_queue_is_out_of_range() {
        let (k, device) = FakeKernel::with_device();
        let mut ring = slice_ring(&device, 4);
        let mut dev = FakeQueue::new(k, &ring);
        let pool = device.dma_alloc(4 * 64, DmaDir::FromDevice, 64).unwrap();
        for s in crate::pool::split(pool, 64).unwrap() {
            ring.post(s, 64, BufDir::DeviceWrites).unwrap();
        }
        dev.complete(4, 1);
        dev.complete(7, 1);
        for id in [4, 7] {
            let r = rejection(ring.pop_used());
            assert_eq!(
                (r.error, r.reclaimed.is_none()),
                (UsedError::IdOutOfRange { id }, true)
            );
        }
        assert_eq!((ring.in_flight(), ring.rejected()), (4, 2));
    }

    #[test]
    fn a_masked_pair_is_a_round_that_interrupts_only_once_finished() {
        let (k, device) = FakeKernel::with_device();
        let (pair, mut dev) = napi(k, &device, true);
        let h = pair.line().handle();
        let mut round = pair.mask().unwrap();
        assert_eq!(k.line(h), LineModel::Draining, "masked without a wait");
        // Completions while masked are drained at leisure; nothing fires.
        dev.complete_next(0);
        k.fire(h, 1);
        assert_eq!(k.line(h), LineModel::Draining);
        assert_eq!(completion(round.pop_used()).len, 0);
        assert!(round.pop_used().is_none());
        // To wait for the next completion: finish (used_event = what was consumed).
        let pair = round.finish().unwrap();
        assert_eq!((k.line(h), dev.used_event()), (LineModel::Armed, 1));
        dev.complete_next(0);
        k.fire(h, 2);
        let (mut round, fired) = pair.wait(0).unwrap();
        assert_eq!(fired.fires, 1);
        assert_eq!(completion(round.pop_used()).len, 0);
    }

    #[test]
    fn a_deferred_round_leaves_its_completions_and_wakes_on_the_next() {
        for event_idx in [false, true] {
            let (k, device) = FakeKernel::with_device();
            let (pair, mut dev) = napi(k, &device, event_idx);
            let h = pair.line().handle();
            let (a, ..) = dev.take().unwrap();
            let (b, ..) = dev.take().unwrap();
            dev.complete(u32::from(a), 10);
            dev.complete(u32::from(b), 20);
            k.fire(h, 1);
            let (round, _) = pair.wait(0).unwrap();
            // No room for them: leave both, re-armed for the next one.
            k.clear_log();
            let pair = round.defer().unwrap();
            assert_eq!(k.log(), ["fence", "irq_rearm"], "event_idx {event_idx}");
            assert_eq!(k.line(h), LineModel::Armed);
            if event_idx {
                assert_eq!(dev.used_event(), 2, "the first after the two left");
            } else {
                assert_eq!(dev.avail_flags(), 0);
            }
            assert!(pair.ring().has_pending(), "still there");
            let (pair, e) = pair.wait(0).unwrap_err();
            assert_eq!(e, Error::ETIMEDOUT, "what was left raises nothing");
            let (c, ..) = dev.take().unwrap();
            dev.complete(u32::from(c), 30);
            k.fire(h, 2);
            let (mut round, _) = pair.wait(0).unwrap();
            let lens: Vec<u32> = core::iter::from_fn(|| round.pop_used())
                .map(|r| completion(Some(r)).len)
                .collect();
            assert_eq!(lens, [10, 20, 30], "drained in order at the next round");
            let _pair = round.finish().unwrap();
        }
    }
}
