//! `edu [--dma-bits N] [--loop]`: QEMU's edu device, driven from user space.
//!
//! The kernel's own edu driver (`drivers/src/edu.rs`) runs the same exercise in EL1; this
//! one holds the device as capabilities (docs/userland.md "User-mode drivers"): the Device
//! grant, BAR0 mapped with `mmio_map`, the MSI vector as an `IrqLine` that only re-arms on
//! a `Quiesced` proof read from edu's interrupt status, and DMA regions lent to edu and
//! reclaimed only once its DMA engine reads idle. edu trusts its driver completely (QEMU
//! aborts the VM on a transfer outside its 4 KiB buffer and silently truncates an address
//! above the DMA mask), so every transfer is validated into a `CheckedDma` before a DMA
//! register is written, as the kernel driver does.
//!
//! The run: 8 factorials, one software interrupt and 4 DMA round trips, each completion by
//! interrupt, and exactly 17 interrupts as the kernel counts them (`irq_wait`). `--loop`
//! skips to DMA round trips and repeats them until killed (the teardown test kills it
//! mid-transfer), printing nothing unless something fails.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;

use abi::CapType;
use abi::dev::{BAR_MEM, IRQ_MSI};
use capstan_programs::number;
use capstan_programs::tool::Tool;
use capstan_rt::dev::{Device, DmaRegion, IrqLine, Kernel};
use capstan_rt::{Startup, entry, println, time};
use udrv::dma::{Cpu, Device as Lent};
use udrv::{Armed, DeviceId, DmaDir, DmaIdle, Draining, Mmio, QuietCheck, Seal, quiesce};

entry!(main);

const TOOL: Tool = Tool {
    name: "edu",
    usage: "usage: edu [--dma-bits N] [--loop]\n  Drives the edu device granted to this process from user space: 8 factorials, one\n  software interrupt and 4 DMA round trips, each completed by interrupt (17 in all).\n  --dma-bits N  the device's DMA reach in address bits (default 40, as scripts/lib.sh\n                configures edu; QEMU's default edu has 28)\n  --loop        DMA round trips until killed, printing nothing per round",
};

/// edu's BAR0 registers (QEMU `docs/specs/edu.rst`, "MMIO area spec").
mod regs {
    /// 0x00 (RO): identification, `0xRRrr00ed` (major, minor).
    pub const ID: usize = 0x00;
    /// 0x04 (RW): liveness check: reads back the inverse of what was written.
    pub const LIVENESS: usize = 0x04;
    /// 0x08 (RW): factorial operand; the result once computed.
    pub const FACTORIAL: usize = 0x08;
    /// 0x20 (RW): status: bit 0 computing (RO), bit 7 raise an interrupt when done.
    pub const STATUS: usize = 0x20;
    /// 0x24 (RO): interrupt status.
    pub const IRQ_STATUS: usize = 0x24;
    /// 0x60 (WO): raise interrupt: the bits are ORed into the interrupt status.
    pub const IRQ_RAISE: usize = 0x60;
    /// 0x64 (WO): acknowledge interrupt: the bits are cleared from the status.
    pub const IRQ_ACK: usize = 0x64;
    /// 0x80 (RW): DMA source address.
    pub const DMA_SRC: usize = 0x80;
    /// 0x88 (RW): DMA destination address.
    pub const DMA_DST: usize = 0x88;
    /// 0x90 (RW): DMA transfer count.
    pub const DMA_COUNT: usize = 0x90;
    /// 0x98 (RW): DMA command: bit 0 start (reads 1 while running), bit 1 direction,
    /// bit 2 interrupt when done.
    pub const DMA_CMD: usize = 0x98;
}

