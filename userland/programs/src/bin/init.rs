//! `init`, process 1: keeps a shell on the console and reaps orphans.
//!
//! It reads its options from the kernel command line (`/proc/cmdline`, the words after
//! a lone `--`; the same words are its arguments): `shell=PATH` names the program kept
//! on the console (default `/bin/sh`); `run=PATH[,ARG...]` runs one program instead
//! and powers the machine off when it ends (how the test suites boot). It holds the
//! `Power` capability from boot and copies it to the shell. Every process whose parent
//! ends becomes its child; it reaps them. When the shell ends, init starts a new one
//! (after a pause if it keeps failing at once).
//!
//! `driver=PROGRAM@BB:DD.F[,ARG...]` starts a user-mode driver: the kernel granted init
//! that PCI function at boot, and init moves it to `PROGRAM`. When a driver ends, the
//! kernel gives the device back (`wait` reports it) and init starts a fresh instance with
//! it (docs/user-drivers.md), after a pause if it keeps failing at once.
#![no_std]
#![no_main]

use abi::Handle;
use abi::proc::{GRANT_COPY, GrantSpec};
use alloc::string::String;
use alloc::vec::Vec;
use capstan_programs::tool;
use capstan_rt::{Startup, entry, println, process, system, time};

entry!(main);

/// Shells that end within this long of starting count as failing at once.
const QUICK_FAILURE_NS: u64 = 2_000_000_000;
/// Quick failures in a row before init pauses between restarts.
const QUICK_FAILURES_BEFORE_PAUSE: u32 = 3;
const PAUSE_NS: u64 = 1_000_000_000;

struct Options {
    shell: String,
    run: Option<Vec<String>>,
    drivers: Vec<DriverSpec>,
}

/// A `driver=` option.
struct DriverSpec {
    /// Program and arguments.
    argv: Vec<String>,
    /// The PCI function, as `dev_info` reports it (`bus << 8 | dev << 3 | fn`).
    bdf: u32,
}

/// `BB:DD.F` (hex bus and device, decimal function) as `dev_info`'s `bdf` word.
fn parse_bdf(s: &str) -> Option<u32> {
    let (bus, rest) = s.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    let bus = u32::from_str_radix(bus, 16).ok().filter(|&b| b < 256)?;
    let dev = u32::from_str_radix(dev, 16).ok().filter(|&d| d < 32)?;
    let func = func.parse::<u32>().ok().filter(|&f| f < 8)?;
    Some(bus << 8 | dev << 3 | func)
}

/// Options from the words after `--` on the kernel command line (or from the arguments
/// if `/proc/cmdline` cannot be read).
fn options(startup: &Startup) -> Options {
    let cmdline = tool::read_text("/proc/cmdline").ok();
    let words: Vec<String> = match cmdline.as_deref().and_then(|c| {
        let mut words = c.split_whitespace();
        words.by_ref().find(|w| *w == "--")?;
        Some(words.map(String::from).collect::<Vec<_>>())
    }) {
        Some(words) => words,
        None => startup.args().skip(1).map(String::from).collect(),
    };
    let mut o = Options {
        shell: String::from("/bin/sh"),
        run: None,
        drivers: Vec::new(),
    };
    for w in words {
        match w.split_once('=') {
            Some(("shell", path)) if path.starts_with('/') => o.shell = String::from(path),
            Some(("run", spec)) if spec.starts_with('/') => {
                o.run = Some(spec.split(',').map(String::from).collect());
            }
            Some(("driver", spec)) => match spec.split_once('@').and_then(|(prog, rest)| {
                let mut parts = rest.split(',');
                let bdf = parse_bdf(parts.next()?)?;
                let mut argv = alloc::vec![String::from(prog)];
                argv.extend(parts.map(String::from));
                prog.starts_with('/').then_some(DriverSpec { argv, bdf })
            }) {
                Some(d) => o.drivers.push(d),
                None => println!("init: driver={spec}: expected PROGRAM@BB:DD.F[,ARG...]"),
            },
            _ => println!("init: option '{w}' unknown or malformed (ignored)"),
        }
    }
    o
}

fn spawn(path: &str, args: &[&str], power: Option<Handle>) -> capstan_rt::Result<u32> {
    let grants: Vec<GrantSpec> = power
        .map(|h| GrantSpec {
            handle: h.raw(),
            rights: abi::Rights::TRANSFER.bits(),
            mode: GRANT_COPY,
        })
        .into_iter()
        .collect();
    process::spawn(path, args, &grants)
}

/// `run=`: one program, then power off.
fn run_once(
    argv: &[String],
    power: Option<Handle>,
    opts: &Options,
    drivers: &mut Vec<Driver>,
) -> i32 {
    let name = argv[0].rsplit('/').next().unwrap_or(&argv[0]);
    let mut args: Vec<&str> = alloc::vec![name];
    args.extend(argv[1..].iter().map(String::as_str));
    let status = match spawn(&argv[0], &args, power) {
        Ok(pid) => loop {
            match process::wait_any() {
                Ok(e) if e.pid == pid => break e.status,
                Ok(e) => {
                    driver_ended(opts, drivers, &e); // else an orphan
                }
                Err(e) => {
                    println!("init: wait: {e}");
                    break 1;
                }
            }
        },
        Err(e) => {
            println!("init: cannot start {}: {e}", argv[0]);
            127
        }
    };
    println!(
        "init: {} exited with status {status}; powering off",
        argv[0]
    );
    stop_drivers(drivers);
    if let Some(h) = power {
        let e = system::power_off(h);
        println!("init: power off refused: {e}");
    }
    status
}

