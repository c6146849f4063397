//! A fake kernel for the host tests: the device calls' state machine, without a device.
//!
//! It keeps each line in the kernel's four states (plus dropped) and answers each call
//! as docs/abi.md says (`EBADSTATE` for a wrong state, `ETIMEDOUT` for a wait on a line
//! that has not fired: the fake never blocks). Tests fire lines by hand, inject the next
//! call's error, and read a log of the calls that order matters for (line calls, fences,
//! and whatever the test's own devices note). DMA memory and register windows are leaked
//! host allocations.

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::vec::Vec;

use abi::dev::DevInfo;
use abi::{Error, Handle};

use crate::{DevSys, Device, Result};

/// A line as the fake kernel sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineModel {
    Masked,
    Armed,
    Fired,
    Draining,
    Dropped,
}

struct Line {
    state: LineModel,
    bit: u8,
    fires: u64,
    fired_at: u64,
}

/// Where the fake's DMA memory starts on the "bus" (1 GiB, as RAM on QEMU virt).
const BUS_BASE: u64 = 0x4000_0000;

#[derive(Default)]
struct State {
    next_handle: u32,
    free: Vec<u32>,
    reuse: bool,
    lines: BTreeMap<u32, Line>,
    dma: BTreeMap<u32, (usize, usize)>,
    next_bus: u64,
    dropped: Vec<u32>,
    log: Vec<&'static str>,
    fail: Option<Error>,
    notified: u64,
    lie: bool,
    last_map: (u8, u64, u64),
    last_dir: u32,
    last_handle: u32,
    /// (bus, addr, len) of every region.
    bus: Vec<(u64, usize, usize)>,
    cfg: BTreeMap<u16, u32>,
    netif: BTreeMap<u32, usize>,
    netif_opened: Option<(u8, [u8; 6])>,
    netif_start: u32,
    kicks: u64,
    polling_kicks: u64,
    /// Run at the next `fence` (a device acting at that moment).
    at_fence: Option<Box<dyn FnOnce()>>,
}

/// The fake kernel. Leaked by [`FakeKernel::with_device`], so `&'static FakeKernel` is the
/// `Copy` backend.
#[derive(Default)]
pub struct FakeKernel {
    st: RefCell<State>,
}

impl FakeKernel {
    /// A fresh fake kernel and a device on it.
    pub fn with_device() -> (&'static FakeKernel, Device<&'static FakeKernel>) {
        let k: &'static FakeKernel = Box::leak(Box::default());
        (k, Device::new(k, Handle(0x8000_0001)))
    }

    /// Records `what` in the log (the tests' devices note their reads).
    pub fn note(&self, what: &'static str) {
        self.st.borrow_mut().log.push(what);
    }

