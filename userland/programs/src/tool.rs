//! What every tool does the same way.
//!
//! A tool prints its usage for `--help` (or `-h`) and exits 0; a bad argument gets one
//! line `NAME: what is wrong` and the usage's first line, exit status 2; a failed call
//! gets `NAME: what: error (EXXX)`, exit status 1.

use alloc::string::String;
use alloc::vec::Vec;
use capstan_rt::{Startup, println};

/// A tool's name (its `argv[0]`) and usage text.
pub struct Tool {
    /// `argv[0]`.
    pub name: &'static str,
    /// The usage, first line `usage: ...`.
    pub usage: &'static str,
}

impl Tool {
    /// The tool's arguments after its name, or the exit status if `--help` was asked for.
    pub fn args(&self, startup: &Startup) -> Result<Vec<&'static str>, i32> {
        let args: Vec<&'static str> = startup.args().skip(1).collect();
        if args.iter().any(|a| *a == "--help" || *a == "-h") {
            println!("{}", self.usage);
            return Err(0);
        }
        Ok(args)
    }

    /// For tools without arguments: `Err(status)` for `--help` or any argument.
    pub fn no_args(&self, startup: &Startup) -> Result<(), i32> {
        match self.args(startup)? {
            args if args.is_empty() => Ok(()),
            _ => Err(self.bad_usage("takes no arguments")),
        }
    }

    /// A bad argument: says what, shows how, returns status 2.
    pub fn bad_usage(&self, what: &str) -> i32 {
        println!("{}: {what}", self.name);
        println!("{}", self.usage.lines().next().unwrap_or(""));
        2
    }

    /// A failed call: says on what, returns status 1.
    pub fn fail(&self, what: &str, e: abi::Error) -> i32 {
        println!("{}: {what}: {e}", self.name);
        1
    }
}

/// `key value` records of a `/proc` file, in order.
pub fn records(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines().filter_map(|l| l.split_once(' '))
}

/// The value of `key` in a `/proc` file's records.
pub fn record<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    records(text).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// The value of `key` as a number.
pub fn record_u64(text: &str, key: &str) -> Option<u64> {
    record(text, key)?.trim().parse().ok()
}

/// A whole file as text (`None` if it cannot be read or is not UTF-8).
pub fn read_text(path: &str) -> capstan_rt::Result<String> {
    let bytes = capstan_rt::fs::read_file(path)?;
    String::from_utf8(bytes).map_err(|_| abi::Error::EINVAL)
}

/// Live processes running `program` (from `/proc`; a process may end meanwhile).
pub fn pids_running(program: &str) -> alloc::vec::Vec<u32> {
    let Ok(listing) = read_text("/proc") else {
        return alloc::vec::Vec::new();
    };
    let name = alloc::format!("name {program}");
    listing
        .lines()
        .filter_map(|l| l.strip_suffix("/status")?.parse::<u32>().ok())
        .filter(|pid| {
            read_text(&alloc::format!("/proc/{pid}/status")).is_ok_and(|st| {
                st.lines().any(|l| l == name) && st.lines().any(|l| l == "state running")
            })
        })
        .collect()
}

/// Whether process `pid` holds an interrupt line that is armed (`/proc/PID/caps`): a user
/// driver ready for its device's interrupts.
pub fn has_armed_line(pid: u32) -> bool {
    read_text(&alloc::format!("/proc/{pid}/caps")).is_ok_and(|c| {
        c.lines()
            .any(|l| l.contains(" IrqLine ") && (l.ends_with(" armed") || l.ends_with(" fired")))
    })
}

/// `ns` as `1h02m03s`, `2m03.4s` or `3.456s`.
pub fn duration(ns: u64) -> String {
    let ms = ns / 1_000_000;
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    match (h, m) {
        (0, 0) => alloc::format!("{s}.{frac:03}s"),
        (0, _) => alloc::format!("{m}m{s:02}.{}s", frac / 100),
        _ => alloc::format!("{h}h{m:02}m{s:02}s"),
    }
}

/// A byte count as `512 B`, `12.3 KiB`, `4.0 MiB`, `1.5 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut unit = 0;
    let mut scaled = n * 10;
    while scaled >= 10 * 1024 && unit < UNITS.len() - 1 {
        scaled /= 1024;
        unit += 1;
    }
    if unit == 0 {
        alloc::format!("{n} B")
    } else {
        alloc::format!("{}.{} {}", scaled / 10, scaled % 10, UNITS[unit])
    }
}