const STATUS_COMPUTING: u32 = 0x01;
const STATUS_IRQ_FACT: u32 = 0x80;
const DMA_CMD_START: u64 = 0x1;
const DMA_CMD_TO_RAM: u64 = 0x2;
const DMA_CMD_IRQ: u64 = 0x4;
/// Interrupt status bit of a finished factorial.
const IRQ_FACTORIAL: u32 = 0x0000_0001;
/// Interrupt status bit of a finished DMA.
const IRQ_DMA: u32 = 0x0000_0100;
/// The bit this driver raises by software (neither a factorial's nor a DMA's).
const IRQ_SOFT: u32 = 0x0001_0000;
/// Device-side address of edu's DMA buffer, and its size.
const BUFFER_ADDR: u64 = 0x40000;
const BUFFER_SIZE: u32 = 4096;
/// The registers end at 0xa0: one page of BAR0 holds them.
const WINDOW: usize = 0x1000;

/// One operation's time limit (a DMA takes 100 ms of virtual time in QEMU).
const OP_TIMEOUT_NS: u64 = 5_000_000_000;
/// Most re-reads of the interrupt status before rearming gives up.
const QUIESCE_TRIES: u32 = 8;
/// Settling a device a killed driver left busy: at most this many 10 ms polls.
const SETTLE_POLLS: u32 = 300;

const FACTORIALS: [u32; 8] = [0, 1, 2, 5, 8, 10, 12, 13];
/// The round trips: (offset into edu's buffer, length), the first and last as close to
/// the buffer's end as edu allows.
const TRIPS: [(u32, u32); 4] = [(0, 4095), (0x100, 1500), (0xc00, 1023), (0xffe, 1)];
/// DMA region size: one page each way.
const REGION: usize = 4096;

/// What failed, as the line printed before exiting 1.
type Fail = String;

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (mut dma_bits, mut looping) = (40u8, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match *arg {
            "--loop" => looping = true,
            "--dma-bits" => match it.next().and_then(|n| number::parse_u64(n)) {
                Some(n @ 1..=64) => dma_bits = n as u8,
                _ => return TOOL.bad_usage("--dma-bits takes 1 to 64"),
            },
            other => return TOOL.bad_usage(&format!("unknown argument {other}")),
        }
    }
    match run(startup, dma_bits, looping) {
        Ok(()) => 0,
        Err(why) => {
            println!("edu: {why}");
            1
        }
    }
}

fn run(startup: &Startup, dma_bits: u8, looping: bool) -> Result<(), Fail> {
    let grant = startup
        .grants()
        .find(|g| g.cap_type == Some(CapType::Device))
        .ok_or("no Device capability was granted (init grants one by driver=edu@BDF)")?;
    let device = Device::new(Kernel, grant.handle);
    // Quiet in `--loop`: the teardown test starts a thousand instances.
    let edu = Edu::bind(&device, dma_bits, !looping)?;
    let line = device
        .irq(0, 0)
        .map_err(|e| format!("dev_irq (MSI vector): {e}"))?;
    let line = line.arm().map_err(|(_, e)| format!("irq_arm: {e}"))?;
    device
        .bus_master(true)
        .map_err(|e| format!("bus mastering on: {e}"))?;
    let mut irq = Irq {
        line,
        interrupts: 0,
        fires: 0,
    };
    let src = device
        .dma_alloc(REGION, DmaDir::ToDevice, dma_bits)
        .map_err(|e| dma_alloc_failed(e, dma_bits))?;
    let dst = device
        .dma_alloc(REGION, DmaDir::FromDevice, dma_bits)
        .map_err(|e| dma_alloc_failed(e, dma_bits))?;
    if looping {
        return dma_forever(&edu, irq, src, dst);
    }
    for n in FACTORIALS {
        let want = (1..=n).fold(1u32, |a, i| a.wrapping_mul(i));
        edu.start_factorial(n)?;
        let (next, ev) = irq.next(&edu)?;
        irq = next;
        match ev.factorial {
            Some(got) if got == want && ev.status == IRQ_FACTORIAL => {
                println!("edu: {n}! = {got} (interrupt {})", irq.interrupts);
            }
            _ => {
                return Err(format!(
                    "{n}!: status {:#x}, {:?}, not {want}",
                    ev.status, ev.factorial
                ));
            }
        }
    }
    edu.raise(IRQ_SOFT);
    let (next, ev) = irq.next(&edu)?;
    irq = next;
    if ev.status != IRQ_SOFT {
        return Err(format!("raise {IRQ_SOFT:#x}: status {:#x}", ev.status));
    }
    println!(
        "edu: raised {IRQ_SOFT:#x}, acknowledged (interrupt {})",
        irq.interrupts
    );
    let (mut src, mut dst) = (src, dst);
    for (i, &(offset, len)) in TRIPS.iter().enumerate() {
        (irq, src, dst) = round_trip(&edu, irq, src, dst, i as u32, offset, len)?;
        println!(
            "edu: DMA round trip {}: {len} bytes at buffer offset {offset:#x}, equal (interrupts {})",
            i + 1,
            irq.interrupts
        );
    }
    let last = irq.fires;
    // Exactly 17: the kernel's count agrees, and no further interrupt is pending.
    let line = match irq.line.wait(0) {
        Err((line, abi::Error::ETIMEDOUT)) => line,
        Err((_, e)) => return Err(format!("final poll: irq_wait: {e}")),
        Ok((_, fired)) => {
            return Err(format!(
                "an extra interrupt (the kernel counts {})",
                fired.fires
            ));
        }
    };
    if irq.interrupts != 17 || last != 17 {
        return Err(format!(
            "{} interrupts waited for, {last} counted by the kernel, not 17",
            irq.interrupts
        ));
    }
    drop((src, dst));
    drop(line);
    device
        .bus_master(false)
        .map_err(|e| format!("bus mastering off: {e}"))?;
    println!("edu: 8 factorials, 1 raise, 4 DMA round trips, 17 interrupts: ok");
    Ok(())
}

