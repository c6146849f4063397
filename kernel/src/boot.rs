//! Bring-up order, from the first Rust instruction to the monitor or the tests.
//!
//! See docs/boot.md. Each step only uses what earlier steps set up; a failure
//! before the console exists is reported on the device tree's console UART as
//! soon as that is mapped, and through semihosting before (docs/boot.md "Early
//! failures").

use heapless::Vec;

use crate::arch::mmu::{self, Kind};
use crate::arch::{cpu, devices, early, heap, psci, secondary, sections, stack};
use crate::mem::frames;
use crate::memrange::{self, Range};
use crate::platform::{self, Dtb, Platform, PsciMethod};
use crate::{console, irq, ktest, machine, monitor, sched, time, timer};

const PAGE: usize = 4096;

/// Boot options from `/chosen/bootargs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootArgs<'a> {
    /// `test` or `test=<filter>`: run the kernel tests matching the filter.
    pub test: Option<&'a str>,
    /// `hz=<n>`: a periodic tick (polling mode); default 0 = tickless.
    pub hz: u64,
    /// `log=<level>`.
    pub log: log::LevelFilter,
    /// `crash=panic|fault|hang`: the test runner crashes inside the first test instead of
    /// running it, so `scripts/test` can check that failures are reported (harness
    /// self-test).
    pub crash: Option<ktest::Crash>,
    /// `pci=nomsi`: PCI devices use INTx even where MSI is available.
    pub pci_no_msi: bool,
    /// `edu=msi|intx|nodma`: which edu scenario the machine was started for (tests).
    pub edu: Option<&'a str>,
    /// `net=dhcp` (RX by interrupt) or `net=poll[:hz]` (RX polled, default 100 Hz): start
    /// the network stack on the virtio-net NIC at boot (scripts/netlab).
    pub net: Option<crate::net::stack::RxMode>,
    /// `probe`: print every platform fact found (docs/parallels-vmware.md).
    pub probe: bool,
}

impl<'a> BootArgs<'a> {
    /// Parses space-separated options; unknown ones are ignored.
    pub fn parse(args: &'a str) -> Self {
        let mut out = BootArgs {
            test: None,
            hz: 0,
            log: log::LevelFilter::Info,
            crash: None,
            pci_no_msi: false,
            edu: None,
            net: None,
            probe: false,
        };
        for word in args.split_whitespace() {
            match word.split_once('=') {
                None if word == "test" => out.test = Some(""),
                None if word == "probe" => out.probe = true,
                Some(("test", filter)) => out.test = Some(filter),
                Some(("hz", n)) => out.hz = n.parse().unwrap_or(0),
                Some(("log", l)) => out.log = l.parse().unwrap_or(log::LevelFilter::Info),
                Some(("crash", "panic")) => out.crash = Some(ktest::Crash::Panic),
                Some(("crash", "fault")) => out.crash = Some(ktest::Crash::Fault),
                Some(("crash", "hang")) => out.crash = Some(ktest::Crash::Hang),
                Some(("pci", "nomsi")) => out.pci_no_msi = true,
                Some(("edu", mode)) => out.edu = Some(mode),
                Some(("net", "dhcp")) => out.net = Some(crate::net::stack::RxMode::Interrupt),
                Some(("net", poll)) if poll.starts_with("poll") => {
                    let hz = poll
                        .strip_prefix("poll:")
                        .and_then(|h| h.parse().ok())
                        .unwrap_or(100);
                    out.net = Some(crate::net::stack::RxMode::Poll { hz });
                }
                _ => {}
            }
        }
        out
    }
}

static ARGS: spin::Once<BootArgs<'static>> = spin::Once::new();

/// The boot options (after boot).
pub fn args() -> Option<&'static BootArgs<'static>> {
    ARGS.get()
}

/// Says why the kernel cannot boot, where it can (the console UART once mapped, else
/// semihosting: see `console::emergency_fmt`), and stops.
fn early_fail(what: core::fmt::Arguments<'_>) -> ! {
    console::emergency_fmt(format_args!("\ncapstan: cannot boot: {what}\n"));
    crate::trap::halt()
}