/// A running user-mode driver.
struct Driver {
    spec: usize,
    pid: u32,
    started: u64,
    quick_failures: u32,
}

/// Starts driver `spec` with `device` (moved to it).
fn start_driver(opts: &Options, spec: usize, device: Handle) -> Option<Driver> {
    let d = &opts.drivers[spec];
    let name = d.argv[0].rsplit('/').next().unwrap_or(&d.argv[0]);
    let mut args: Vec<&str> = alloc::vec![name];
    args.extend(d.argv[1..].iter().map(String::as_str));
    let grant = GrantSpec {
        handle: device.raw(),
        rights: (abi::Rights::INSPECT
            | abi::Rights::IRQ
            | abi::Rights::MAP
            | abi::Rights::DMA
            | abi::Rights::TRANSFER)
            .bits(),
        mode: abi::proc::GRANT_MOVE,
    };
    match process::spawn(&d.argv[0], &args, &[grant]) {
        Ok(pid) => {
            println!("init: started driver {} (pid {pid})", d.argv[0]);
            Some(Driver {
                spec,
                pid,
                started: time::now(),
                quick_failures: 0,
            })
        }
        Err(e) => {
            println!("init: cannot start driver {}: {e}", d.argv[0]);
            None
        }
    }
}

/// Starts every `driver=` with the device the kernel granted for it.
fn start_drivers(startup: &Startup, opts: &Options) -> Vec<Driver> {
    let devices: Vec<(Handle, u32)> = startup
        .grants()
        .filter(|g| g.cap_type == Some(abi::CapType::Device))
        .filter_map(|g| Some((g.handle, capstan_rt::dev::info(g.handle).ok()?.bdf)))
        .collect();
    let mut running = Vec::new();
    for (i, d) in opts.drivers.iter().enumerate() {
        match devices.iter().find(|(_, bdf)| *bdf == d.bdf) {
            Some(&(h, _)) => running.extend(start_driver(opts, i, h)),
            None => println!(
                "init: driver {}: no device granted for it (is the function there?)",
                d.argv[0]
            ),
        }
    }
    running
}

/// Ends every driver and reaps it (their devices come back, stopped), before power off.
fn stop_drivers(drivers: &mut Vec<Driver>) {
    for d in drivers.drain(..) {
        let _ = process::kill(d.pid);
        let _ = process::wait(d.pid);
    }
}

/// A child ended: if it was a driver, start it again with the device it gave back.
/// Returns whether it was one.
fn driver_ended(opts: &Options, drivers: &mut Vec<Driver>, e: &process::Exited) -> bool {
    let Some(pos) = drivers.iter().position(|d| d.pid == e.pid) else {
        return false;
    };
    let old = drivers.remove(pos);
    let path = &opts.drivers[old.spec].argv[0];
    let Some(device) = e.returned_device else {
        println!(
            "init: driver {path} (pid {}) ended with status {} and its device did not come back",
            e.pid, e.status
        );
        return true;
    };
    // A driver someone killed did not fail; one that exits or faults at once did.
    let quick = time::now().saturating_sub(old.started) < QUICK_FAILURE_NS
        && e.status != 0
        && e.status != abi::proc::STATUS_KILLED;
    let quick_failures = if quick { old.quick_failures + 1 } else { 0 };
    println!(
        "init: driver {path} (pid {}) ended with status {}; restarting it",
        e.pid, e.status
    );
    if quick_failures >= QUICK_FAILURES_BEFORE_PAUSE {
        println!("init: driver {path} keeps failing; waiting 1 s");
        time::sleep_ns(PAUSE_NS);
    }
    if let Some(mut d) = start_driver(opts, old.spec, device) {
        d.quick_failures = quick_failures;
        drivers.push(d);
    }
    true
}

fn main(startup: &Startup) -> i32 {
    let power = system::power_cap();
    let opts = options(startup);
    let mut drivers = start_drivers(startup, &opts);
    if let Some(argv) = &opts.run {
        return run_once(argv, power, &opts, &mut drivers);
    }
    if let Ok(motd) = tool::read_text("/etc/motd") {
        capstan_rt::print!("{motd}");
    }
    let name = opts.shell.rsplit('/').next().unwrap_or("sh");
    let mut quick_failures = 0u32;
    let mut orphans = 0u64;
    loop {
        let started = time::now();
        let shell = match spawn(&opts.shell, &[name], power) {
            Ok(pid) => pid,
            Err(e) => {
                println!("init: cannot start {}: {e}; retrying in 1 s", opts.shell);
                time::sleep_ns(PAUSE_NS);
                continue;
            }
        };
        let status = loop {
            match process::wait_any() {
                Ok(e) if e.pid == shell => break e.status,
                Ok(e) if driver_ended(&opts, &mut drivers, &e) => {}
                Ok(_) => orphans += 1,
                Err(e) => {
                    println!("init: wait: {e}");
                    time::sleep_ns(PAUSE_NS);
                }
            }
        };
        if time::now().saturating_sub(started) < QUICK_FAILURE_NS && status != 0 {
            quick_failures += 1;
        } else {
            quick_failures = 0;
        }
        println!(
            "init: {} (pid {shell}) exited with status {status}; starting a new one ({orphans} orphans reaped so far)",
            opts.shell
        );
        if quick_failures >= QUICK_FAILURES_BEFORE_PAUSE {
            println!("init: {} keeps failing; waiting 1 s", opts.shell);
            time::sleep_ns(PAUSE_NS);
        }
    }
}

extern crate alloc;