fn dma_alloc_failed(e: abi::Error, bits: u8) -> Fail {
    match e {
        abi::Error::ERANGE => format!(
            "dma_alloc: no memory within the device's {bits}-bit DMA reach (ERANGE); QEMU's default edu reaches 28 bits, below all RAM on virt"
        ),
        e => format!("dma_alloc: {e}"),
    }
}

/// `--loop`: round trips until killed; the pattern changes every round.
fn dma_forever(
    edu: &Edu,
    mut irq: Irq,
    mut src: DmaRegion<Cpu>,
    mut dst: DmaRegion<Cpu>,
) -> Result<(), Fail> {
    for round in 0u32.. {
        let (offset, len) = TRIPS[round as usize % TRIPS.len()];
        (irq, src, dst) = round_trip(edu, irq, src, dst, round, offset, len)?;
    }
    Ok(())
}

/// What one interrupt reported, acknowledged at the device.
struct Events {
    status: u32,
    factorial: Option<u32>,
}

/// The armed line and the interrupts taken through it.
struct Irq {
    line: IrqLine<Armed>,
    /// Interrupts this driver waited for.
    interrupts: u64,
    /// The kernel's count of the line's fires at the last wait.
    fires: u64,
}

impl Irq {
    /// Waits for the next interrupt, acknowledges it at edu and re-arms the line once edu
    /// reads quiet. Fails if the kernel counted a fire this driver did not wait for.
    fn next(self, edu: &Edu) -> Result<(Irq, Events), Fail> {
        let n = self.interrupts + 1;
        let deadline = time::now().saturating_add(OP_TIMEOUT_NS);
        let (line, fired) = self.line.wait(deadline).map_err(|(_, e)| match e {
            abi::Error::ETIMEDOUT => format!("interrupt {n} did not come within 5 s"),
            e => format!("irq_wait: {e}"),
        })?;
        if fired.fires != n {
            return Err(format!(
                "interrupt {n}: the kernel counts {} fires",
                fired.fires
            ));
        }
        let mut events = edu.handle_interrupt();
        let line = rearm(edu, line, &mut events)?;
        let irq = Irq {
            line,
            interrupts: n,
            fires: fired.fires,
        };
        Ok((irq, events))
    }
}

