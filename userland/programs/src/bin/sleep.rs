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

/// `"1.25"` as ns; `None` unless digits with at most 9 decimals, at most 10^6 s.
fn parse_seconds(s: &str) -> Option<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if (whole.is_empty() && frac.is_empty()) || frac.len() > 9 {
        return None;
    }
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(frac) {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if whole > 1_000_000 {
        return None;
    }
    let mut ns_frac = 0u64;
    for (i, b) in frac.bytes().enumerate() {
        ns_frac += u64::from(b - b'0') * 10u64.pow(8 - i as u32);
    }
    Some(whole * 1_000_000_000 + ns_frac)
}

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let [arg] = args[..] else {
        return TOOL.bad_usage("one argument: the number of seconds");
    };
    let Some(ns) = parse_seconds(arg) else {
        return TOOL.bad_usage(&alloc::format!("'{arg}' is not a number of seconds"));
    };
    time::sleep_ns(ns);
    0
}

extern crate alloc;
