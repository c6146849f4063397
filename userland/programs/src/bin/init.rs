//! `init`, process 1: keeps a shell on the console and reaps orphans.
//!
//! It reads its options from the kernel command line (`/proc/cmdline`, the words after
//! a lone `--`; the same words are its arguments): `shell=PATH` names the program kept
//! on the console (default `/bin/sh`); `run=PATH[,ARG...]` runs one program instead
//! and powers the machine off when it ends (how the test suites boot). It holds the
//! `Power` capability from boot and copies it to the shell. Every process whose parent
//! ends becomes its child; it reaps them. When the shell ends, init starts a new one
//! (after a pause if it keeps failing at once).
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
    };
    for w in words {
        match w.split_once('=') {
            Some(("shell", path)) if path.starts_with('/') => o.shell = String::from(path),
            Some(("run", spec)) if spec.starts_with('/') => {
                o.run = Some(spec.split(',').map(String::from).collect());
            }
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
fn run_once(argv: &[String], power: Option<Handle>) -> i32 {
    let name = argv[0].rsplit('/').next().unwrap_or(&argv[0]);
    let mut args: Vec<&str> = alloc::vec![name];
    args.extend(argv[1..].iter().map(String::as_str));
    let status = match spawn(&argv[0], &args, power) {
        Ok(pid) => loop {
            match process::wait_any() {
                Ok(e) if e.pid == pid => break e.status,
                Ok(_) => {} // an orphan
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
    if let Some(h) = power {
        let e = system::power_off(h);
        println!("init: power off refused: {e}");
    }
    status
}

fn main(startup: &Startup) -> i32 {
    let power = system::power_cap();
    let opts = options(startup);
    if let Some(argv) = &opts.run {
        return run_once(argv, power);
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
