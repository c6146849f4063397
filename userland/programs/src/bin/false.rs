//! `false`: does nothing, unsuccessfully.
#![no_std]
#![no_main]

use capstan_programs::tool::Tool;

capstan_rt::entry!(main);

const TOOL: Tool = Tool {
    name: "false",
    usage: "usage: false\n  Exits with status 1.",
};

fn main(startup: &capstan_rt::Startup) -> i32 {
    match TOOL.args(startup) {
        Err(status) => status,
        Ok(_) => 1,
    }
}
