//! Bring-up order, from the first Rust instruction to the monitor or the tests.
//!
//! See docs/boot.md. Each step only uses what earlier steps set up; a failure
//! before the console exists is reported on the device tree's console UART as
//! soon as that is mapped, and through semihosting before (docs/boot.md "Early
//! failures").

use heapless::Vec;

use crate::arch::mmu::{self, Kind};
use crate::arch::{cpu, devices, early, heap, psci, secondary, sections, stack};
use crate::cmdline::{BootArgs, LogLevel, NetOption};
use crate::mem::{self, frames};
use crate::memrange::{self, Range};
use crate::platform::{self, Dtb, Platform, PsciMethod};
use crate::{console, irq, ktest, machine, monitor, sched, time, timer};

const PAGE: usize = 4096;

static ARGS: spin::Once<BootArgs<'static>> = spin::Once::new();

/// The boot options (after boot).
pub fn args() -> Option<&'static BootArgs<'static>> {
    ARGS.get()
}

/// Says why the kernel cannot boot, where it can (the console UART once mapped, else
/// semihosting: see `console::emergency_fmt`), and stops.
fn early_fail(what: core::fmt::Arguments<'_>) -> ! {
    console::emergency_fmt(format_args!("\ncapstan: cannot boot: {what}\n"));
    crate::halt::halt()
}

/// First Rust code on the boot CPU (called by `arch::boot::kernel_main`, MMU on with the
/// boot tables); `dtb` is the physical address the loader left in x0.
pub fn start(dtb: usize) -> ! {
    heap::init();
    if let Err(e) = enable_mmu() {
        early_fail(format_args!(
            "MMU setup failed at {:#x}..{:#x}",
            e.start, e.end
        ));
    }
    let Some(header) = early::dtb_header(dtb) else {
        early_fail(format_args!(
            "no device tree: x0 = {dtb:#x} is not a DTB address"
        ));
    };
    let Some(dtb_len) = platform::dtb::header_size(&header) else {
        early_fail(format_args!("no device tree: bad magic at {dtb:#x}"));
    };
    let dtb_range = Range::new(dtb, dtb.saturating_add(dtb_len));
    let Some(dtb_bytes) = early::dtb_slice(dtb, dtb_len) else {
        early_fail(format_args!(
            "the device tree at {dtb:#x}..{:#x} cannot be mapped",
            dtb_range.end
        ));
    };
    let tree = match Dtb::check(dtb_bytes) {
        Ok(t) => t,
        Err(e) => early_fail(format_args!("malformed device tree at {dtb:#x}: {e}")),
    };
    init_early_console(&tree);
    let platform = match platform::dt::parse(&tree) {
        Ok(p) => machine::set_platform(p),
        Err(e) => early_fail(format_args!("{e}")),
    };
    let parsed = BootArgs::parse(&platform.bootargs);
    let args = *ARGS.call_once(|| parsed.args);
    init_console(platform);
    time::init();
    console::init_log(log_filter(args.log));
    for w in &parsed.warnings {
        log::warn!("{w}");
    }
    if parsed.more_warnings > 0 {
        log::warn!("{} more bad boot options ignored", parsed.more_warnings);
    }
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
    // The profiler samples on the tick: at least its rate (docs/profiling.md).
    timer::set_periodic_hz(args.hz.max(args.profile));
    if args.profile > 0 {
        sched::profile::start(args.profile);
    }
    sched::init(10_000_000);
    crate::process::table::init(
        platform
            .initrd
            .and_then(|r| early::initrd_slice(r.start, r.len())),
    );
    start_secondaries(platform);
    cpu::enable_irqs();
    console::input::start_reader(platform.uart_irq);
    if args.probe {
        crate::probe::report(platform);
    }
    let net = match args.net {
        NetOption::Off => None,
        NetOption::Dhcp => Some(crate::net::stack::RxMode::Interrupt),
        NetOption::Poll { hz } => Some(crate::net::stack::RxMode::Poll { hz }),
    };
    if let Some(mode) = net
        && let Err(e) = crate::net::stack::start(mode)
    {
        log::warn!("network stack not started: {e}");
    }
    log::info!(
        "kernel init done in {} us ({} us since CPU reset)",
        time::now_ns() / 1000,
        (time::boot_offset_ns() + time::now_ns()) / 1000
    );
    match args.test {
        Some(filter) => ktest::run(filter, args.crash),
        None if args.monitor => monitor::run(),
        None => run_init(args.init, args.init_args),
    }
}