/// Draining -> Armed: `quiesce` reads edu's interrupt status; bits that arrived since the
/// handler ran are acknowledged and reported with the rest (their interrupt was already
/// signalled: the kernel counts it when the line re-arms).
fn rearm(
    edu: &Edu,
    mut line: IrqLine<Draining>,
    events: &mut Events,
) -> Result<IrqLine<Armed>, Fail> {
    for _ in 0..QUIESCE_TRIES {
        match quiesce(line, edu) {
            Ok((proof, draining)) => {
                return draining
                    .rearm(proof)
                    .map_err(|(_, e)| format!("irq_rearm: {e}"));
            }
            Err(draining) => {
                let more = edu.handle_interrupt();
                events.status |= more.status;
                events.factorial = events.factorial.or(more.factorial);
                line = draining;
            }
        }
    }
    Err(format!(
        "interrupt status still {:#x} after {QUIESCE_TRIES} acknowledgements",
        edu.irq_status()
    ))
}

/// One round trip: a pattern into edu's buffer from `src`, back out into `dst`, compared
/// byte for byte. `dst` is first filled with the pattern's complement, so a transfer that
/// did nothing cannot pass.
fn round_trip(
    edu: &Edu,
    irq: Irq,
    mut src: DmaRegion<Cpu>,
    mut dst: DmaRegion<Cpu>,
    seed: u32,
    offset: u32,
    len: u32,
) -> Result<(Irq, DmaRegion<Cpu>, DmaRegion<Cpu>), Fail> {
    let n = len as usize;
    let byte = |i: usize| {
        (i as u32)
            .wrapping_mul(31)
            .wrapping_add(seed.wrapping_mul(101).wrapping_add(7)) as u8
    };
    for (i, b) in src.bytes_mut()[..n].iter_mut().enumerate() {
        *b = byte(i);
    }
    for (i, b) in dst.bytes_mut()[..n].iter_mut().enumerate() {
        *b = !byte(i);
    }
    let (src, dst) = (src.lend(), dst.lend());
    let irq = edu.transfer(irq, &src, Xfer::ToDevice, offset, len)?;
    let irq = edu.transfer(irq, &dst, Xfer::FromDevice, offset, len)?;
    let src = edu.reclaim(src)?;
    let dst = edu.reclaim(dst)?;
    if let Some(i) = (0..n).find(|&i| dst.bytes()[i] != byte(i)) {
        return Err(format!(
            "DMA round trip {}: byte {i} came back {:#04x}, sent {:#04x}",
            seed + 1,
            dst.bytes()[i],
            byte(i)
        ));
    }
    Ok((irq, src, dst))
}

/// A transfer's direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Xfer {
    /// RAM -> edu's buffer.
    ToDevice,
    /// edu's buffer -> RAM.
    FromDevice,
}

/// A transfer that passed every check; only `Edu::check_dma` makes one.
#[must_use]
struct CheckedDma {
    src: u64,
    dst: u64,
    count: u64,
    cmd: u64,
}

/// One edu: its registers and its identity.
struct Edu {
    regs: Mmio,
    id: DeviceId,
    /// The DMA reach: the last bus address edu can address.
    dma_mask: u64,
}

