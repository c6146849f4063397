//! A host model of a GICv3 ITS (QEMU `hw/intc/arm_gicv3_its.c`) for the tests.
//!
//! Writing `GITS_CWRITER` makes the model read the command queue from "the bus"
//! (each DMA buffer as of its last `sync_for_device`, so a driver that forgets
//! the barrier reads stale commands) and apply MAPD/MAPC/MAPTI/DISCARD/INT like
//! QEMU, asserting on commands QEMU would reject. `hang` keeps `GITS_CREADR`
//! still and `stall_next` sets `Stalled`, for the error paths.

use std::boxed::Box;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

use caps::dma::{DmaBuffer, DmaHal};
use caps::fakes::FakeBuffer;

use super::cmd::{COMMAND_BYTES, Command, Opcode};
use super::regs::*;
use crate::irqchip::GicV3;
use crate::mmio::{Registers, fake};

/// What devices see of RAM: each buffer's contents as of its last
/// `sync_for_device` (a driver that forgets the sync is caught).
pub(super) type Bus = Arc<Mutex<BTreeMap<u64, Vec<u8>>>>;

pub(super) struct HostHal {
    next: Mutex<u64>,
    bus: Bus,
}

// SAFETY: host memory registered on the fake bus by address for the fake ITS to read;
// addresses are unique, and nothing has a cache.
unsafe impl DmaHal for HostHal {
    type Buffer = FakeBuffer;
    fn allocate(&self, len: usize, align: usize, _mask: u64) -> Result<FakeBuffer, abi::Error> {
        let mut next = self.next.lock().unwrap();
        let paddr = next.next_multiple_of(align as u64);
        *next = paddr + len as u64;
        Ok(FakeBuffer::new(paddr, len))
    }
    fn sync_for_device(&self, buf: &FakeBuffer) {
        self.bus
            .lock()
            .unwrap()
            .insert(buf.paddr(), buf.bytes().to_vec());
    }
    fn sync_for_cpu(&self, _: &FakeBuffer) {}
    fn quarantine(&self, _: FakeBuffer) {}
}

/// Reads `len` bytes at bus address `addr` (zero where nothing was synced).
pub(super) fn bus_read(bus: &Bus, addr: u64, len: usize) -> Vec<u8> {
    let bus = bus.lock().unwrap();
    match bus.range(..=addr).next_back() {
        Some((&base, data)) if addr + len as u64 <= base + data.len() as u64 => {
            let off = (addr - base) as usize;
            data[off..off + len].to_vec()
        }
        _ => std::vec![0; len],
    }
}

#[derive(Default)]
pub(super) struct FakeState {
    pub typer: u64,
    pub ctlr: u32,
    pub cbaser: u64,
    pub cwriter: u64,
    pub creadr: u64,
    pub baser: [u64; 8],
    /// Bits of each `GITS_BASER` the guest cannot change.
    pub baser_ro: u64,
    pub log: Vec<Command>,
    pub hang: bool,
    pub stall_next: bool,
    pub devices: BTreeMap<u32, (u64, u64)>,
    pub collections: BTreeMap<u64, u64>,
    pub maps: BTreeMap<(u32, u64), (u64, u64)>,
    pub raised: Vec<u64>,
}

/// An ITS that decodes its command queue from the bus when `GITS_CWRITER`
/// is written, keeping its translations like QEMU's `arm_gicv3_its.c`.
pub(super) struct FakeIts {
    pub st: Mutex<FakeState>,
    pub bus: Bus,
}

impl FakeState {
    fn process(&mut self, bus: &Bus) {
        let base = self.cbaser & 0x000f_ffff_ffff_f000;
        let size = ((self.cbaser & 0xff) + 1) * 4096;
        while self.creadr != self.cwriter {
            if self.stall_next {
                self.stall_next = false;
                self.creadr |= CREADR_STALLED;
                return;
            }
            let raw = bus_read(bus, base + self.creadr, COMMAND_BYTES);
            let c = Command::from_bytes(raw.as_slice().try_into().unwrap());
            self.apply(c);
            self.log.push(c);
            self.creadr = (self.creadr + COMMAND_BYTES as u64) % size;
        }
    }

    fn apply(&mut self, c: Command) {
        let dev = (c.0[0] >> 32) as u32;
        let event = c.0[1] & 0xffff_ffff;
        match c.opcode() {
            op if op == Opcode::Mapd as u8 => {
                if c.0[2] >> 63 == 1 {
                    let size = (c.0[1] & 0x1f) + 1;
                    assert!(size <= u64::from(GitsTyper::from_bits(self.typer).id_bits()) + 1);
                    self.devices
                        .insert(dev, (c.0[2] & 0x000f_ffff_ffff_ff00, size));
                } else {
                    self.devices.remove(&dev);
                }
            }
            op if op == Opcode::Mapc as u8 => {
                self.collections
                    .insert(c.0[2] & 0xffff, (c.0[2] >> 16) & ((1 << 35) - 1));
            }
            op if op == Opcode::Mapti as u8 => {
                let (_, bits) = self.devices[&dev];
                assert!(event < 1 << bits, "EventID beyond the ITT");
                assert!(self.collections.contains_key(&(c.0[2] & 0xffff)));
                self.maps
                    .insert((dev, event), (c.0[1] >> 32, c.0[2] & 0xffff));
            }
            op if op == Opcode::Discard as u8 => {
                self.maps.remove(&(dev, event));
            }
            op if op == Opcode::Int as u8 => {
                self.raised.push(self.maps[&(dev, event)].0);
            }
            op if op == Opcode::Inv as u8 => {
                assert!(
                    self.maps.contains_key(&(dev, event)),
                    "INV of an unmapped event"
                );
            }
            _ => {}
        }
    }
}

