//! GICv3 ITS: turns a device's MSI write into an LPI, and LPI masking.
//!
//! A GICv3 has no MSI frame: PCI functions write an EventID to the ITS's
//! `GITS_TRANSLATER`, and the ITS looks up (DeviceID = the requester ID,
//! EventID) in per-device interrupt translation tables to find an LPI and the
//! collection (redistributor) it goes to (IHI 0069H chapter 5). The ITS is
//! programmed only through a command queue in memory; LPIs are configured by
//! one byte each in a property table the redistributors read, so masking an LPI
//! is "clear the enable bit, then INV and SYNC". The interrupt path masks every
//! line it acknowledges, so the queue sits behind an IRQ-safe lock and every
//! wait on the ITS is bounded and reported as an error.
//!
//! Scope (docs/interrupts.md): flat device and collection tables, one
//! collection (0) on the boot CPU's redistributor, EventID = the LPI's offset
//! from 8192 (`MsiData::Index`), one ITT per DeviceID covering every EventID,
//! kept for the life of the kernel. The probe (`GITS_TYPER` checks, the tables) is in
//! `its/probe.rs`; this file runs the ITS once it is up.

pub mod cmd;
#[cfg(test)]
mod fake;
mod probe;
pub mod regs;

use core::hint::spin_loop;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use caps::dma::{DmaBuffer, DmaHal};
use caps::irq::IrqChip;
use caps::lock::{IrqMaskOps, IrqSafe};
use caps::msi::{MsiData, MsiRange};

use self::cmd::{COMMAND_BYTES, Command};
use self::probe::{bits_for, check_typer, lpi_tables, quiesce, setup_tables};
use self::regs::*;
use super::gicv3::{InitError, pendbaser, propbaser};
use super::{DEFAULT_PRIORITY, GicV3, InterruptController, Trigger};
use crate::mmio::Registers;

pub use super::FIRST_LPI;
/// Most LPIs one ITS driver hands out (its event map is a fixed array).
pub const MAX_LPIS: usize = 1024;
/// Most DeviceIDs with an ITT.
pub const MAX_DEVICES: usize = 32;
/// Command queue: one 4 KiB page, 128 commands.
const QUEUE_BYTES: usize = 4096;
/// Collection used for every LPI (targets the boot CPU).
const ICID: u16 = 0;
/// Collection table entries we size for (covers any collection ID we use).
const COLLECTIONS: u64 = 64;
/// LPI configuration byte: priority [7:2], bit 1 RES1, bit 0 enable (§5.1.1).
const LPI_ENABLE: u8 = 1 << 0;
const LPI_RES1: u8 = 1 << 1;

/// What the kernel asks of the ITS.
#[derive(Clone, Copy, Debug)]
pub struct ItsConfig {
    /// LPIs to hand out from INTID 8192 (1..=`MAX_LPIS`).
    pub lpis: u32,
    /// DeviceIDs the device table must cover (clamped to `GITS_TYPER.Devbits`).
    pub device_ids: u32,
    /// Polls of `GITS_CREADR` (or `GITS_CTLR.Quiescent`) before a timeout error.
    pub poll_limit: u32,
}

/// Why the ITS cannot be used, or a command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItsError {
    /// `GITS_TYPER` is unusable (no physical LPIs, PTA = 1, too few ID bits).
    BadTyper(u64),
    /// The configuration asks for 0 or more than `MAX_LPIS` LPIs.
    BadConfig,
    /// The distributor's INTID bits cannot hold the LPI range.
    LpiRangeTooSmall,
    /// No `GITS_BASER<n>` of type Devices, or none for collections while HCC = 0.
    MissingTable,
    /// A table would need more than 256 pages of the ITS's page size.
    TableTooLarge,
    /// `GITS_BASER<n>` did not keep what was written (n, value read back).
    TableRejected(u8, u64),
    /// The ITS was enabled and did not become quiescent when disabled.
    NotQuiescent,
    /// The ITS did not consume the command queue in time.
    CommandTimeout,
    /// `GITS_CREADR.Stalled`: the ITS stopped on a command error.
    Stalled,
    /// DMA memory for a table could not be had.
    Memory(abi::Error),
    /// The redistributor would not take the LPI tables.
    Redistributor(InitError),
    /// The INTID is not one of this ITS's LPIs, or the DeviceID is out of range.
    OutOfRange,
    /// No event of a device maps to this LPI.
    NotMapped,
    /// `MAX_DEVICES` DeviceIDs already have ITTs.
    TooManyDevices,
}

