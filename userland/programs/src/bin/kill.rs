//! `kill PID...`: ends processes.
#![no_std]
#![no_main]

use capstan_programs::tool::Tool;
use capstan_rt::{Startup, entry, process};

entry!(main);

const TOOL: Tool = Tool {
    name: "kill",
    usage: "usage: kill PID...\n  Ends each process (exit status 137). Pid 1 (init) cannot be killed.",
};

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    if args.is_empty() {
        return TOOL.bad_usage("no pid named");
    }
    let mut status = 0;
    for arg in args {
        match arg.parse::<u32>() {
            Ok(pid) => {
                if let Err(e) = process::kill(pid) {
                    status = TOOL.fail(arg, e);
                }
            }
            Err(_) => return TOOL.bad_usage(&alloc::format!("'{arg}' is not a pid")),
        }
    }
    status
}

extern crate alloc;
