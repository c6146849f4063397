//! `echo [-n] WORDS...`: prints its arguments separated by spaces.
#![no_std]
#![no_main]

use capstan_programs::tool::Tool;
use capstan_rt::{Startup, entry, print};

entry!(main);

const TOOL: Tool = Tool {
    name: "echo",
    usage: "usage: echo [-n] [WORD...]\n  Prints the words separated by spaces; -n: no newline after them.",
};

fn main(startup: &Startup) -> i32 {
    let args = match TOOL.args(startup) {
        Ok(a) => a,
        Err(status) => return status,
    };
    let (newline, words) = match args.split_first() {
        Some((&"-n", rest)) => (false, rest),
        _ => (true, &args[..]),
    };
    let mut line = alloc::string::String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(w);
    }
    if newline {
        line.push('\n');
    }
    print!("{line}");
    0
}

extern crate alloc;