impl core::fmt::Display for ItsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            ItsError::BadTyper(typer) => write!(
                f,
                "GITS_TYPER {typer:#x} rules it out (no physical LPIs, or too few ID bits)"
            ),
            ItsError::BadConfig => write!(f, "the kernel asked for an unusable number of LPIs"),
            ItsError::LpiRangeTooSmall => {
                write!(f, "the distributor's INTID bits cannot hold the LPIs")
            }
            ItsError::MissingTable => write!(f, "it lacks a device or collection table"),
            ItsError::TableTooLarge => write!(f, "a table would be too large"),
            ItsError::TableRejected(n, got) => {
                write!(
                    f,
                    "GITS_BASER{n} did not keep its value (read back {got:#x})"
                )
            }
            ItsError::NotQuiescent => write!(f, "it did not become quiescent when disabled"),
            ItsError::CommandTimeout => write!(f, "it did not process its commands in time"),
            ItsError::Stalled => write!(f, "it stopped on a command error"),
            ItsError::Memory(e) => write!(f, "no memory for its tables: {e}"),
            ItsError::Redistributor(e) => {
                write!(f, "the redistributor would not take the LPI tables: {e}")
            }
            ItsError::OutOfRange => write!(f, "the LPI or DeviceID is out of range"),
            ItsError::NotMapped => write!(f, "no device event maps to that LPI"),
            ItsError::TooManyDevices => write!(f, "too many devices already have tables"),
        }
    }
}

impl From<abi::Error> for ItsError {
    fn from(e: abi::Error) -> Self {
        ItsError::Memory(e)
    }
}

struct ItsDevice<B> {
    id: u32,
    _itt: B,
}

struct State<B> {
    queue: B,
    /// Next free slot (command index) in the queue.
    cwriter: usize,
    prop: B,
    _pending: B,
    _tables: [Option<B>; 8],
    devices: heapless::Vec<ItsDevice<B>, MAX_DEVICES>,
    /// DeviceID whose event `i` (= LPI 8192 + i) is mapped.
    events: [Option<u32>; MAX_LPIS],
}

/// One GICv3 ITS with the LPI tables of the boot CPU's redistributor.
///
/// The ITS and the redistributor keep using its tables, queue and ITTs for as long
/// as they are enabled, so the kernel keeps the value in a `static` for good
/// (dropping it would free memory the GIC may still write).
pub struct Its<R: Registers + Sync, H: DmaHal + 'static, M: IrqMaskOps> {
    regs: R,
    hal: &'static H,
    gic: &'static GicV3,
    lpis: u32,
    event_bits: u8,
    itt_bytes: usize,
    device_ids: u32,
    target: u64,
    poll_limit: u32,
    state: IrqSafe<State<H::Buffer>, M>,
    failures: AtomicU32,
    commands: AtomicU64,
    /// The one LPI `IrqControl` of this ITS (`caps::irq::ControlToken`).
    claim: caps::irq::ControlClaim,
}