/// First Rust code on the boot CPU (called by `arch::boot::kernel_main`); `dtb` is what
/// the loader left in x0 (QEMU's `-kernel`, or `capstan.efi` on the UEFI path).
pub fn start(dtb: usize) -> ! {
    heap::init();
    // Read with the MMU still off (identity, so any RAM address reads).
    let header = early::dtb_header(dtb);
    if let Err(e) = enable_mmu() {
        early_fail(format_args!(
            "MMU setup failed at {:#x}..{:#x}",
            e.start, e.end
        ));
    }
    let Some(header) = header else {
        early_fail(format_args!(
            "no device tree: x0 = {dtb:#x} is not a DTB address"
        ));
    };
    let Some(dtb_len) = platform::dtb::header_size(&header) else {
        early_fail(format_args!("no device tree: bad magic at {dtb:#x}"));
    };
    let dtb_range = Range::new(dtb, dtb.saturating_add(dtb_len));
    let mapped = dtb_range.align_outward(PAGE);
    if mmu::map(mapped.start, mapped.end, Kind::ReadOnly).is_err() {
        early_fail(format_args!(
            "the device tree at {dtb:#x}..{:#x} overlaps the kernel image or cannot be mapped",
            dtb_range.end
        ));
    }
    let tree = match Dtb::check(early::dtb_slice(dtb, dtb_len)) {
        Ok(t) => t,
        Err(e) => early_fail(format_args!("malformed device tree at {dtb:#x}: {e}")),
    };
    init_early_console(&tree);
    let platform = match platform::dt::parse(&tree) {
        Ok(p) => machine::set_platform(p),
        Err(e) => early_fail(format_args!("{e}")),
    };
    let args = *ARGS.call_once(|| BootArgs::parse(&platform.bootargs));
    init_console(platform);
    time::init();
    console::init_log(args.log);
    log::info!(
        "Capstan on {} (EL{}), device tree at {dtb:#x}",
        platform.model,
        cpu::current_el()
    );
    for w in &platform.warnings {
        log::warn!("{w}");
    }
    init_memory(platform, dtb_range);
    init_psci(platform);
    init_interrupts(platform);
    crate::pci::init(&tree, args.pci_no_msi);
    timer::set_periodic_hz(args.hz);
    sched::init(10_000_000);
    start_secondaries(platform);
    cpu::enable_irqs();
    monitor::start_console_reader();
    if args.probe {
        crate::probe::report(platform);
    }
    if let Some(mode) = args.net
        && let Err(e) = crate::net::stack::start(mode)
    {
        log::warn!("network stack not started: {e:?}");
    }
    log::info!(
        "kernel init done in {} us ({} us since CPU reset)",
        time::now_ns() / 1000,
        (time::boot_offset_ns() + time::now_ns()) / 1000
    );
    match args.test {
        Some(filter) => ktest::run(filter, args.crash),
        None => monitor::run(),
    }
}

/// The image, with each section's permissions; the device tree is mapped next, on its
/// own, so that a tree overlapping the image is reported rather than mapped twice.
fn enable_mmu() -> Result<(), mmu::MapFailed> {
    let img = sections::image();
    let guard = img.boot_stack_guard;
    mmu::enable(&[
        (img.start, img.text_end, Kind::Text),
        (img.text_end, img.rodata_end, Kind::ReadOnly),
        (img.rodata_end, guard, Kind::ReadWrite),
        (guard + PAGE, img.end, Kind::ReadWrite),
    ])
}

/// The `stdout-path` UART, mapped and made the emergency console, before the full
/// parse: a tree the parser refuses still gets its `cannot boot` line out.
fn init_early_console(tree: &Dtb) {
    match platform::dt::stdout_uart(tree) {
        Ok((uart, _)) => {
            if console::set_early(uart).is_err() {
                early_fail(format_args!(
                    "the console UART at {:#x} cannot be mapped or does not answer",
                    uart.mmio.base
                ));
            }
        }
        Err(e) => early_fail(format_args!("{e}")),
    }
}

fn init_console(platform: &Platform) {
    match devices::uart(platform.uart) {
        Ok(uart) => console::init(uart),
        Err(_) => early_fail(format_args!(
            "cannot map the UART at {:#x}",
            platform.uart.mmio.base
        )),
    }
}

