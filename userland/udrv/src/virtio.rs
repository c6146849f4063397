//! `udrv::virtio`: a granted virtio PCI function's modern transport, from user space.
//!
//! The kernel's virtio drivers already speak the modern virtio-pci interface through
//! `drivers::virtio` (virtio 1.2 §4.1): the vendor-capability walk that finds the common,
//! notify, ISR and device structures (`find_caps`, which treats the device's capabilities
//! as untrusted input), and `ModernTransport`, whose handshake (reset read back 0,
//! ACKNOWLEDGE, DRIVER, features with VERSION_1 required, FEATURES_OK read back, queue
//! setup with the MSI-X vector read back, DRIVER_OK) is tested there against fake devices.
//! A user driver reuses both rather than a second copy; what differs in user space is how
//! the function is reached, which is this module:
//!
//! - configuration space is read through `dev_cfg_read` ([`CfgSpace`]; writes stay the
//!   kernel's, so there are none),
//! - each structure's registers are an `mmio_map` of the whole pages that hold it
//!   ([`map_struct`]), and [`StructWindow`] confines accesses to the structure itself,
//!   reading all-ones and dropping writes outside it (offsets partly come from the device).
//!
//! [`probe`] takes the mapping as a closure, so the host tests put a register model of a
//! device behind the same code.

use core::fmt;

use abi::Error;
use drivers::pci::caps::CapListError;
use drivers::pci::config::{Bdf, ConfigAccess};
use drivers::virtio::pci::{CapLocation, cfg_type, find_caps};

/// The kernel's virtio-net header code (`parse_rx`: the header a device writes, checked
/// against the offloads negotiated) and its feature bits.
pub use drivers::virtio::net;
pub use drivers::virtio::{
    DEVICE_TYPE_NET, DeviceStatus, ModernTransport, NO_VECTOR, QueueSetup, RegWindow, Transport,
    TransportError, VENDOR_ID, feature,
};

use crate::{DevSys, Device, Mmio};

/// Page size of `mmio_map` windows.
const PAGE: u64 = 4096;

/// A function's configuration space as `drivers`' capability walk reads it: dword reads
/// through `dev_cfg_read`. A refused read reads all-ones, as an absent function does (the
/// walk then stops at a bad pointer); writes are ignored (configuration writes are the
/// kernel's, and the walk makes none).
pub struct CfgSpace<'a, B: DevSys>(pub &'a Device<B>);

impl<B: DevSys> ConfigAccess for CfgSpace<'_, B> {
    fn read32(&self, _bdf: Bdf, offset: u16) -> u32 {
        self.0.cfg_read(offset & 0xffc).unwrap_or(u32::MAX)
    }
    fn write32(&self, _bdf: Bdf, _offset: u16, _value: u32) {}
}

/// One virtio structure's registers: `len` bytes at `start` in a mapped window.
#[derive(Debug)]
pub struct StructWindow {
    mmio: Mmio,
    start: usize,
    len: usize,
}

impl StructWindow {
    /// The window offset of structure offset `off` for a `size`-byte access, if the access
    /// lies inside the structure and is aligned.
    fn at(&self, off: usize, size: usize) -> Option<usize> {
        let inside =
            off.is_multiple_of(size) && off.checked_add(size).is_some_and(|e| e <= self.len);
        let at = self.start.checked_add(off)?;
        (inside && self.mmio.fits(at, size)).then_some(at)
    }
}

impl RegWindow for StructWindow {
    fn len(&self) -> usize {
        self.len
    }
    fn read8(&self, off: usize) -> u8 {
        self.at(off, 1).map_or(u8::MAX, |a| self.mmio.read8(a))
    }
    fn read16(&self, off: usize) -> u16 {
        self.at(off, 2).map_or(u16::MAX, |a| self.mmio.read16(a))
    }
    fn read32(&self, off: usize) -> u32 {
        self.at(off, 4).map_or(u32::MAX, |a| self.mmio.read32(a))
    }
    fn write8(&self, off: usize, v: u8) {
        if let Some(a) = self.at(off, 1) {
            self.mmio.write8(a, v)
        }
    }
    fn write16(&self, off: usize, v: u16) {
        if let Some(a) = self.at(off, 2) {
            self.mmio.write16(a, v)
        }
    }
    fn write32(&self, off: usize, v: u32) {
        if let Some(a) = self.at(off, 4) {
            self.mmio.write32(a, v)
        }
    }
}