impl Registers for &'static FakeIts {
    fn read32(&self, offset: usize) -> u32 {
        match offset {
            GITS_CTLR => {
                let st = self.st.lock().unwrap();
                st.ctlr
                    | if st.ctlr & CTLR_ENABLED == 0 {
                        CTLR_QUIESCENT
                    } else {
                        0
                    }
            }
            _ => 0,
        }
    }
    fn write32(&self, offset: usize, value: u32) {
        let mut st = self.st.lock().unwrap();
        if offset == GITS_CTLR {
            st.ctlr = value & CTLR_ENABLED;
            st.creadr = 0;
        }
    }
    fn read64(&self, offset: usize) -> u64 {
        let st = self.st.lock().unwrap();
        match offset {
            GITS_TYPER => st.typer,
            GITS_CBASER => st.cbaser,
            GITS_CWRITER => st.cwriter,
            GITS_CREADR => st.creadr,
            o if (GITS_BASER..GITS_BASER + 64).contains(&o) => st.baser[(o - GITS_BASER) / 8],
            _ => 0,
        }
    }
    fn write64(&self, offset: usize, value: u64) {
        let mut st = self.st.lock().unwrap();
        match offset {
            GITS_CBASER => st.cbaser = value,
            GITS_CWRITER => {
                st.cwriter = value & QUEUE_OFFSET_MASK;
                if !st.hang && st.ctlr & CTLR_ENABLED != 0 {
                    st.process(&self.bus);
                }
            }
            o if (GITS_BASER..GITS_BASER + 64).contains(&o) => {
                let n = (o - GITS_BASER) / 8;
                st.baser[n] = (st.baser[n] & st.baser_ro) | (value & !st.baser_ro);
            }
            _ => {}
        }
    }
}

/// QEMU 7.2's ITS: 12-byte ITT entries, 16 EventID/DeviceID bits, device
/// table in BASER0 and collection table in BASER1 (8-byte entries, 64 KiB
/// pages by default but writable).
pub(super) fn qemu_typer() -> GitsTyper {
    GitsTyper::new()
        .with_physical(true)
        .with_itt_entry_size(11)
        .with_id_bits(15)
        .with_devbits(15)
        .with_cil(true)
        .with_cid_bits(15)
}

pub(super) fn qemu_baser(ty: u8) -> u64 {
    GitsBaser::new()
        .with_ty(ty)
        .with_entry_size(7)
        .with_page_size(2)
        .into_bits()
}

pub(super) const TYPE_AND_ENTRY: u64 = (0x7 << 56) | (0x1f << 48);

pub(super) fn fake_its(typer: u64, baser: [u64; 8], ro: u64) -> (&'static FakeIts, Bus) {
    let bus: Bus = Arc::default();
    let its = Box::leak(Box::new(FakeIts {
        st: Mutex::new(FakeState {
            typer,
            baser,
            baser_ro: ro,
            ..FakeState::default()
        }),
        bus: bus.clone(),
    }));
    (its, bus)
}

/// A GICv3 with LPIs (16 INTID bits) and one redistributor (affinity 0).
pub(super) fn gic(lpis: bool, enabled: bool) -> (&'static GicV3, &'static mut [fake::Frame]) {
    let mem = Box::leak(fake::frames(3));
    let typer = 0x08 | (15 << 19) | if lpis { 1 << 17 } else { 0 };
    fake::w32(mem, 0x4, typer);
    fake::w32(mem, 0xffe8, 0x3b);
    fake::w32(mem, 0x1_0000 + 0xffe8, 0x3b);
    fake::w64(mem, 0x1_0000 + 0x8, 0b1_0001);
    fake::w32(mem, 0x1_0000, u32::from(enabled));
    let base = fake::base(mem);
    // SAFETY: the leaked frames live forever and are used only through this driver
    // (the test reads them back through `fake::r32`).
    let gic = Box::leak(Box::new(unsafe {
        GicV3::new(base, base + 0x1_0000, 0x2_0000)
    }));
    (gic, mem)
}

pub(super) fn hal(bus: &Bus) -> &'static HostHal {
    Box::leak(Box::new(HostHal {
        next: Mutex::new(0x4000_0000),
        bus: bus.clone(),
    }))
}