impl Edu {
    /// Checks the function is an edu with an MSI vector and a BAR0, maps the registers,
    /// checks them, and settles whatever a killed predecessor left running.
    fn bind(device: &Device, dma_bits: u8, verbose: bool) -> Result<Edu, Fail> {
        let info = device.info().map_err(|e| format!("dev_info: {e}"))?;
        if (info.vendor, info.device) != (0x1234, 0x11e8) {
            return Err(format!(
                "the device is {:04x}:{:04x}, not edu (1234:11e8)",
                info.vendor, info.device
            ));
        }
        if info.irq_modes & IRQ_MSI == 0 || info.msi_vectors == 0 {
            return Err("edu offers no MSI vector here (no MSI controller?)".into());
        }
        let bar0 = info.bars[0];
        if bar0.flags & BAR_MEM == 0 || bar0.size < WINDOW as u64 {
            return Err(format!(
                "BAR0 is not a memory window of at least 4 KiB ({bar0:?})"
            ));
        }
        let regs = device
            .mmio(0, 0, WINDOW)
            .map_err(|e| format!("mmio_map BAR0: {e}"))?;
        let edu = Edu {
            regs,
            id: device.id(),
            dma_mask: u64::MAX >> (64 - u32::from(dma_bits)),
        };
        let id = edu.regs.read32(regs::ID);
        if id >> 24 != 1 || id & 0xffff != 0x00ed {
            return Err(format!("identification register {id:#010x}, not edu 1.x"));
        }
        edu.regs.write32(regs::LIVENESS, 0x1234_5678);
        if edu.regs.read32(regs::LIVENESS) != !0x1234_5678 {
            return Err("the liveness register does not invert".into());
        }
        if verbose {
            println!(
                "edu: {:02x}:{:02x}.{} id {id:#010x}, BAR0 {} KiB, DMA reach {dma_bits} bits",
                info.bdf >> 8,
                (info.bdf >> 3) & 0x1f,
                info.bdf & 7,
                bar0.size / 1024
            );
        }
        edu.settle()?;
        Ok(edu)
    }

    /// A driver killed mid-transfer leaves edu computing or transferring and its interrupt
    /// status set: wait (bounded) until both engines are idle, then acknowledge everything,
    /// before the line is armed.
    fn settle(&self) -> Result<(), Fail> {
        for _ in 0..SETTLE_POLLS {
            let computing = self.regs.read32(regs::STATUS) & STATUS_COMPUTING != 0;
            if !computing && !self.dma_busy() {
                self.ack(self.irq_status());
                return Ok(());
            }
            time::sleep_ns(10_000_000);
        }
        Err("a factorial or DMA left running never finished".into())
    }

    /// Starts `n!`, raising the factorial interrupt when done.
    fn start_factorial(&self, n: u32) -> Result<(), Fail> {
        if self.regs.read32(regs::STATUS) & STATUS_COMPUTING != 0 {
            return Err("a factorial is still being computed".into());
        }
        // The interrupt bit must be set before the operand write starts the computation.
        self.regs.write32(regs::STATUS, STATUS_IRQ_FACT);
        self.regs.write32(regs::FACTORIAL, n);
        Ok(())
    }

    fn raise(&self, bits: u32) {
        self.regs.write32(regs::IRQ_RAISE, bits);
    }

    fn ack(&self, bits: u32) {
        self.regs.write32(regs::IRQ_ACK, bits);
    }

    fn irq_status(&self) -> u32 {
        self.regs.read32(regs::IRQ_STATUS)
    }

    fn dma_busy(&self) -> bool {
        self.regs.read64(regs::DMA_CMD) & DMA_CMD_START != 0
    }

    /// Reads the interrupt status and acknowledges exactly the bits read (a bit raised
    /// meanwhile stays pending), with the factorial result if one finished.
    fn handle_interrupt(&self) -> Events {
        let status = self.irq_status();
        let factorial = (status & IRQ_FACTORIAL != 0).then(|| self.regs.read32(regs::FACTORIAL));
        if status != 0 {
            self.ack(status);
        }
        Events { status, factorial }
    }