/// Maps the pages of BAR `loc.bar` that hold the structure at `loc` and confines a window
/// to it. `EINVAL` for an empty structure or one past 1 MiB (no virtio structure is that
/// large); the kernel refuses a range past the BAR (`EINVAL`) or over the MSI-X table
/// (`EACCES`).
pub fn map_struct<B: DevSys>(device: &Device<B>, loc: CapLocation) -> Result<StructWindow, Error> {
    if loc.length == 0 || loc.length > 1 << 20 {
        return Err(Error::EINVAL);
    }
    let first = u64::from(loc.offset) & !(PAGE - 1);
    let end = (u64::from(loc.offset) + u64::from(loc.length)).next_multiple_of(PAGE);
    let mmio = device.mmio(loc.bar, first, (end - first) as usize)?;
    Ok(StructWindow {
        mmio,
        start: (u64::from(loc.offset) - first) as usize,
        len: loc.length as usize,
    })
}

/// Why a function could not be brought to a transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeError {
    /// The capability list is broken (a loop, a pointer out of range).
    CapList(CapListError),
    /// Common, notify or ISR structure missing: not a modern virtio function.
    NotModern,
    /// Mapping the structure of `cfg_type` failed.
    Map {
        /// Its `cfg_type` (1 common, 2 notify, 3 ISR, 4 device).
        cfg_type: u8,
        /// The kernel's answer.
        error: Error,
    },
    /// The transport refused its windows (one shorter than its structure).
    Transport(TransportError),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::CapList(e) => write!(f, "broken capability list ({e:?})"),
            ProbeError::NotModern => write!(f, "no modern virtio capabilities"),
            ProbeError::Map { cfg_type, error } => {
                write!(f, "mapping virtio structure {cfg_type}: {error}")
            }
            ProbeError::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// Finds the function's virtio structures through its configuration space and builds the
/// modern transport over the windows `map(cfg_type, location)` returns for them (the
/// device-configuration structure only if the function has one).
pub fn probe<B: DevSys, R: RegWindow>(
    device: &Device<B>,
    mut map: impl FnMut(u8, CapLocation) -> Result<R, Error>,
) -> Result<ModernTransport<R>, ProbeError> {
    // The capability walk names functions by address; ours is the one the capability is.
    let bdf = Bdf::new(0, 0, 0).ok_or(ProbeError::NotModern)?;
    let found = find_caps(&CfgSpace(device), bdf).map_err(ProbeError::CapList)?;
    let (Some(common), Some(notify), Some(isr)) = (found.common, found.notify, found.isr) else {
        return Err(ProbeError::NotModern);
    };
    let mut mapped = |ty: u8, loc: CapLocation| {
        map(ty, loc).map_err(|error| ProbeError::Map {
            cfg_type: ty,
            error,
        })
    };
    let common = mapped(cfg_type::COMMON, common)?;
    let notify = mapped(cfg_type::NOTIFY, notify)?;
    let isr = mapped(cfg_type::ISR, isr)?;
    let dev = match found.device {
        Some(loc) => Some(mapped(cfg_type::DEVICE, loc)?),
        None => None,
    };
    ModernTransport::new(common, notify, isr, dev, found.notify_off_multiplier)
        .map_err(ProbeError::Transport)
}

