//! Secondary CPUs: started through PSCI `CPU_ON`, joined to the kernel map, parked.
//!
//! A secondary runs with its MMU off until `secondary_entry` loads the boot
//! CPU's TTBRs/TCR/MAIR/SCTLR from its start record (read by physical address), so
//! the record is cleaned to the point of coherency before `CPU_ON`. Each then brings up
//! its GIC CPU interface and tick, joins the scheduler (its boot context becomes its
//! idle thread) and idles with interrupts on, taking threads as they are placed on it.

use core::sync::atomic::{AtomicU32, Ordering};

use super::{cpu, mmu, psci, stack};

/// Start record read by `secondary_entry` (offsets are part of the assembly contract).
#[repr(C)]
#[derive(Debug)]
struct StartRecord {
    stack_top: u64,
    ttbr0: u64,
    tcr: u64,
    mair: u64,
    sctlr: u64,
    ttbr1: u64,
    record_va: u64,
    cpu_index: u64,
}

const _: () = assert!(core::mem::offset_of!(StartRecord, sctlr) == 32);
const _: () = assert!(core::mem::offset_of!(StartRecord, record_va) == 48);

static ONLINE: AtomicU32 = AtomicU32::new(1);

unsafe extern "C" {
    fn secondary_entry();
}

/// Why a secondary CPU did not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// No kernel stack free.
    NoStack,
    /// MMU not enabled yet.
    NoMmu,
    /// PSCI refused (error code).
    Psci(i64),
}

impl core::fmt::Display for StartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            StartError::NoStack => write!(f, "no kernel stack free"),
            StartError::NoMmu => write!(f, "the MMU is not on yet"),
            StartError::Psci(code) => {
                write!(f, "the firmware refused: {}", psci::PsciError(code))
            }
        }
    }
}

/// Starts CPU `mpidr` as kernel CPU number `index`; it parks once online.
pub fn start(mpidr: u64, index: u64) -> Result<(), StartError> {
    let regs = mmu::regs().ok_or(StartError::NoMmu)?;
    let stack = stack::alloc(stack::Class::Kernel).ok_or(StartError::NoStack)?;
    let record = alloc::boxed::Box::leak(alloc::boxed::Box::new(StartRecord {
        stack_top: stack.top() as u64,
        ttbr0: regs.ttbr0_boot,
        tcr: regs.tcr,
        mair: regs.mair,
        sctlr: regs.sctlr,
        ttbr1: regs.ttbr1,
        record_va: 0,
        cpu_index: index,
    }));
    // The CPU owns its stack and record forever (it never exits).
    core::mem::forget(stack);
    let addr = core::ptr::from_mut(record) as usize;
    record.record_va = addr as u64;
    cpu::clean_dcache_range(addr, core::mem::size_of::<StartRecord>());
    let entry = mmu::virt_to_phys(secondary_entry as *const () as usize);
    psci::cpu_on(mpidr, entry as u64, mmu::virt_to_phys(addr) as u64)
        .map_err(|e| StartError::Psci(e.0))
}

/// Number of CPUs that reached the kernel (boot CPU included).
pub fn online() -> u32 {
    ONLINE.load(Ordering::Acquire)
}

#[unsafe(no_mangle)]
extern "C" fn secondary_main(record: *const StartRecord) -> ! {
    // SAFETY: the boot CPU leaked the record for this CPU and passed its address; it is
    // only read.
    let index = unsafe { (*record).cpu_index } as usize;
    cpu::set_ttbr0(mmu::empty_ttbr0());
    mmu::set_pan();
    crate::irq::init_secondary();
    crate::sched::join_cpu(index);
    ONLINE.fetch_add(1, Ordering::AcqRel);
    cpu::send_event();
    cpu::enable_irqs();
    crate::sched::idle()
}