/// Frees RAM minus image, DTB and reserved ranges; maps it; carves the stack arena and
/// grows the heap.
fn init_memory(platform: &Platform, dtb: Range) {
    let img = sections::image();
    let mut holes: Vec<Range, 66> = Vec::new();
    let _ = holes.push(Range::new(img.start, img.end).align_outward(PAGE));
    let _ = holes.push(dtb.align_outward(PAGE));
    for r in &platform.reserved {
        // 64 reserved ranges at most (the parser refuses more), so this always fits.
        let _ = holes.push(r.align_outward(PAGE));
    }
    let Some(free) = memrange::subtract::<128>(&platform.ram, &holes) else {
        early_fail(format_args!("too many memory ranges"));
    };
    let Some(arena) = free
        .iter()
        .map(|r| r.align_inward(PAGE))
        .filter(|r| r.len() >= stack::ARENA_SIZE)
        .max_by_key(Range::len)
        .map(|r| Range::new(r.end - stack::ARENA_SIZE, r.end))
    else {
        early_fail(format_args!("no room for kernel stacks"));
    };
    let Some(free) = memrange::subtract::<128>(&free, &[arena]) else {
        early_fail(format_args!("too many memory ranges"));
    };
    for r in free
        .iter()
        .map(|r| r.align_inward(PAGE))
        .filter(|r| !r.is_empty())
    {
        if mmu::map(r.start, r.end, Kind::ReadWrite).is_err() {
            early_fail(format_args!("cannot map RAM {:#x}..{:#x}", r.start, r.end));
        }
        // A device tree can claim RAM that is not there: its last word must read.
        if devices::answers(r.end - 4).is_err() {
            log::warn!(
                "RAM {:#x}..{:#x} from the device tree does not answer at its end: not used",
                r.start,
                r.end
            );
            continue;
        }
        frames::add(r);
    }
    if stack::init(arena.start).is_err() {
        early_fail(format_args!("cannot map the stack arena"));
    }
    let (_, total) = frames::stats();
    let heap_frames = (total / 16).clamp(1024, 16384);
    match frames::alloc(heap_frames) {
        Ok(addr) => {
            heap::grow(addr, heap_frames * PAGE);
        }
        Err(_) => log::warn!("heap stays at its boot arena: no {heap_frames} free frames"),
    }
    let (free_frames, total) = frames::stats();
    log::info!(
        "memory: {} MiB RAM, {} MiB free, heap {} KiB, {} stacks",
        (total * PAGE) >> 20,
        (free_frames * PAGE) >> 20,
        heap::stats().1 >> 10,
        stack::SLOTS
    );
}

fn init_psci(platform: &Platform) {
    let method = match platform.psci {
        Some(m @ PsciMethod::Hvc) => {
            psci::set_conduit(psci::Conduit::Hvc);
            m
        }
        Some(m @ PsciMethod::Smc) => {
            psci::set_conduit(psci::Conduit::Smc);
            m
        }
        None => return,
    };
    match psci::version() {
        Ok((major, minor)) => log::info!("PSCI {major}.{minor} via {method}"),
        Err(e) => log::warn!("PSCI_VERSION failed: {e:?}"),
    }
    if let Some(pci) = &platform.pci {
        log::info!(
            "PCI host: ECAM {:#x} ({} MiB), buses {}..={}",
            pci.ecam.base,
            pci.ecam.len >> 20,
            pci.bus_start,
            pci.bus_end
        );
    }
}

fn init_interrupts(platform: &Platform) {
    let gic = &platform.gic;
    match devices::gic(gic) {
        Ok((gic, chip)) => irq::init(gic, chip),
        Err(devices::DeviceError::Map(e)) => {
            early_fail(format_args!("cannot map the GIC at {:#x}", e.start))
        }
        Err(devices::DeviceError::Absent(at)) => early_fail(format_args!(
            "the interrupt controller does not answer at {at:#x} (the device tree says it is there)"
        )),
    }
    crate::its::init(gic);
    let timer = platform.timer_irq;
    let chip_version = irq::chip().map_or(0, |c| c.version());
    match irq::mint(timer.intid, timer.trigger, irq::TICK_OWNER, "timer") {
        Ok(line) => timer::init(line),
        Err(e) => early_fail(format_args!(
            "cannot mint the timer line {}: {e:?}",
            timer.intid
        )),
    }
    log::info!("GICv{chip_version}, timer INTID {}", timer.intid);
}

fn start_secondaries(platform: &Platform) {
    let me = cpu::mpidr();
    for (index, &mpidr) in platform.cpus.iter().enumerate().filter(|(_, m)| **m != me) {
        if let Err(e) = secondary::start(mpidr, index as u64) {
            log::warn!("CPU {mpidr:#x} did not start: {e:?}");
        }
    }
}
