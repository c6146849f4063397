//! `ps`: the processes, from `/proc`.
#![no_std]
#![no_main]

use alloc::vec::Vec;
use capstan_programs::tool::{self, Tool};
use capstan_rt::{Startup, entry, println, time};

entry!(main);

const TOOL: Tool = Tool {
    name: "ps",
    usage: "usage: ps\n  One line per process: pid, parent, state, memory mapped, capabilities held,\n  system calls made, time since it started, program.",
};

fn main(startup: &Startup) -> i32 {
    if let Err(status) = TOOL.no_args(startup) {
        return status;
    }
    let listing = match tool::read_text("/proc") {
        Ok(s) => s,
        Err(e) => return TOOL.fail("/proc", e),
    };
    let mut pids: Vec<u32> = listing
        .lines()
        .filter_map(|l| l.strip_suffix("/status")?.parse().ok())
        .collect();
    pids.sort_unstable();
    println!(
        "{:>5} {:>5} {:<8} {:>10} {:>5} {:>9} {:>10}  PROGRAM",
        "PID", "PPID", "STATE", "MEM", "CAPS", "SYSCALLS", "AGE"
    );
    let now = time::now();
    for pid in pids {
        // A process may end between the listing and here: skip it.
        let Ok(st) = tool::read_text(&alloc::format!("/proc/{pid}/status")) else {
            continue;
        };
        let get = |k| tool::record(&st, k).unwrap_or("?");
        let num = |k| tool::record_u64(&st, k).unwrap_or(0);
        println!(
            "{:>5} {:>5} {:<8} {:>10} {:>5} {:>9} {:>10}  {}",
            pid,
            get("parent"),
            get("state"),
            tool::bytes(num("memory_bytes")),
            num("capabilities"),
            num("syscalls"),
            tool::duration(now.saturating_sub(num("started_ns"))),
            get("name")
        );
    }
    0
}

extern crate alloc;