    /// The log so far.
    pub fn log(&self) -> Vec<&'static str> {
        self.st.borrow().log.clone()
    }

    /// Empties the log.
    pub fn clear_log(&self) {
        self.st.borrow_mut().log.clear();
    }

    /// Runs `f` at the next `fence`, after it is logged: a device that acts just then.
    pub fn at_next_fence(&self, f: Box<dyn FnOnce()>) {
        self.st.borrow_mut().at_fence = Some(f);
    }

    /// The next call (other than `cap_drop` and `fence`) fails with `e`.
    pub fn fail_next(&self, e: Error) {
        self.st.borrow_mut().fail = Some(e);
    }

    /// Hands out dropped handles again (a real kernel's generations prevent this).
    pub fn reuse_handles(&self, on: bool) {
        self.st.borrow_mut().reuse = on;
    }

    /// `dma_alloc` ignores the mask (a buggy kernel).
    pub fn lie_about_masks(&self, on: bool) {
        self.st.borrow_mut().lie = on;
    }

    /// Line `h`'s state.
    pub fn line(&self, h: Handle) -> LineModel {
        self.st.borrow().lines[&h.raw()].state
    }

    /// The interrupt: an armed line goes `Fired` and posts its notification bit.
    pub fn fire(&self, h: Handle, now: u64) {
        let mut st = self.st.borrow_mut();
        let line = st.lines.get_mut(&h.raw()).expect("a line");
        if line.state == LineModel::Armed {
            line.state = LineModel::Fired;
            line.fires += 1;
            line.fired_at = now;
            let bit = line.bit;
            st.notified |= 1 << bit;
        }
    }

    /// The notification bits posted so far.
    pub fn notified(&self) -> u64 {
        self.st.borrow().notified
    }

    /// Whether `h` was dropped.
    pub fn dropped(&self, h: Handle) -> bool {
        self.st.borrow().dropped.contains(&h.raw())
    }

    /// The handle most recently handed out.
    pub fn last_handle(&self) -> Handle {
        Handle(self.st.borrow().last_handle)
    }

    /// The last `mmio_map`'s (bar, offset, len).
    pub fn last_map(&self) -> (u8, u64, u64) {
        self.st.borrow().last_map
    }

    /// The last `dma_alloc`'s direction.
    pub fn last_dir(&self) -> u32 {
        self.st.borrow().last_dir
    }

    /// Region `h`'s memory, as the device would read it.
    pub fn dma_bytes(&self, h: Handle) -> Vec<u8> {
        let (addr, len) = self.st.borrow().dma[&h.raw()];
        // SAFETY: `dma_alloc` leaked `len` bytes at `addr`; they are never freed.
        #[allow(unsafe_code, reason = "the fake device reads leaked memory")]
        unsafe {
            core::slice::from_raw_parts(addr as *const u8, len).to_vec()
        }
    }

    /// Configuration-space dword `offset` reads `v` (others read 0).
    pub fn set_cfg(&self, offset: u16, v: u32) {
        self.st.borrow_mut().cfg.insert(offset, v);
    }

    /// Copies `bytes` into DMA memory at bus address `bus`, as the device would.
    ///
    /// # Panics
    /// If the range is not inside one region (a test bug).
    pub fn bus_write(&self, bus: u64, bytes: &[u8]) {
        let p = self.bus_ptr(bus, bytes.len());
        // SAFETY: `bus_ptr` found `bytes.len()` bytes of a leaked region at `p`.
        #[allow(unsafe_code, reason = "the fake device writes leaked memory")]
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len())
        }
    }

    /// `len` bytes of DMA memory at bus address `bus`, as the device reads them.
    ///
    /// # Panics
    /// As [`FakeKernel::bus_write`].
    pub fn bus_read(&self, bus: u64, len: usize) -> Vec<u8> {
        let p = self.bus_ptr(bus, len);
        // SAFETY: as for `bus_write`.
        #[allow(unsafe_code, reason = "the fake device reads leaked memory")]
        unsafe {
            core::slice::from_raw_parts(p, len).to_vec()
        }
    }

    fn bus_ptr(&self, bus: u64, len: usize) -> *mut u8 {
        let st = self.st.borrow();
        let &(b, addr, _) = st
            .bus
            .iter()
            .find(|&&(b, _, l)| bus >= b && bus + len as u64 <= b + l as u64)
            .expect("a bus range inside one region");
        (addr + (bus - b) as usize) as *mut u8
    }

    /// The frame area of `NetIf` handle `h`.
    pub fn netif_area(&self, h: Handle) -> usize {
        self.st.borrow().netif[&h.raw()]
    }

    /// The last `netif_open`'s (bit, MAC).
    pub fn netif_opened(&self) -> Option<(u8, [u8; 6])> {
        self.st.borrow().netif_opened
    }

    /// `netif_kick` calls so far.
    pub fn kicks(&self) -> u64 {
        self.st.borrow().kicks
    }

    /// Of those, kicks flagged `KICK_POLLING`.
    pub fn polling_kicks(&self) -> u64 {
        self.st.borrow().polling_kicks
    }

    /// The next area starts with all four indices at `v` (a kernel that kept frames).
    pub fn netif_start_at(&self, v: u32) {
        self.st.borrow_mut().netif_start = v;
    }

    fn enter(&self, name: &'static str) -> Result<()> {
        let mut st = self.st.borrow_mut();
        if name.starts_with("irq_") {
            st.log.push(name);
        }
        match st.fail.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn handle(&self) -> Handle {
        let mut st = self.st.borrow_mut();
        let raw = match st.free.pop() {
            Some(h) => h,
            None => {
                st.next_handle += 1;
                0x8000_0100 + st.next_handle
            }
        };
        st.last_handle = raw;
        Handle(raw)
    }

    /// Moves line `h` from a state `from` accepts to `to`.
    fn step(&self, h: Handle, from: &[LineModel], to: LineModel) -> Result<()> {
        let mut st = self.st.borrow_mut();
        let line = st.lines.get_mut(&h.raw()).ok_or(Error::EBADH)?;
        if !from.contains(&line.state) {
            return Err(Error::EBADSTATE);
        }
        line.state = to;
        Ok(())
    }
}

