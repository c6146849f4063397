//! `uptime`: time since boot, processes, CPU use.
#![no_std]
#![no_main]

use capstan_programs::tool::{self, Tool};
use capstan_rt::{Startup, entry, println};

entry!(main);

const TOOL: Tool = Tool {
    name: "uptime",
    usage: "usage: uptime\n  Time since boot, live processes, and how busy each CPU has been since boot.",
};

fn main(startup: &Startup) -> i32 {
    if let Err(status) = TOOL.no_args(startup) {
        return status;
    }
    let stat = match tool::read_text("/proc/stat") {
        Ok(s) => s,
        Err(e) => return TOOL.fail("/proc/stat", e),
    };
    let up = tool::record_u64(&stat, "uptime_ns").unwrap_or(0);
    let spawned = tool::record_u64(&stat, "processes_spawned").unwrap_or(0);
    let exited = tool::record_u64(&stat, "processes_exited").unwrap_or(0);
    let mut line = alloc::format!(
        "up {}, {} processes running",
        tool::duration(up),
        spawned.saturating_sub(exited)
    );
    for l in stat.lines().filter(|l| l.starts_with("cpu")) {
        // cpuN busy_ns B idle_ns I
        let f: alloc::vec::Vec<&str> = l.split(' ').collect();
        if let [cpu, "busy_ns", busy, "idle_ns", idle] = f[..] {
            let (b, i) = (
                busy.parse::<u64>().unwrap_or(0),
                idle.parse::<u64>().unwrap_or(0),
            );
            let pct = (b * 100).checked_div(b + i).unwrap_or(0);
            line.push_str(&alloc::format!(", {cpu} {pct}% busy"));
        }
    }
    println!("{line}");
    0
}

extern crate alloc;
