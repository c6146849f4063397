//! `sleep SECONDS`: waits (decimal seconds, e.g. 0.25).
#![no_std]
#![no_main]

use capstan_programs::tool::Tool;
use capstan_rt::{Startup, entry, time};

entry!(main);

const TOOL: Tool = Tool {
    name: "sleep",
    usage: "usage: sleep SECONDS\n  Waits SECONDS (a decimal number, at most 1000000; 0.5 is half a second).",
};

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let [arg] = args[..] else {
        return TOOL.bad_usage("one argument: the number of seconds");
    };
    let Some(ns) = capstan_programs::number::parse_seconds_ns(arg) else {
        return TOOL.bad_usage(&alloc::format!("'{arg}' is not a number of seconds"));
    };
    time::sleep_ns(ns);
    0
}

extern crate alloc;
