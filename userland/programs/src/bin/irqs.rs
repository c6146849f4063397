//! `irqs`: `/proc/interrupts`, the busiest lines first.
#![no_std]
#![no_main]

use alloc::vec::Vec;
use capstan_programs::tool::{self, Tool};
use capstan_rt::{Startup, entry, println};

entry!(main);

const TOOL: Tool = Tool {
    name: "irqs",
    usage: "usage: irqs [-a]\n  Interrupt lines with their total and per-CPU counts, state and owner, busiest first;\n  lines that never fired are left out unless -a.",
};

struct Line<'a> {
    intid: &'a str,
    kind: &'a str,
    per_cpu: Vec<u64>,
    state: &'a str,
    owner: &'a str,
}

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let all = match args[..] {
        [] => false,
        ["-a"] => true,
        _ => return TOOL.bad_usage("the only option is -a"),
    };
    let text = match tool::read_text("/proc/interrupts") {
        Ok(s) => s,
        Err(e) => return TOOL.fail("/proc/interrupts", e),
    };
    let mut rows = text.lines();
    let cpus = rows.next().map_or(0, |h| {
        h.split_whitespace()
            .filter(|w| w.starts_with("CPU"))
            .count()
    });
    let mut lines = Vec::new();
    let mut ipis = 0;
    for row in rows {
        let f: Vec<&str> = row.split_whitespace().collect();
        if f.get(1) == Some(&"IPI") {
            ipis = f.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
            continue;
        }
        if f.len() < 2 + cpus + 2 {
            continue;
        }
        lines.push(Line {
            intid: f[0],
            kind: f[1],
            per_cpu: f[2..2 + cpus]
                .iter()
                .map(|n| n.parse().unwrap_or(0))
                .collect(),
            state: f[2 + cpus],
            owner: row.split_once(f[2 + cpus]).map_or("", |(_, o)| o.trim()),
        });
    }
    lines.sort_by_key(|l| core::cmp::Reverse(l.per_cpu.iter().sum::<u64>()));
    println!(
        "{:>6} {:<10} {:>10}  {:<24} {:<9} OWNER",
        "INTID", "KIND", "TOTAL", "PER CPU", "STATE"
    );
    for l in lines
        .iter()
        .filter(|l| all || l.per_cpu.iter().sum::<u64>() > 0)
    {
        let per: Vec<alloc::string::String> =
            l.per_cpu.iter().map(|n| alloc::format!("{n}")).collect();
        println!(
            "{:>6} {:<10} {:>10}  {:<24} {:<9} {}",
            l.intid,
            l.kind,
            l.per_cpu.iter().sum::<u64>(),
            per.join("/"),
            l.state,
            l.owner
        );
    }
    println!("{:>6} {:<10} {:>10}", "-", "IPI", ipis);
    0
}

extern crate alloc;
