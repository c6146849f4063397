//! The driver-restart suite: init was started with `driver=/bin/edu@BDF,...,--loop`; a
//! driver killed in the middle of its work comes back as a fresh process with the same
//! device (docs/user-drivers.md "Granting, returning, restarting"). A kernel test starts
//! init so, with this suite as its `run=` program.

use alloc::string::String;

use capstan_programs::{Failure, Outcome, Test, check, tool};
use capstan_rt::{process, time};

/// The edu the kernel test names in init's `driver=` option (scripts/lib.sh puts the
/// first edu at slot 2).
const EDU_BDF: &str = "00:02.0";

/// The suite.
pub const TESTS: &[Test] = &[("a_killed_driver_is_restarted_with_its_device", restart)];

/// How many times the kernel read the device at `bdf` stopped after a driver ended
/// (`/proc/devices`).
fn stops(bdf: &str) -> Option<u64> {
    let text = tool::read_text("/proc/devices").ok()?;
    let line = text.lines().find(|l| l.starts_with(bdf))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == "stops_confirmed")?;
    words.next()?.parse().ok()
}

/// Waits (at most 3 s) for a `program` process other than `old`.
fn successor(program: &str, old: u32) -> Result<u32, Failure> {
    let deadline = time::now() + 3_000_000_000;
    while time::now() < deadline {
        if let Some(&pid) = tool::pids_running(program).iter().find(|&&p| p != old) {
            return Ok(pid);
        }
        time::sleep_ns(10_000_000);
    }
    Err(String::from("no new driver within 3 s").into())
}

fn restart() -> Outcome {
    let first = *tool::pids_running("/bin/edu")
        .first()
        .ok_or(Failure::Skipped(
            "no /bin/edu driver running (init driver= option)",
        ))?;
    let bdf = EDU_BDF;
    let before = stops(bdf).ok_or_else(|| String::from("00:02.0 not in /proc/devices"))?;
    let mut pid = first;
    for round in 1..=3u64 {
        let started = time::now();
        process::kill(pid)?;
        let next = successor("/bin/edu", pid)?;
        let gap_ms = (time::now() - started) / 1_000_000;
        check!(next != pid);
        // The old driver's teardown read the device stopped before init got it back.
        check!(stops(bdf) == Some(before + round));
        capstan_rt::println!("utest: driver restart {round}: pid {pid} -> {next} in {gap_ms} ms");
        pid = next;
    }
    Ok(())
}