/// Starts `path` as process 1 with `init_args` (the words after `--`), hands it the
/// `Power` capability, and waits for it; when it ends the machine powers off. Without
/// an initrd holding `path` the kernel monitor runs instead, so a machine booted with a
/// bare kernel still has a console.
fn run_init(path: &str, init_args: &str) -> ! {
    use crate::process::file::Object;
    use crate::process::table::{self, Grant};
    if table::initrd().and_then(|rd| rd.find(path)).is_none() {
        log::warn!(
            "no {path} in the initrd (boot with `-initrd build/initrd.tar`): starting the kernel monitor"
        );
        monitor::run();
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    let mut args = alloc::vec::Vec::new();
    let mut argc = 0;
    for word in core::iter::once(name).chain(init_args.split_whitespace()) {
        args.extend_from_slice(word.as_bytes());
        args.push(0);
        argc += 1;
    }
    let power = Grant {
        object: Object::Power,
        rights: abi::Rights::TRANSFER,
    };
    let mut grants = alloc::vec![power];
    grants.extend(driver_devices(init_args));
    let status = table::spawn_init(path, &args, argc, grants).and_then(|pid| {
        let kernel = table::get(0).ok_or(abi::Error::ESRCH)?;
        table::wait(&kernel, Some(pid), false).map(|(_, s, _)| s)
    });
    match status {
        Ok(s) => log::info!("init ({path}) exited with status {s}; powering off"),
        Err(e) => log::error!("init ({path}) could not start: {e}; powering off"),
    }
    let _ = psci::system_off();
    crate::halt::halt()
}

/// The devices init's `driver=PROGRAM@BB:DD.F` options name, claimed for user-mode drivers
/// and granted to init (which grants each to its driver, and again when one restarts).
pub fn driver_devices(init_args: &str) -> alloc::vec::Vec<crate::process::table::Grant> {
    use crate::process::device::UserDevice;
    use crate::process::file::Object;
    use abi::Rights;
    let mut out = alloc::vec::Vec::new();
    for spec in init_args
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("driver="))
    {
        let Some(bdf) = spec
            .split_once('@')
            .and_then(|(_, rest)| rest.split(',').next())
            .and_then(drivers::pci::config::Bdf::parse)
        else {
            log::warn!("driver={spec}: expected PROGRAM@BB:DD.F[,ARG...]");
            continue;
        };
        match crate::pci::handoff::claim(bdf) {
            Ok(h) => out.push(crate::process::table::Grant {
                object: Object::Device(UserDevice::new(h)),
                rights: Rights::INSPECT
                    | Rights::IRQ
                    | Rights::MAP
                    | Rights::DMA
                    | Rights::TRANSFER,
            }),
            Err(e) => log::warn!("driver={spec}: {bdf}: {e}"),
        }
    }
    out
}

fn log_filter(level: LogLevel) -> log::LevelFilter {
    match level {
        LogLevel::Off => log::LevelFilter::Off,
        LogLevel::Error => log::LevelFilter::Error,
        LogLevel::Warn => log::LevelFilter::Warn,
        LogLevel::Info => log::LevelFilter::Info,
        LogLevel::Debug => log::LevelFilter::Debug,
        LogLevel::Trace => log::LevelFilter::Trace,
    }
}

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
    let Some((_, va)) = console::early_uart() else {
        early_fail(format_args!("the console UART was not mapped"));
    };
    console::init(devices::uart(platform.uart, va));
}

/// Frees RAM minus image, DTB and reserved ranges; maps it; carves the stack arena and
/// grows the heap.
fn init_memory(platform: &Platform, dtb: Range) {
    let img = sections::image();
    let mut holes: Vec<Range, 68> = Vec::new();
    let image_phys = mmu::virt_to_phys(img.start);
    let _ =
        holes.push(Range::new(image_phys, image_phys + (img.end - img.start)).align_outward(PAGE));
    let _ = holes.push(dtb.align_outward(PAGE));
    for r in platform.reserved.iter().chain(&platform.initrd) {
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
    let mut pooled = 0;
    for r in free
        .iter()
        .map(|r| r.align_inward(PAGE))
        .filter(|r| !r.is_empty())
    {
        if mmu::map(r.start, r.end, Kind::ReadWrite).is_err() {
            early_fail(format_args!("cannot map RAM {:#x}..{:#x}", r.start, r.end));
        }
        // A device tree can claim RAM that is not there: its last word must read.
        if !devices::ram_answers(r.end - 4) {
            log::warn!(
                "RAM {:#x}..{:#x} from the device tree does not answer at its end: not used",
                r.start,
                r.end
            );
            continue;
        }
        frames::add(r);
        pooled += r.len();
    }
    let in_ram = |r: &Range| -> usize {
        platform
            .ram
            .iter()
            .map(|bank| r.intersect(bank).map_or(0, |i| i.len()))
            .sum()
    };
    mem::record_boot_memory(mem::BootMemory {
        ram: platform.ram.iter().map(Range::len).sum(),
        image: in_ram(&holes[0]),
        firmware_tables: in_ram(&holes[1]),
        reserved: holes[2..].iter().map(in_ram).sum(),
        stacks: stack::ARENA_SIZE,
        frames: pooled,
    });
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
        Err(e) => log::warn!("PSCI_VERSION failed: {e}"),
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
            "cannot mint the timer line {}: {e}",
            timer.intid
        )),
    }
    log::info!("GICv{chip_version}, timer INTID {}", timer.intid);
}

fn start_secondaries(platform: &Platform) {
    let me = cpu::mpidr();
    for (index, &mpidr) in platform.cpus.iter().enumerate().filter(|(_, m)| **m != me) {
        if let Err(e) = secondary::start(mpidr, index as u64) {
            log::warn!("CPU {mpidr:#x} did not start: {e}");
        }
    }
}