/// [`probe`] with each structure mapped by [`map_struct`].
pub fn probe_mapped<B: DevSys>(
    device: &Device<B>,
) -> Result<ModernTransport<StructWindow>, ProbeError> {
    probe(device, |_, loc| map_struct(device, loc))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::vec::Vec;

    use super::*;
    use crate::fake::FakeKernel;

    const MAC: u64 = 1 << 5;
    const STATUS: u64 = 1 << 16;
    const MRG_RXBUF: u64 = 1 << 15;
    const CSUM: u64 = 1;

    /// One queue's registers.
    #[derive(Clone, Copy, Default, Debug)]
    struct Queue {
        max: u16,
        size: u16,
        vector: u16,
        enable: u16,
        notify_off: u16,
        addr: [u64; 3],
    }

    /// A modern virtio-net function's common, notify, ISR and device registers.
    #[derive(Default)]
    struct Model {
        status: u8,
        dfselect: u32,
        offered: u64,
        gfselect: u32,
        taken: u64,
        config_vector: u16,
        select: u16,
        queues: [Queue; 3],
        refuse_features: bool,
        refuse_vectors: bool,
        notified: Vec<(usize, u16)>,
        mac: [u8; 6],
    }

    impl Model {
        fn qemu() -> &'static RefCell<Model> {
            let mut m = Model {
                offered: feature::VERSION_1 | feature::EVENT_IDX | MAC | STATUS | MRG_RXBUF | CSUM,
                mac: [0x52, 0x54, 0, 0x12, 0x34, 0x56],
                ..Model::default()
            };
            for (i, q) in m.queues.iter_mut().enumerate() {
                q.max = 256;
                q.notify_off = i as u16;
                q.vector = NO_VECTOR;
            }
            std::boxed::Box::leak(std::boxed::Box::new(RefCell::new(m)))
        }
    }

    /// One structure of the model, as `probe`'s mapping returns it.
    struct Win {
        m: &'static RefCell<Model>,
        ty: u8,
        len: usize,
    }

    impl Win {
        fn read(&self, off: usize, size: usize) -> u64 {
            let m = self.m.borrow();
            let q = m
                .queues
                .get(usize::from(m.select))
                .copied()
                .unwrap_or_default();
            match (self.ty, off) {
                (cfg_type::COMMON, 0x00) => u64::from(m.dfselect),
                (cfg_type::COMMON, 0x04) => match m.dfselect {
                    0 => m.offered & 0xffff_ffff,
                    1 => m.offered >> 32,
                    _ => 0,
                },
                (cfg_type::COMMON, 0x10) => u64::from(m.config_vector),
                (cfg_type::COMMON, 0x12) => 3,
                (cfg_type::COMMON, 0x14) => u64::from(m.status),
                (cfg_type::COMMON, 0x16) => u64::from(m.select),
                (cfg_type::COMMON, 0x18) => u64::from(if q.size == 0 { q.max } else { q.size }),
                (cfg_type::COMMON, 0x1a) => u64::from(q.vector),
                (cfg_type::COMMON, 0x1c) => u64::from(q.enable),
                (cfg_type::COMMON, 0x1e) => u64::from(q.notify_off),
                (cfg_type::DEVICE, o @ 0..6) if size == 1 => u64::from(m.mac[o]),
                (cfg_type::DEVICE, 6) => 1,
                _ => 0,
            }
        }

        fn write(&self, off: usize, v: u64) {
            let mut m = self.m.borrow_mut();
            let sel = usize::from(m.select);
            let refuse = m.refuse_vectors;
            match (self.ty, off) {
                (cfg_type::COMMON, 0x00) => m.dfselect = v as u32,
                (cfg_type::COMMON, 0x08) => m.gfselect = v as u32,
                (cfg_type::COMMON, 0x0c) => {
                    let shift = 32 * m.gfselect;
                    m.taken = m.taken & !(0xffff_ffff << shift) | v << shift;
                }
                (cfg_type::COMMON, 0x10) => {
                    m.config_vector = if refuse { NO_VECTOR } else { v as u16 }
                }
                (cfg_type::COMMON, 0x14) => {
                    let mut s = v as u8;
                    if s == 0 {
                        *m = Model {
                            offered: m.offered,
                            mac: m.mac,
                            refuse_features: m.refuse_features,
                            refuse_vectors: m.refuse_vectors,
                            notified: core::mem::take(&mut m.notified),
                            queues: m.queues.map(|q| Queue {
                                max: q.max,
                                notify_off: q.notify_off,
                                vector: NO_VECTOR,
                                ..Queue::default()
                            }),
                            ..Model::default()
                        };
                    }
                    if m.refuse_features || m.taken & !m.offered != 0 {
                        s &= !(DeviceStatus::FEATURES_OK.bits());
                    }
                    m.status = s;
                }
                (cfg_type::COMMON, 0x16) => m.select = v as u16,
                (cfg_type::COMMON, o @ 0x18..=0x37) => {
                    let Some(q) = m.queues.get_mut(sel) else {
                        return;
                    };
                    match o {
                        0x18 => q.size = v as u16,
                        0x1a => q.vector = if refuse { NO_VECTOR } else { v as u16 },
                        0x1c => q.enable = v as u16,
                        0x20..=0x37 => {
                            let (i, hi) = ((o - 0x20) / 8, (o - 0x20) % 8 == 4);
                            q.addr[i] = if hi {
                                q.addr[i] & 0xffff_ffff | v << 32
                            } else {
                                q.addr[i] & !0xffff_ffff | v
                            };
                        }
                        _ => {}
                    }
                }
                (cfg_type::NOTIFY, o) => m.notified.push((o, v as u16)),
                _ => {}
            }
        }
    }

    impl RegWindow for Win {
        fn len(&self) -> usize {
            self.len
        }
        fn read8(&self, off: usize) -> u8 {
            self.read(off, 1) as u8
        }
        fn read16(&self, off: usize) -> u16 {
            self.read(off, 2) as u16
        }
        fn read32(&self, off: usize) -> u32 {
            self.read(off, 4) as u32
        }
        fn write8(&self, off: usize, v: u8) {
            self.write(off, u64::from(v))
        }
        fn write16(&self, off: usize, v: u16) {
            self.write(off, u64::from(v))
        }
        fn write32(&self, off: usize, v: u32) {
            self.write(off, u64::from(v))
        }
    }

    /// A vendor capability at `at` (`struct virtio_pci_cap`, virtio 1.2 §4.1.4).
    fn vendor_cap(k: &FakeKernel, at: u16, next: u16, ty: u8, bar: u8, off: u32, len: u32) {
        let cap_len: u32 = if ty == cfg_type::NOTIFY { 20 } else { 16 };
        k.set_cfg(
            at,
            0x09 | u32::from(next) << 8 | cap_len << 16 | u32::from(ty) << 24,
        );
        k.set_cfg(at + 4, u32::from(bar));
        k.set_cfg(at + 8, off);
        k.set_cfg(at + 12, len);
        if ty == cfg_type::NOTIFY {
            k.set_cfg(at + 16, 4);
        }
    }

    /// QEMU's layout: MSI-X first, then common, ISR, device and notify in BAR 4.
    fn qemu_config(k: &FakeKernel, with_notify: bool) {
        k.set_cfg(0x00, 0x1041_1af4);
        k.set_cfg(0x04, 1 << 20);
        k.set_cfg(0x34, 0x98);
        k.set_cfg(0x98, 0x11 | 0x40 << 8);
        vendor_cap(k, 0x40, 0x54, cfg_type::COMMON, 4, 0x0000, 0x38);
        vendor_cap(k, 0x54, 0x68, cfg_type::ISR, 4, 0x1000, 1);
        let next = if with_notify { 0x7c } else { 0 };
        vendor_cap(k, 0x68, next, cfg_type::DEVICE, 4, 0x2000, 0x14);
        if with_notify {
            vendor_cap(k, 0x7c, 0, cfg_type::NOTIFY, 4, 0x3000, 0x1000);
        }
    }

    type Mapped = Vec<(u8, CapLocation)>;

    fn probe_model(
        device: &Device<&'static FakeKernel>,
        m: &'static RefCell<Model>,
    ) -> (Result<ModernTransport<Win>, ProbeError>, Mapped) {
        let mut mapped = Vec::new();
        let t = probe(device, |ty, loc| {
            mapped.push((ty, loc));
            Ok(Win {
                m,
                ty,
                len: loc.length as usize,
            })
        });
        (t, mapped)
    }

    #[test]
    fn a_qemu_function_is_found_mapped_and_brought_up() {
        let (k, device) = FakeKernel::with_device();
        qemu_config(k, true);
        let m = Model::qemu();
        let (t, mapped) = probe_model(&device, m);
        let mut t = t.unwrap();
        let loc = |bar, offset, length| CapLocation {
            bar,
            offset,
            length,
        };
        assert_eq!(
            mapped,
            [
                (cfg_type::COMMON, loc(4, 0, 0x38)),
                (cfg_type::NOTIFY, loc(4, 0x3000, 0x1000)),
                (cfg_type::ISR, loc(4, 0x1000, 1)),
                (cfg_type::DEVICE, loc(4, 0x2000, 0x14)),
            ]
        );
        let features = t.negotiate(MAC | STATUS | feature::EVENT_IDX).unwrap();
        assert_eq!(
            features,
            feature::VERSION_1 | MAC | STATUS | feature::EVENT_IDX,
            "no offloads, no MRG_RXBUF"
        );
        assert_eq!(m.borrow().taken, features);
        let setup = |vector| QueueSetup {
            size: 16,
            desc: 0x4000_0000,
            driver: 0x4000_0100,
            device: 0x4000_0200,
            vector,
        };
        t.setup_queue(0, &setup(Some(1))).unwrap();
        t.setup_queue(1, &setup(None)).unwrap();
        t.set_config_vector(None).unwrap();
        t.driver_ok().unwrap();
        let mac: Vec<u8> = (0..6).map(|i| t.config_read8(i)).collect();
        assert_eq!(mac, m.borrow().mac);
        t.notify(1);
        let m = m.borrow();
        let q0 = m.queues[0];
        assert_eq!((q0.size, q0.vector, q0.enable), (16, 1, 1));
        assert_eq!(q0.addr, [0x4000_0000, 0x4000_0100, 0x4000_0200]);
        assert_eq!((m.queues[1].vector, m.queues[1].enable), (NO_VECTOR, 1));
        assert_eq!(
            m.notified,
            [(4, 1)],
            "notify_off 1 x multiplier 4, the queue's index"
        );
        let s = DeviceStatus::from_bits_retain(m.status);
        assert_eq!(
            s,
            DeviceStatus::ACKNOWLEDGE
                | DeviceStatus::DRIVER
                | DeviceStatus::FEATURES_OK
                | DeviceStatus::DRIVER_OK
        );
    }

    #[test]
    fn refusals_are_errors_not_panics() {
        let (k, device) = FakeKernel::with_device();
        qemu_config(k, false);
        let (t, _) = probe_model(&device, Model::qemu());
        assert_eq!(t.err(), Some(ProbeError::NotModern));
        qemu_config(k, true);
        let m = Model::qemu();
        m.borrow_mut().refuse_features = true;
        let mut t = probe_model(&device, m).0.unwrap();
        assert_eq!(t.negotiate(MAC), Err(TransportError::FeaturesRejected));
        assert!(DeviceStatus::from_bits_retain(m.borrow().status).contains(DeviceStatus::FAILED));
        m.borrow_mut().refuse_features = false;
        m.borrow_mut().refuse_vectors = true;
        t.negotiate(MAC).unwrap();
        let setup = QueueSetup {
            size: 16,
            desc: 0x1000,
            driver: 0x2000,
            device: 0x3000,
            vector: Some(1),
        };
        assert_eq!(
            t.setup_queue(0, &setup),
            Err(TransportError::VectorRefused {
                queue: Some(0),
                vector: 1
            })
        );
        let too_big = QueueSetup { size: 512, ..setup };
        assert!(matches!(
            t.setup_queue(0, &too_big),
            Err(TransportError::QueueSize { .. })
        ));
        m.borrow_mut().offered = MAC;
        assert_eq!(t.negotiate(MAC), Err(TransportError::NoVersion1));
        // A capability pointing back at itself.
        k.set_cfg(0x98, 0x11 | 0x98 << 8);
        let (t, _) = probe_model(&device, Model::qemu());
        assert!(matches!(t.err(), Some(ProbeError::CapList(_))));
        // A configuration read the kernel refuses reads all-ones, as an absent function.
        let bdf = Bdf::new(0, 0, 0).unwrap();
        assert_eq!(CfgSpace(&device).read32(bdf, 0x34), 0x98);
        k.fail_next(Error::EINVAL);
        assert_eq!(CfgSpace(&device).read32(bdf, 0x34), u32::MAX);
    }

    #[test]
    fn structures_are_mapped_as_whole_pages_and_confined() {
        let (k, device) = FakeKernel::with_device();
        let w = map_struct(
            &device,
            CapLocation {
                bar: 4,
                offset: 0x3004,
                length: 0x10,
            },
        )
        .unwrap();
        assert_eq!(k.last_map(), (4, 0x3000, 0x1000));
        w.write32(0, 0xdead_beef);
        assert_eq!(
            w.mmio.read32(4),
            0xdead_beef,
            "structure offset 0 is page offset 4"
        );
        assert_eq!(w.read32(0), 0xdead_beef);
        w.write32(0x10, 1);
        assert_eq!(
            w.read32(0x10),
            u32::MAX,
            "past the structure: all-ones, write dropped"
        );
        assert_eq!(w.mmio.read32(0x14), 0);
        assert_eq!(w.read16(1), u16::MAX, "misaligned");
        let across = CapLocation {
            bar: 2,
            offset: 0xff8,
            length: 0x10,
        };
        assert_eq!(map_struct(&device, across).unwrap().len(), 0x10);
        assert_eq!(k.last_map(), (2, 0, 0x2000));
        for length in [0, (1 << 20) + 1] {
            let bad = CapLocation { length, ..across };
            assert_eq!(map_struct(&device, bad).err(), Some(Error::EINVAL));
        }
    }
}