    /// Validates a transfer of `len` bytes between the start of a lent region and edu's
    /// buffer at `offset`: non-zero, inside the 4 KiB buffer, inside the region, in a
    /// direction the region was allocated for, and wholly within the DMA reach (edu
    /// truncates an address above its mask instead of refusing it). Writes nothing.
    fn check_dma(
        &self,
        region: &DmaRegion<Lent>,
        dir: Xfer,
        offset: u32,
        len: u32,
    ) -> Result<CheckedDma, Fail> {
        if len == 0 {
            return Err("a zero-length DMA (QEMU would abort the VM)".into());
        }
        // Strictly inside: QEMU's edu up to 7.2 (`edu_check_range`) treats a transfer that
        // ends exactly at the buffer's end as out of range and aborts the VM, so the last
        // byte is never part of a transfer.
        if u64::from(offset) + u64::from(len) >= u64::from(BUFFER_SIZE) {
            return Err(format!(
                "buffer offset {offset:#x}+{len:#x} not strictly inside edu's 4 KiB"
            ));
        }
        if len as usize > region.len() {
            return Err(format!("{len} bytes from a {}-byte region", region.len()));
        }
        let allowed = match dir {
            Xfer::ToDevice => region.dir().device_reads(),
            Xfer::FromDevice => region.dir().device_writes(),
        };
        if !allowed {
            return Err(format!(
                "a {dir:?} transfer through a {:?} region",
                region.dir()
            ));
        }
        let ram = region.bus_addr();
        let last = ram.checked_add(u64::from(len) - 1);
        if last.is_none_or(|l| l > self.dma_mask) {
            return Err(format!(
                "bus address {ram:#x}+{len:#x} beyond the DMA mask {:#x}",
                self.dma_mask
            ));
        }
        let buf = BUFFER_ADDR + u64::from(offset);
        let (src, dst, to_ram) = match dir {
            Xfer::ToDevice => (ram, buf, 0),
            Xfer::FromDevice => (buf, ram, DMA_CMD_TO_RAM),
        };
        Ok(CheckedDma {
            src,
            dst,
            count: u64::from(len),
            cmd: DMA_CMD_START | to_ram | DMA_CMD_IRQ,
        })
    }

    /// Programs and starts a checked transfer (refused while one runs: edu would ignore
    /// the register writes).
    fn start_dma(&self, dma: CheckedDma) -> Result<(), Fail> {
        if self.dma_busy() {
            return Err("a DMA is still running".into());
        }
        self.regs.write64(regs::DMA_SRC, dma.src);
        self.regs.write64(regs::DMA_DST, dma.dst);
        self.regs.write64(regs::DMA_COUNT, dma.count);
        self.regs.write64(regs::DMA_CMD, dma.cmd);
        Ok(())
    }

    /// One checked transfer through a lent region, completed by its interrupt.
    fn transfer(
        &self,
        irq: Irq,
        region: &DmaRegion<Lent>,
        dir: Xfer,
        offset: u32,
        len: u32,
    ) -> Result<Irq, Fail> {
        let dma = self.check_dma(region, dir, offset, len)?;
        self.start_dma(dma)?;
        let (irq, ev) = irq.next(self)?;
        if ev.status != IRQ_DMA {
            return Err(format!(
                "{dir:?} DMA: interrupt status {:#x}, not {IRQ_DMA:#x}",
                ev.status
            ));
        }
        Ok(irq)
    }

    /// A lent region back to the CPU: edu's DMA engine must read idle.
    fn reclaim(&self, region: DmaRegion<Lent>) -> Result<DmaRegion<Cpu>, Fail> {
        region
            .reclaim(self)
            .map_err(|_| "the DMA engine still runs after its completion interrupt".into())
    }
}

// SAFETY: edu signals (one MSI per raise) whenever a bit is ORed into its interrupt status
// register (0x24), and a completion or raise always sets a bit; this driver acknowledges
// the bits it handled through 0x64. `is_quiet` reads 0x24 after the fence `quiesce` issues:
// zero means every event was acknowledged and any later one sends a new MSI. edu has no
// interrupt enable, so there is nothing to re-enable first.
unsafe impl QuietCheck for Edu {
    fn is_quiet(&self, _: &Seal) -> bool {
        self.irq_status() == 0
    }
}

// SAFETY: edu has one DMA engine; DMA command bit 0 (0x98) reads 1 from the start of a
// transfer until it is over (edu.rst "DMA controller"), and nothing else in the device
// issues DMA. `dma_idle` reads that bit from this device, whose identity `dma_device`
// returns (`regs` is this device's BAR0).
unsafe impl DmaIdle for Edu {
    fn dma_device(&self) -> DeviceId {
        self.id
    }
    fn dma_idle(&self, _: &Seal) -> bool {
        !self.dma_busy()
    }
}
