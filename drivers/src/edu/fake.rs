//! A host model of QEMU's `edu` (hw/misc/edu.c) for the driver's tests.
//!
//! The model keeps QEMU's sharp edges so the tests prove the driver avoids
//! them: DMA register writes are dropped while a transfer runs, the RAM-side
//! address is masked with `dma_mask` silently, and a transfer outside the
//! internal buffer or of length 0 "aborts the VM" (recorded, so a test can
//! assert it never happened). Completion is driven by the test
//! (`finish_factorial`, `run_dma`) instead of a thread and a timer.

use core::cell::RefCell;
use std::string::{String, ToString};
use std::vec::Vec;

use super::{BUFFER_ADDR, BUFFER_SIZE, STATUS_COMPUTING, STATUS_IRQ_FACT, irq, regs};
use crate::mmio::Registers;

pub(super) struct State {
    pub addr4: u32,
    pub fact: u32,
    pub status: u32,
    pub irq_status: u32,
    pub dma: [u64; 4],
    pub buf: [u8; BUFFER_SIZE as usize],
    pub dma_mask: u64,
    pub ram_base: u64,
    pub ram: Vec<u8>,
    /// Interrupt assertions (MSI messages sent).
    pub raises: usize,
    /// Writes that reached a DMA register.
    pub dma_writes: usize,
    pub aborted: Option<String>,
}

pub(super) struct FakeEdu {
    pub st: RefCell<State>,
}

impl FakeEdu {
    pub fn new(dma_mask: u64, ram_base: u64, ram_len: usize) -> Self {
        FakeEdu {
            st: RefCell::new(State {
                addr4: 0,
                fact: 0,
                status: 0,
                irq_status: 0,
                dma: [0; 4],
                buf: [0; BUFFER_SIZE as usize],
                dma_mask,
                ram_base,
                ram: std::vec![0; ram_len],
                raises: 0,
                dma_writes: 0,
                aborted: None,
            }),
        }
    }

    fn raise(st: &mut State, bits: u32) {
        st.irq_status |= bits;
        if st.irq_status != 0 {
            st.raises += 1;
        }
    }

    /// The computation thread finishing.
    pub fn finish_factorial(&self) {
        let st = &mut *self.st.borrow_mut();
        if st.status & STATUS_COMPUTING == 0 {
            return;
        }
        st.fact = (1..=st.fact).fold(1u32, |acc, v| acc.wrapping_mul(v));
        st.status &= !STATUS_COMPUTING;
        if st.status & STATUS_IRQ_FACT != 0 {
            Self::raise(st, irq::FACTORIAL);
        }
    }

    fn in_buffer(st: &mut State, addr: u64, len: u64) -> Option<usize> {
        let end = addr.wrapping_add(len);
        let ok = addr >= BUFFER_ADDR
            && addr < BUFFER_ADDR + u64::from(BUFFER_SIZE)
            && end > addr
            // QEMU 7.2 wants the end strictly below the buffer's end (its `within` check
            // on `end1`; fixed upstream in 8.2.1): a transfer reaching the last byte aborts.
            && end < BUFFER_ADDR + u64::from(BUFFER_SIZE);
        if !ok {
            st.aborted = Some("EDU: DMA range out of bounds".to_string());
            return None;
        }
        Some((addr - BUFFER_ADDR) as usize)
    }

    fn ram_slot(st: &mut State, addr: u64, len: usize) -> Option<usize> {
        let addr = addr & st.dma_mask;
        let off = addr.checked_sub(st.ram_base).map(|o| o as usize);
        match off.filter(|o| o + len <= st.ram.len()) {
            Some(o) => Some(o),
            None => {
                st.aborted = Some("EDU: DMA outside RAM".to_string());
                None
            }
        }
    }

    /// The DMA timer firing.
    pub fn run_dma(&self) {
        let st = &mut *self.st.borrow_mut();
        let [src, dst, cnt, cmd] = st.dma;
        if cmd & 1 == 0 {
            return;
        }
        let len = cnt as usize;
        if cmd & 2 == 0 {
            let Some(b) = Self::in_buffer(st, dst, cnt) else {
                return;
            };
            let Some(r) = Self::ram_slot(st, src, len) else {
                return;
            };
            let data: Vec<u8> = st.ram[r..r + len].to_vec();
            st.buf[b..b + len].copy_from_slice(&data);
        } else {
            let Some(b) = Self::in_buffer(st, src, cnt) else {
                return;
            };
            let Some(r) = Self::ram_slot(st, dst, len) else {
                return;
            };
            let data = st.buf[b..b + len].to_vec();
            st.ram[r..r + len].copy_from_slice(&data);
        }
        st.dma[3] &= !1;
        if cmd & 4 != 0 {
            Self::raise(st, irq::DMA);
        }
    }
}

impl Registers for &FakeEdu {
    fn read32(&self, offset: usize) -> u32 {
        let st = self.st.borrow();
        match offset {
            regs::ID => 0x0100_00ed,
            regs::LIVENESS => st.addr4,
            regs::FACTORIAL => st.fact,
            regs::STATUS => st.status,
            regs::IRQ_STATUS => st.irq_status,
            _ => u32::MAX,
        }
    }

    fn write32(&self, offset: usize, value: u32) {
        let st = &mut *self.st.borrow_mut();
        match offset {
            regs::LIVENESS => st.addr4 = !value,
            regs::FACTORIAL if st.status & STATUS_COMPUTING == 0 => {
                st.fact = value;
                st.status |= STATUS_COMPUTING;
            }
            regs::STATUS => {
                st.status = (st.status & !STATUS_IRQ_FACT) | (value & STATUS_IRQ_FACT);
            }
            regs::IRQ_RAISE => FakeEdu::raise(st, value),
            regs::IRQ_ACK => st.irq_status &= !value,
            _ => {}
        }
    }

    fn read64(&self, offset: usize) -> u64 {
        let st = self.st.borrow();
        match offset {
            regs::DMA_SRC..=regs::DMA_CMD if offset.is_multiple_of(8) => {
                st.dma[(offset - 0x80) / 8]
            }
            _ => u64::MAX,
        }
    }

    fn write64(&self, offset: usize, value: u64) {
        let st = &mut *self.st.borrow_mut();
        if !(regs::DMA_SRC..=regs::DMA_CMD).contains(&offset) || st.dma[3] & 1 != 0 {
            return;
        }
        if offset == regs::DMA_CMD && value & 1 == 0 {
            return;
        }
        st.dma_writes += 1;
        st.dma[(offset - 0x80) / 8] = value;
    }
}