// SAFETY: the fake's windows and regions are leaked, 8-byte aligned host allocations of
// at least the length asked for, one per call; `fence` is a sequentially consistent fence
// (there is no device on the host).
#[allow(unsafe_code, reason = "the test backend implements the unsafe trait")]
unsafe impl DevSys for &'static FakeKernel {
    fn dev_info(&self, _dev: Handle) -> Result<DevInfo> {
        self.enter("dev_info")?;
        Ok(DevInfo {
            vendor: 0x1234,
            device: 0x11e8,
            ..DevInfo::default()
        })
    }

    fn dev_irq(&self, _dev: Handle, _index: u16, bit: u8) -> Result<Handle> {
        self.enter("dev_irq")?;
        let h = self.handle();
        let line = Line {
            state: LineModel::Masked,
            bit,
            fires: 0,
            fired_at: 0,
        };
        self.st.borrow_mut().lines.insert(h.raw(), line);
        Ok(h)
    }

    fn irq_arm(&self, line: Handle) -> Result<()> {
        self.enter("irq_arm")?;
        self.step(line, &[LineModel::Masked], LineModel::Armed)
    }

    fn irq_wait(&self, line: Handle, _deadline: u64) -> Result<(u64, u64)> {
        self.enter("irq_wait")?;
        match self.line(line) {
            LineModel::Armed => return Err(Error::ETIMEDOUT),
            LineModel::Fired => {}
            _ => return Err(Error::EBADSTATE),
        }
        self.step(line, &[LineModel::Fired], LineModel::Draining)?;
        let st = self.st.borrow();
        let l = &st.lines[&line.raw()];
        Ok((l.fired_at, l.fires))
    }

    fn irq_rearm(&self, line: Handle) -> Result<()> {
        self.enter("irq_rearm")?;
        self.step(line, &[LineModel::Draining], LineModel::Armed)
    }

    fn irq_mask(&self, line: Handle) -> Result<()> {
        self.enter("irq_mask")?;
        match self.line(line) {
            LineModel::Armed | LineModel::Fired => self.step(
                line,
                &[LineModel::Armed, LineModel::Fired],
                LineModel::Draining,
            ),
            LineModel::Dropped => Err(Error::EBADH),
            _ => Ok(()),
        }
    }

    fn mmio_map(&self, _dev: Handle, bar: u8, offset: u64, len: u64) -> Result<usize> {
        self.enter("mmio_map")?;
        self.st.borrow_mut().last_map = (bar, offset, len);
        let words = vec_of_words(len as usize);
        Ok(words as usize)
    }

    fn dma_alloc(
        &self,
        _dev: Handle,
        len: usize,
        dir: u32,
        mask_bits: u8,
    ) -> Result<(Handle, usize, u64)> {
        self.enter("dma_alloc")?;
        let mut st = self.st.borrow_mut();
        let bus = BUS_BASE + st.next_bus;
        if !st.lie && !crate::dma::reaches(bus, len, mask_bits) {
            return Err(Error::ERANGE);
        }
        st.next_bus += (len as u64).next_multiple_of(4096);
        st.last_dir = dir;
        drop(st);
        let h = self.handle();
        let addr = vec_of_words(len) as usize;
        let mut st = self.st.borrow_mut();
        st.dma.insert(h.raw(), (addr, len));
        st.bus.push((bus, addr, len));
        Ok((h, addr, bus))
    }

    fn bus_master(&self, _dev: Handle, _on: bool) -> Result<()> {
        self.enter("bus_master")
    }

    fn reset(&self, _dev: Handle) -> Result<bool> {
        self.enter("reset").map(|()| true)
    }

    fn cfg_read(&self, _dev: Handle, offset: u16) -> Result<u32> {
        self.enter("cfg_read")?;
        if !offset.is_multiple_of(4) || offset >= 4096 {
            return Err(Error::EINVAL);
        }
        Ok(self.st.borrow().cfg.get(&offset).copied().unwrap_or(0))
    }

    fn netif_open(&self, _dev: Handle, bit: u8, mac: [u8; 6]) -> Result<(Handle, usize)> {
        self.enter("netif_open")?;
        let h = self.handle();
        let area = vec_of_words(abi::netif::AREA_LEN) as usize;
        let mut st = self.st.borrow_mut();
        let v = st.netif_start;
        for off in [
            abi::netif::RX_HEAD,
            abi::netif::RX_TAIL,
            abi::netif::TX_HEAD,
            abi::netif::TX_TAIL,
        ] {
            // SAFETY: `area` is a fresh leaked allocation of AREA_LEN bytes, 8-aligned.
            #[allow(unsafe_code, reason = "the fake kernel initialises its leaked area")]
            unsafe {
                ((area + off) as *mut u32).write(v)
            }
        }
        st.netif.insert(h.raw(), area);
        st.netif_opened = Some((bit, mac));
        Ok((h, area))
    }

    fn netif_kick(&self, netif: Handle, flags: u64) -> Result<()> {
        self.enter("netif_kick")?;
        let mut st = self.st.borrow_mut();
        if !st.netif.contains_key(&netif.raw()) {
            return Err(Error::EBADH);
        }
        if flags & !abi::netif::KICK_FLAGS != 0 {
            return Err(Error::EINVAL);
        }
        st.kicks += 1;
        st.polling_kicks += u64::from(flags & abi::netif::KICK_POLLING != 0);
        Ok(())
    }

    fn cap_drop(&self, h: Handle) {
        let mut st = self.st.borrow_mut();
        if let Some(line) = st.lines.get_mut(&h.raw()) {
            line.state = LineModel::Dropped;
        }
        st.dropped.push(h.raw());
        if st.reuse {
            st.free.push(h.raw());
        }
    }

    fn fence(&self) {
        let hook = {
            let mut st = self.st.borrow_mut();
            st.log.push("fence");
            st.at_fence.take()
        };
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        if let Some(f) = hook {
            f();
        }
    }
}

/// `len` zeroed bytes (rounded up to 8), 8-byte aligned, leaked.
fn vec_of_words(len: usize) -> *mut u64 {
    let words: Box<[u64]> = std::vec![0u64; len.div_ceil(8).max(1)].into_boxed_slice();
    Box::into_raw(words) as *mut u64
}
