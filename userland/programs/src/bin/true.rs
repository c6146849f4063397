//! `true`: does nothing, successfully (also the smallest program `spawn` can time).
#![no_std]
#![no_main]

use capstan_programs::tool::Tool;

capstan_rt::entry!(main);

const TOOL: Tool = Tool {
    name: "true",
    usage: "usage: true\n  Exits with status 0.",
};

fn main(startup: &capstan_rt::Startup) -> i32 {
    match TOOL.args(startup) {
        Err(status) => status,
        Ok(_) => 0,
    }
}