impl<R: Registers + Sync, H: DmaHal + 'static, M: IrqMaskOps> Its<R, H, M> {
    /// Probes and enables the ITS behind `regs`, enables LPIs on the calling CPU's
    /// redistributor of `gic`, and maps collection 0 to it. Tables come from `hal`.
    pub fn new(
        regs: R,
        hal: &'static H,
        gic: &'static GicV3,
        config: ItsConfig,
    ) -> Result<Self, ItsError> {
        if config.lpis == 0 || config.lpis as usize > MAX_LPIS {
            return Err(ItsError::BadConfig);
        }
        let typer = GitsTyper::from_bits(regs.read64(GITS_TYPER));
        check_typer(typer, config.lpis)?;
        let lpi_bits = bits_for(u64::from(FIRST_LPI + config.lpis));
        if gic.lpi_id_bits().is_none_or(|b| b < lpi_bits) {
            return Err(ItsError::LpiRangeTooSmall);
        }
        quiesce(&regs, config.poll_limit)?;
        let event_bits = bits_for(u64::from(config.lpis)) as u8;
        let entry = usize::from(typer.itt_entry_size()) + 1;
        let device_ids = config
            .device_ids
            .clamp(1, 1u32 << (u32::from(typer.devbits()) + 1).min(31));

        // Everything that can fail on our side comes before anything is enabled, so an
        // error here frees memory no device has been told about.
        let (prop, pending) = lpi_tables(hal, lpi_bits, config.lpis)?;
        let tables = setup_tables(&regs, hal, typer, u64::from(device_ids))?;
        let queue = hal.allocate(QUEUE_BYTES, QUEUE_BYTES, u64::MAX)?;
        regs.write64(GITS_CBASER, cbaser(queue.paddr(), QUEUE_BYTES / 4096));
        regs.write64(GITS_CWRITER, 0);
        let target = gic
            .try_enable_lpis(
                propbaser(prop.paddr(), lpi_bits),
                pendbaser(pending.paddr()),
            )
            .map_err(ItsError::Redistributor)?;
        regs.write32(GITS_CTLR, CTLR_ENABLED);

        let its = Its {
            regs,
            hal,
            gic,
            lpis: config.lpis,
            event_bits,
            itt_bytes: (entry << event_bits).max(256),
            device_ids,
            target: u64::from(target),
            poll_limit: config.poll_limit,
            state: IrqSafe::new(State {
                queue,
                cwriter: 0,
                prop,
                _pending: pending,
                _tables: tables,
                devices: heapless::Vec::new(),
                events: [None; MAX_LPIS],
            }),
            failures: AtomicU32::new(0),
            commands: AtomicU64::new(0),
            claim: caps::irq::ControlClaim::new(),
        };
        let cmds = [
            Command::mapc(ICID, its.target, true),
            Command::invall(ICID),
            Command::sync(its.target),
        ];
        let mapped = its.submit(&mut its.state.lock(), &cmds);
        if let Err(e) = mapped {
            // The ITS and the redistributor are enabled and own the tables now: never
            // give their memory back.
            core::mem::forget(its);
            return Err(e);
        }
        Ok(its)
    }

    /// The doorbell devices write: the ITS's physical base + `GITS_TRANSLATER`.
    pub const fn doorbell_address(its_phys: u64) -> u64 {
        its_phys + GITS_TRANSLATER as u64
    }

    /// This ITS's LPIs as an MSI range: messages `{ doorbell, EventID }`. The LPI
    /// `IrqControl` turns it into the vector allocator (`IrqControl::msi_vectors`).
    pub fn msi_range(&self, its_phys: u64) -> MsiRange {
        MsiRange {
            base: FIRST_LPI,
            count: self.lpis,
            doorbell: Self::doorbell_address(its_phys),
            data: MsiData::Index,
        }
    }

    /// LPIs handed out, from INTID 8192.
    pub fn lpis(&self) -> u32 {
        self.lpis
    }

    /// Commands that failed (timeouts, stalls) since boot, including those the
    /// `IrqChip` methods could not report.
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Commands the ITS consumed since boot.
    pub fn commands(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    fn index(&self, intid: u32) -> Option<usize> {
        let i = intid.checked_sub(FIRST_LPI)?;
        (i < self.lpis).then_some(i as usize)
    }

    /// Maps event (`intid` − 8192) of `device` to LPI `intid` on the boot CPU's
    /// collection: MAPD with a fresh ITT the first time the DeviceID is seen, then
    /// MAPTI, INV, SYNC. A previous mapping of the event is discarded first.
    pub fn map_vector(&self, device: u32, intid: u32) -> Result<(), ItsError> {
        let event = self.index(intid).ok_or(ItsError::OutOfRange)?;
        if device >= self.device_ids {
            return Err(ItsError::OutOfRange);
        }
        let known = |st: &State<H::Buffer>| st.devices.iter().any(|d| d.id == device);
        // Allocate outside the lock: the frame allocator has its own.
        let itt = if known(&self.state.lock()) {
            None
        } else {
            Some(self.hal.allocate(self.itt_bytes, 256, u64::MAX)?)
        };
        let mut st = self.state.lock();
        let mut cmds: heapless::Vec<Command, 5> = heapless::Vec::new();
        if !known(&st) {
            let itt = itt.ok_or(ItsError::NotMapped)?;
            self.hal.sync_for_device(&itt);
            let _ = cmds.push(Command::mapd(device, self.event_bits, itt.paddr(), true));
            st.devices
                .push(ItsDevice {
                    id: device,
                    _itt: itt,
                })
                .map_err(|_| ItsError::TooManyDevices)?;
        }
        if let Some(old) = st.events[event] {
            let _ = cmds.push(Command::discard(old, event as u32));
        }
        let _ = cmds.push(Command::mapti(device, event as u32, intid, ICID));
        let _ = cmds.push(Command::inv(device, event as u32));
        let _ = cmds.push(Command::sync(self.target));
        st.events[event] = Some(device);
        self.submit(&mut st, &cmds)
    }

    /// Unmaps LPI `intid` (DISCARD, which also drops a pending interrupt) and
    /// disables it; `NotMapped` if no event maps to it.
    pub fn unmap_vector(&self, intid: u32) -> Result<(), ItsError> {
        let event = self.index(intid).ok_or(ItsError::OutOfRange)?;
        let mut st = self.state.lock();
        st.prop.bytes_mut()[event] &= !LPI_ENABLE;
        self.hal.sync_for_device(&st.prop);
        let device = st.events[event].take().ok_or(ItsError::NotMapped)?;
        let cmds = [
            Command::discard(device, event as u32),
            Command::sync(self.target),
        ];
        self.submit(&mut st, &cmds)
    }

    /// Makes LPI `intid` pending as its device's MSI would (`INT`; tests).
    pub fn raise(&self, intid: u32) -> Result<(), ItsError> {
        let event = self.index(intid).ok_or(ItsError::OutOfRange)?;
        let mut st = self.state.lock();
        let device = st.events[event].ok_or(ItsError::NotMapped)?;
        let cmds = [
            Command::int(device, event as u32),
            Command::sync(self.target),
        ];
        self.submit(&mut st, &cmds)
    }

    /// The quiet check of LPIs raised by [`Its::raise`] (tests), which have no device
    /// behind them: the ITS itself is their source.
    pub fn int_source(&self) -> IntSource<'_, R, H, M> {
        IntSource { its: self }
    }

    /// Whether `device` has its ITT already (a MAPD was issued for it).
    pub fn has_device(&self, device: u32) -> bool {
        self.state.lock().devices.iter().any(|d| d.id == device)
    }

    /// The DeviceID event (`intid` − 8192) is mapped for, if any.
    pub fn mapped_device(&self, intid: u32) -> Option<u32> {
        self.state.lock().events[self.index(intid)?]
    }

    /// Whether LPI `intid`'s enable bit is set in the property table.
    pub fn is_enabled(&self, intid: u32) -> bool {
        self.index(intid)
            .is_some_and(|i| self.state.lock().prop.bytes()[i] & LPI_ENABLE != 0)
    }

    /// Sets LPI `intid`'s property byte through `f` and makes the redistributor
    /// reload it (INV + SYNC when mapped). Bounded; runs in interrupt context.
    fn update_property(&self, intid: u32, f: impl FnOnce(u8) -> u8) {
        let Some(event) = self.index(intid) else {
            return;
        };
        let mut st = self.state.lock();
        let byte = &mut st.prop.bytes_mut()[event];
        *byte = f(*byte);
        self.hal.sync_for_device(&st.prop);
        if let Some(device) = st.events[event] {
            let cmds = [
                Command::inv(device, event as u32),
                Command::sync(self.target),
            ];
            let _ = self.submit(&mut st, &cmds);
        }
    }

    /// Writes `cmds` to the queue, publishes `GITS_CWRITER` and waits (bounded)
    /// until `GITS_CREADR` has caught up. The queue wraps; a batch larger than
    /// the free space is published in parts.
    fn submit(&self, st: &mut State<H::Buffer>, cmds: &[Command]) -> Result<(), ItsError> {
        let slots = st.queue.len() / COMMAND_BYTES;
        for c in cmds {
            let next = (st.cwriter + 1) % slots;
            if next == self.read_slot() {
                self.publish(st)?;
            }
            let off = st.cwriter * COMMAND_BYTES;
            st.queue.bytes_mut()[off..off + COMMAND_BYTES].copy_from_slice(&c.to_bytes());
            st.cwriter = next;
        }
        self.publish(st)?;
        self.commands
            .fetch_add(cmds.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn read_slot(&self) -> usize {
        (self.regs.read64(GITS_CREADR) & QUEUE_OFFSET_MASK) as usize / COMMAND_BYTES
    }

    fn publish(&self, st: &State<H::Buffer>) -> Result<(), ItsError> {
        self.hal.sync_for_device(&st.queue);
        let target = (st.cwriter * COMMAND_BYTES) as u64;
        self.regs.write64(GITS_CWRITER, target);
        for _ in 0..self.poll_limit {
            let r = self.regs.read64(GITS_CREADR);
            if r & CREADR_STALLED != 0 {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(ItsError::Stalled);
            }
            if r & QUEUE_OFFSET_MASK == target {
                return Ok(());
            }
            spin_loop();
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        Err(ItsError::CommandTimeout)
    }
}

/// The source of LPIs made pending by `INT` commands ([`Its::int_source`]).
pub struct IntSource<'a, R: Registers + Sync, H: DmaHal + 'static, M: IrqMaskOps> {
    its: &'a Its<R, H, M>,
}

// SAFETY: an `INT` command is the whole of such an LPI's source: once the ITS has consumed
// every command written (`GITS_CREADR` has caught up with `GITS_CWRITER` and is not
// stalled, IHI 0069H §12.19.4), each `INT` has made its LPI pending at the redistributor,
// where it stays latched while masked and fires on unmask. `is_quiet` reads both registers.
unsafe impl<R: Registers + Sync, H: DmaHal + 'static, M: IrqMaskOps> caps::quiet::QuietCheck
    for IntSource<'_, R, H, M>
{
    fn is_quiet(&self, _: &caps::quiet::Seal) -> bool {
        let regs = &self.its.regs;
        let read = regs.read64(GITS_CREADR);
        read & CREADR_STALLED == 0
            && read & QUEUE_OFFSET_MASK == regs.read64(GITS_CWRITER) & QUEUE_OFFSET_MASK
    }
}

/// LPIs are the capability layer's `IrqChip` for the LPI `IrqControl`: mask and
/// unmask flip the property byte's enable bit (INV + SYNC), EOI is the CPU
/// interface's priority drop (LPIs have no active state).
// SAFETY: `mask` clears the LPI's enable bit in the property table and waits (bounded) for
// INV + SYNC to complete, after which the redistributor no longer forwards it (IHI 0069H
// §5.1.2; an ITS that stops consuming commands is counted in `failures`); `unmask` sets it
// and leaves the pending table alone, so an LPI that arrived meanwhile fires; the claim is a
// field of the one `Its` per ITS (the kernel keeps it in a static for good).
unsafe impl<R: Registers + Sync, H: DmaHal + 'static, M: IrqMaskOps> IrqChip for Its<R, H, M>
where
    H::Buffer: Send,
{
    fn control_claim(&self) -> &caps::irq::ControlClaim {
        &self.claim
    }

    fn mask(&self, intid: u32) {
        self.update_property(intid, |b| b & !LPI_ENABLE);
    }

    fn unmask(&self, intid: u32) {
        self.update_property(intid, |b| b | LPI_ENABLE);
    }

    fn configure(&self, intid: u32, _trigger: Trigger) {
        // LPIs are edge-only; only the priority is configurable.
        self.update_property(intid, |b| {
            (DEFAULT_PRIORITY & 0xfc) | LPI_RES1 | (b & LPI_ENABLE)
        });
    }

    fn eoi(&self, intid: u32) {
        InterruptController::eoi(self.gic, intid);
    }
}

#[cfg(test)]
mod tests {
    use super::cmd::Opcode;
    use super::fake::*;
    use super::*;
    use crate::mmio::fake;
    use caps::fakes::FakeCpu;
    use std::vec::Vec;

    type TestIts = Its<&'static FakeIts, HostHal, FakeCpu>;

    const CONFIG: ItsConfig = ItsConfig {
        lpis: 256,
        device_ids: 1 << 16,
        poll_limit: 1000,
    };

    fn its_with(
        typer: u64,
        baser: [u64; 8],
        ro: u64,
    ) -> (Result<TestIts, ItsError>, &'static FakeIts) {
        let (fake, bus) = fake_its(typer, baser, ro);
        let (gic, _) = gic(true, false);
        (Its::new(fake, hal(&bus), gic, CONFIG), fake)
    }

    fn qemu() -> (TestIts, &'static FakeIts) {
        let mut baser = [0; 8];
        baser[0] = qemu_baser(1);
        baser[1] = qemu_baser(4);
        let (its, fake) = its_with(qemu_typer().into_bits(), baser, TYPE_AND_ENTRY);
        (its.unwrap(), fake)
    }

    fn ops(fake: &FakeIts) -> Vec<u8> {
        fake.st
            .lock()
            .unwrap()
            .log
            .iter()
            .map(Command::opcode)
            .collect()
    }

    #[test]
    fn init_programs_tables_queue_and_collection() {
        let (fake, bus) = {
            let mut baser = [0; 8];
            baser[0] = qemu_baser(1);
            baser[1] = qemu_baser(4);
            fake_its(qemu_typer().into_bits(), baser, TYPE_AND_ENTRY)
        };
        let (gic, mem) = gic(true, false);
        let its: TestIts = Its::new(fake, hal(&bus), gic, CONFIG).unwrap();
        let st = fake.st.lock().unwrap();
        let dt = GitsBaser::from_bits(st.baser[0]);
        assert!(dt.valid() && !dt.indirect());
        assert_eq!(dt.page_bytes(), 4096);
        assert_eq!(usize::from(dt.size()) + 1, (1 << 16) * 8 / 4096);
        assert_eq!((dt.pa() << 12) % 4096, 0);
        let ct = GitsBaser::from_bits(st.baser[1]);
        assert!(ct.valid() && ct.size() == 0);
        assert_eq!(st.cbaser >> 63, 1);
        assert_eq!(st.ctlr, CTLR_ENABLED);
        assert_eq!(
            st.collections.get(&0),
            Some(&0),
            "collection 0 on processor 0"
        );
        drop(st);
        assert_eq!(ops(fake), [0x09, 0x0d, 0x05]);
        // The redistributor got both tables and LPIs are on.
        assert_eq!(fake::r32(mem, 0x1_0000) & 1, 1, "EnableLPIs");
        let prop = u64::from(fake::r32(mem, 0x1_0070)) | u64::from(fake::r32(mem, 0x1_0074)) << 32;
        assert_eq!(prop & 0x1f, 13, "14 INTID bits cover 8192 + 256");
        let pend = u64::from(fake::r32(mem, 0x1_0078)) | u64::from(fake::r32(mem, 0x1_007c)) << 32;
        assert_eq!(pend >> 62, 1, "PTZ: the table is zeroed");
        assert_ne!(pend & 0x000f_ffff_ffff_0000, 0);
        let prop_table = bus_read(&bus, prop & 0x000f_ffff_ffff_f000, 256);
        assert!(
            prop_table.iter().all(|&b| b == 0xa2),
            "priority 0xa0, RES1, disabled"
        );
        assert_eq!(its.commands(), 3);
        assert_eq!(its.failures(), 0);
        let range = its.msi_range(0x0808_0000);
        assert_eq!(
            (range.base, range.count, range.data),
            (8192, 256, MsiData::Index)
        );
        assert_eq!(range.doorbell, 0x0809_0040);
        assert_eq!(TestIts::doorbell_address(0x0808_0000), 0x0809_0040);
    }

    #[test]
    fn map_vector_maps_each_device_once() {
        let (its, fake) = qemu();
        its.map_vector(0x10, 8192).unwrap();
        its.map_vector(0x10, 8200).unwrap();
        its.map_vector(0x30, 8193).unwrap();
        let st = fake.st.lock().unwrap();
        assert_eq!(st.devices.len(), 2);
        let (itt, bits) = st.devices[&0x10];
        assert_eq!((itt % 256, bits), (0, 8));
        assert_ne!(st.devices[&0x30].0, itt, "one ITT per device");
        assert_eq!(st.maps[&(0x10, 8)], (8200, 0));
        assert_eq!(st.maps[&(0x30, 1)], (8193, 0));
        drop(st);
        let mapd = Opcode::Mapd as u8;
        assert_eq!(ops(fake).iter().filter(|&&o| o == mapd).count(), 2);
        assert_eq!(its.mapped_device(8200), Some(0x10));
        // Remapping an event to another device discards the old translation first.
        its.map_vector(0x30, 8200).unwrap();
        let st = fake.st.lock().unwrap();
        assert!(!st.maps.contains_key(&(0x10, 8)));
        assert_eq!(st.maps[&(0x30, 8)], (8200, 0));
    }

    #[test]
    fn mask_and_unmask_flip_the_enable_bit_then_inv_and_sync() {
        let (its, fake) = qemu();
        its.map_vector(0x10, 8195).unwrap();
        let before = ops(fake).len();
        IrqChip::unmask(&its, 8195);
        assert!(its.is_enabled(8195));
        IrqChip::mask(&its, 8195);
        assert!(!its.is_enabled(8195));
        let inv = Opcode::Inv as u8;
        assert_eq!(&ops(fake)[before..], [inv, 0x05, inv, 0x05]);
        // An LPI no device maps yet changes only its byte; out-of-range INTIDs are ignored.
        IrqChip::unmask(&its, 8196);
        IrqChip::mask(&its, 100);
        IrqChip::unmask(&its, 8192 + 256);
        assert!(its.is_enabled(8196));
        assert_eq!(ops(fake).len(), before + 4);
    }

    #[test]
    fn unmap_discards_and_raise_needs_a_mapping() {
        let (its, fake) = qemu();
        its.map_vector(0x08, 8192).unwrap();
        its.raise(8192).unwrap();
        assert_eq!(fake.st.lock().unwrap().raised, [8192]);
        IrqChip::unmask(&its, 8192);
        its.unmap_vector(8192).unwrap();
        assert!(!its.is_enabled(8192), "a freed vector stays disabled");
        assert!(fake.st.lock().unwrap().maps.is_empty());
        assert!(ops(fake).contains(&(Opcode::Discard as u8)));
        assert_eq!(its.unmap_vector(8192), Err(ItsError::NotMapped));
        assert_eq!(its.raise(8192), Err(ItsError::NotMapped));
    }

    #[test]
    fn bad_intids_and_device_ids_are_errors() {
        let (its, _) = qemu();
        assert_eq!(its.map_vector(1, 100), Err(ItsError::OutOfRange));
        assert_eq!(its.map_vector(1, 8192 + 256), Err(ItsError::OutOfRange));
        assert_eq!(its.map_vector(1 << 16, 8192), Err(ItsError::OutOfRange));
        assert_eq!(its.unmap_vector(7), Err(ItsError::OutOfRange));
    }

    #[test]
    fn queue_wraps_and_every_command_is_consumed_in_order() {
        let (its, fake) = qemu();
        for round in 0..100u32 {
            let intid = 8192 + round % 256;
            its.map_vector(round % 4, intid).unwrap();
            IrqChip::unmask(&its, intid);
            its.unmap_vector(intid).unwrap();
        }
        let st = fake.st.lock().unwrap();
        // 100 rounds of >= 8 commands: the 128-slot queue wrapped several times.
        assert!(st.log.len() > 3 * 128, "{} commands", st.log.len());
        assert_eq!(st.creadr, st.cwriter);
        assert!(st.maps.is_empty());
        assert_eq!(its.commands() as usize, st.log.len());
        assert_eq!(its.failures(), 0);
    }

    #[test]
    fn creadr_that_never_moves_is_a_timeout_not_a_hang() {
        let (its, fake) = qemu();
        fake.st.lock().unwrap().hang = true;
        assert_eq!(its.map_vector(2, 8192), Err(ItsError::CommandTimeout));
        IrqChip::mask(&its, 8192); // from the ISR: bounded too, counted
        assert_eq!(its.failures(), 2);
        fake.st.lock().unwrap().stall_next = true;
        fake.st.lock().unwrap().hang = false;
        assert_eq!(its.raise(8192), Err(ItsError::Stalled));
    }

    #[test]
    fn int_source_is_quiet_once_every_command_was_consumed() {
        use caps::quiet::peek;
        let (its, fake) = qemu();
        its.map_vector(2, 8192).unwrap();
        assert!(peek(&its.int_source()), "queue drained");
        fake.st.lock().unwrap().hang = true;
        assert_eq!(its.raise(8192), Err(ItsError::CommandTimeout));
        assert!(!peek(&its.int_source()), "an INT not yet consumed");
        fake.st.lock().unwrap().hang = false;
        fake.st.lock().unwrap().stall_next = true;
        assert_eq!(its.raise(8192), Err(ItsError::Stalled));
        assert!(!peek(&its.int_source()), "a stalled queue is never quiet");
    }

    #[test]
    fn hostile_typer_values_are_errors() {
        let mut baser = [0; 8];
        baser[0] = qemu_baser(1);
        baser[1] = qemu_baser(4);
        let q = qemu_typer();
        for typer in [
            0,
            u64::MAX,
            q.with_physical(false).into_bits(),
            q.with_pta(true).into_bits(),
            q.with_id_bits(3).into_bits(), // 4 EventID bits < the 8 for 256 LPIs
        ] {
            let (r, _) = its_with(typer, baser, TYPE_AND_ENTRY);
            assert_eq!(r.err(), Some(ItsError::BadTyper(typer)), "{typer:#x}");
        }
        // A tiny Devbits only shrinks the device table.
        let (its, fake) = its_with(q.with_devbits(3).into_bits(), baser, TYPE_AND_ENTRY);
        let its = its.unwrap();
        assert_eq!(
            GitsBaser::from_bits(fake.st.lock().unwrap().baser[0]).size(),
            0
        );
        assert_eq!(its.map_vector(16, 8192), Err(ItsError::OutOfRange));
    }

    #[test]
    fn unusable_tables_are_errors() {
        let q = qemu_typer().into_bits();
        // No device table at all.
        let (r, _) = its_with(q, [qemu_baser(4), 0, 0, 0, 0, 0, 0, 0], TYPE_AND_ENTRY);
        assert_eq!(r.err(), Some(ItsError::MissingTable));
        // No collection table and HCC = 0.
        let (r, _) = its_with(q, [qemu_baser(1), 0, 0, 0, 0, 0, 0, 0], TYPE_AND_ENTRY);
        assert_eq!(r.err(), Some(ItsError::MissingTable));
        // 32-byte device entries for 65536 devices in 4 KiB pages: 512 pages > 256.
        let fat = GitsBaser::from_bits(qemu_baser(1))
            .with_entry_size(31)
            .into_bits();
        let mut b = [0; 8];
        b[0] = fat;
        b[1] = qemu_baser(4);
        let ro = TYPE_AND_ENTRY | (0b11 << 8);
        let fat4k = GitsBaser::from_bits(fat).with_page_size(0).into_bits();
        let (r, _) = its_with(q, [fat4k, b[1], 0, 0, 0, 0, 0, 0], ro);
        assert_eq!(r.err(), Some(ItsError::TableTooLarge));
        // The same with a fixed 64 KiB page size fits (32 pages).
        let (r, fake) = its_with(q, b, ro);
        assert!(r.is_ok());
        assert_eq!(
            GitsBaser::from_bits(fake.st.lock().unwrap().baser[0]).size(),
            31
        );
        // A BASER that drops Valid is rejected.
        let (r, _) = its_with(
            q,
            [qemu_baser(1), qemu_baser(4), 0, 0, 0, 0, 0, 0],
            TYPE_AND_ENTRY | 1 << 63,
        );
        assert!(matches!(r.err(), Some(ItsError::TableRejected(0, _))));
        // HCC collections and a vPE table (left alone) are fine.
        let hcc = qemu_typer().with_hcc(4).into_bits();
        let (r, _) = its_with(
            hcc,
            [qemu_baser(2), qemu_baser(1), 0, 0, 0, 0, 0, 0],
            TYPE_AND_ENTRY,
        );
        assert!(r.is_ok());
    }

    #[test]
    fn redistributor_without_lpis_or_already_enabled_is_an_error() {
        let mut baser = [0; 8];
        baser[0] = qemu_baser(1);
        baser[1] = qemu_baser(4);
        let (fake, bus) = fake_its(qemu_typer().into_bits(), baser, TYPE_AND_ENTRY);
        let (no_lpis, _) = gic(false, false);
        let r: Result<TestIts, _> = Its::new(fake, hal(&bus), no_lpis, CONFIG);
        assert_eq!(r.err(), Some(ItsError::LpiRangeTooSmall));
        let (enabled, _) = gic(true, true);
        let r: Result<TestIts, _> = Its::new(fake, hal(&bus), enabled, CONFIG);
        assert_eq!(
            r.err(),
            Some(ItsError::Redistributor(InitError::LpisAlreadyEnabled))
        );
        assert_eq!(
            fake.st.lock().unwrap().ctlr,
            0,
            "ITS left disabled on error"
        );
        let bad = ItsConfig { lpis: 0, ..CONFIG };
        let (gic, _) = gic(true, false);
        let r: Result<TestIts, _> = Its::new(fake, hal(&bus), gic, bad);
        assert_eq!(r.err(), Some(ItsError::BadConfig));
    }

    #[test]
    fn errors_read_as_words() {
        use std::string::ToString;
        assert_eq!(
            ItsError::CommandTimeout.to_string(),
            "it did not process its commands in time"
        );
        assert_eq!(
            ItsError::Redistributor(InitError::LpisAlreadyEnabled).to_string(),
            "the redistributor would not take the LPI tables: LPIs are already enabled \
             (firmware or a previous kernel left them on)"
        );
        assert_eq!(
            ItsError::TableRejected(1, 0x10).to_string(),
            "GITS_BASER1 did not keep its value (read back 0x10)"
        );
    }
}
